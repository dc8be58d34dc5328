"""The tokenizer against hand-made examples: normalisation, vocabulary, Keras-style padding."""

import random

import numpy as np
import pytest

from seqclf.data import text as text_module
from seqclf.data.text import PAD_ID, SPECIALS, UNK_ID, WordTokenizer, tokenize


def test_tokenize_lowercases_and_strips_tags_and_punctuation():
    text = "Great movie!<br /><br />I LOVED it... Don't miss (10/10) \u201cthe\u201d end\u2014really_good."
    assert tokenize(text) == [
        "great",
        "movie",
        "i",
        "loved",
        "it",
        "dont",
        "miss",
        "10",
        "10",
        "the",
        "end",
        "really",
        "good",
    ]
    assert tokenize("a<BR>b<br/>c") == ["a", "b", "c"]
    assert tokenize("  ") == []


def test_vocabulary_is_top_n_with_specials_counted_and_ties_alphabetical():
    tok = WordTokenizer.fit(["b b b a a a c", "d c e"], vocab_size=5)
    # a and b tie on 3 (alphabetical), then c on 2; d and e (1 each) fall outside the 5.
    assert tok.vocab == [*SPECIALS, "a", "b", "c"]
    assert tok.vocab_size == 5
    assert tok.index["<pad>"] == PAD_ID == 0 and tok.index["<unk>"] == UNK_ID == 1
    with pytest.raises(ValueError, match="at least 3"):
        WordTokenizer.fit(["a"], vocab_size=2)


def test_vocabulary_smaller_than_requested_when_data_has_few_words():
    assert WordTokenizer.fit(["x y"], vocab_size=100).vocab == [*SPECIALS, "x", "y"]


@pytest.fixture
def abc():
    return WordTokenizer([*SPECIALS, "a", "b", "c", "d", "e", "f", "g"], max_len=5)


def ids(tok, text):
    return tok.encode([text])[0].tolist()


def test_pre_padding_and_pre_truncation_as_keras(abc):
    # a..g have ids 2..8; "zzz" is unknown.
    assert ids(abc, "a b") == [0, 0, 0, 2, 3]
    assert ids(abc, "a zzz b") == [0, 0, 2, UNK_ID, 3]
    assert ids(abc, "a b c d e f g") == [4, 5, 6, 7, 8]  # keeps the last five
    assert ids(abc, "") == [0, 0, 0, 0, 0]


def test_post_padding_and_post_truncation():
    tok = WordTokenizer([*SPECIALS, "a", "b", "c", "d", "e", "f", "g"], 5, padding="post", truncation="post")
    assert ids(tok, "a b") == [2, 3, 0, 0, 0]
    assert ids(tok, "a b c d e f g") == [2, 3, 4, 5, 6]  # keeps the first five
    mixed = WordTokenizer(tok.vocab, 5, padding="pre", truncation="post")
    assert ids(mixed, "a b c d e f g") == [2, 3, 4, 5, 6]
    assert ids(mixed, "g") == [0, 0, 0, 0, 8]


def test_invalid_sides_are_rejected():
    with pytest.raises(ValueError, match="data.padding='middle' is not valid; choose one of pre, post"):
        WordTokenizer(list(SPECIALS), padding="middle")


@pytest.mark.parametrize("truncation", ["pre", "post"])
def test_long_texts_encode_exactly_as_whole_text_tokenisation(truncation):
    """encode() tokenises only the relevant end of long reviews; it must equal the full result."""
    rng = random.Random(0)
    pieces = [
        "word",
        "Don't",
        "<br />",
        "<br /><br />",
        "!!!",
        "a",
        "\u2014",
        "it's",
        "  ",
        "x" * 30,
        "(ok)",
        "é",
    ]
    texts = [
        "".join(rng.choice(pieces) + rng.choice([" ", ""]) for _ in range(rng.randint(1, 400))) for _ in range(300)
    ]
    tok = WordTokenizer.fit(texts, 50, max_len=8, truncation=truncation)
    expected = np.zeros((len(texts), 8), dtype=np.int32)
    for i, text in enumerate(texts):
        words = tokenize(text)
        words = words[-8:] if truncation == "pre" else words[:8]
        row = [tok.index.get(w, UNK_ID) for w in words]
        expected[i, 8 - len(row) :] = row
    np.testing.assert_array_equal(tok.encode(texts), expected)


def test_json_round_trip(tmp_path, abc):
    abc.save(tmp_path / "tok.json")
    back = WordTokenizer.load(tmp_path / "tok.json")
    assert back.vocab == abc.vocab and back.max_len == 5 and (back.padding, back.truncation) == ("pre", "pre")
    with pytest.raises(ValueError, match="not a seqclf tokenizer"):
        WordTokenizer.from_json('{"vocab": []}')


def test_parallel_fit_and_encode_equal_the_serial_result(monkeypatch):
    rng = random.Random(1)
    words = [f"w{i}" for i in range(300)]
    texts = [" ".join(rng.choices(words, k=rng.randint(0, 60))) + "!" for _ in range(500)]
    serial = WordTokenizer.fit(texts, 100, workers=1, max_len=16)
    monkeypatch.setattr(text_module, "PARALLEL_MIN_TEXTS", 0)  # fork workers even for this small input
    parallel = WordTokenizer.fit(texts, 100, workers=2, max_len=16)
    assert parallel.vocab == serial.vocab
    np.testing.assert_array_equal(parallel.encode(texts, workers=2), serial.encode(texts, workers=1))


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("padding, truncation", [("pre", "pre"), ("post", "post"), ("pre", "post"), ("post", "pre")])
def test_fit_encode_equals_fit_then_encode(monkeypatch, workers, padding, truncation):
    rng = random.Random(2)
    words = [f"w{i}" for i in range(200)] + ["Don't", "<br />", "é", "..."]
    texts = [" ".join(rng.choices(words, k=rng.randint(0, 40))) for _ in range(400)] + [""]
    monkeypatch.setattr(text_module, "PARALLEL_MIN_TEXTS", 0)
    settings = {"max_len": 12, "padding": padding, "truncation": truncation}
    tok, ids = WordTokenizer.fit_encode(texts, 60, workers=workers, **settings)
    assert tok.vocab == WordTokenizer.fit(texts, 60, workers=1, **settings).vocab
    assert (tok.padding, tok.truncation, tok.max_len) == (padding, truncation, 12)
    np.testing.assert_array_equal(ids, tok.encode(texts, workers=1))
    assert ids.dtype == np.int32 and ids.shape == (len(texts), 12)
