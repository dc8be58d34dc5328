"""The reading trace (seqclf-predict trace=true): a many-to-one classifier's opinion after every word,
from the same network's output layer applied to every step, and its picture."""

import json

import pytest
import torch
from conftest import TINY, run_seqclf

from seqclf.models import RecurrentEncoder, SequenceClassifier


@pytest.mark.parametrize("pooling", ["last", "max", "last_max"])
def test_the_trace_ends_on_the_classifiers_own_output(pooling):
    net = SequenceClassifier(RecurrentEncoder(30, "gru", embed_dim=3, hidden_size=4), 3, pooling).eval()
    tokens = torch.tensor([[0, 0, 5, 6, 7], [0, 2, 9, 9, 4]])  # pre-padded
    steps = net.trace(tokens)
    assert steps.shape == (2, 5, 3)
    torch.testing.assert_close(steps[:, -1], net(tokens))
    # After word t the trace has read words up to t only: changing a later word leaves it as it was.
    later = tokens.clone()
    later[:, -1] = 11
    torch.testing.assert_close(net.trace(later)[:, :-1], steps[:, :-1])
    with pytest.raises(ValueError, match="reads in order"):
        SequenceClassifier(RecurrentEncoder(30, "gru", bidirectional=True)).trace(tokens)


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
def test_predict_with_trace_gives_each_words_probabilities_and_a_picture(tmp_path, imdb_dir, cli_env):
    done = run_seqclf("train", f"data.path={imdb_dir}", *TINY, env=cli_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = (tmp_path / "outputs" / "train" / "runs").iterdir()
    ckpt = run / "checkpoints" / "last.ckpt"
    text = "A truly wonderful film, with a dull middle. " * 3  # 24 words: more than data.max_len=12 (debug)
    out = tmp_path / "preds.jsonl"
    args = [f"ckpt_path={ckpt}", f"text={text}", "text=Dull.", f"output={out}", "trace=true"]
    result = run_seqclf("predict", *args, env=cli_env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    first, second = [json.loads(line) for line in out.read_text().splitlines()]
    # The words the model reads (the last max_len, pre-truncation), one trace entry per word.
    assert first["words"] == text.lower().replace(",", "").replace(".", "").split()[-12:]
    assert len(first["trace"]) == 12 and second["words"] == ["dull"] and len(second["trace"]) == 1
    for row in (first, second):
        assert set(row["trace"][0]) == {"neg", "pos"}
        assert row["trace"][-1]["pos"] == pytest.approx(row["probs"]["pos"], abs=1e-4)
    picture = tmp_path / "preds.trace.png"
    assert picture.read_bytes()[:4] == b"\x89PNG" and "drawn to" in result.stderr
    # Without trace=true the output is as before: no words, no trace.
    plain = run_seqclf("predict", f"ckpt_path={ckpt}", "text=Dull.", env=cli_env, cwd=tmp_path)
    assert set(json.loads(plain.stdout)) == {"text", "label", "probs"}
    bad = run_seqclf("predict", f"ckpt_path={ckpt}", "text=Dull.", "trace=yes", env=cli_env, cwd=tmp_path)
    assert bad.returncode == 2 and "trace=yes is not valid; choose true or false" in bad.stderr


def test_tracing_a_model_that_reads_both_ways_names_the_call_it_was_made_with():
    """The Python API's error speaks of trace(), seqclf-predict's of trace=true."""
    import pytest

    from seqclf.data import Labels
    from seqclf.data.text import WordTokenizer
    from seqclf.errors import SeqclfError
    from seqclf.models.encoders import RecurrentEncoder
    from seqclf.models.networks import SequenceClassifier
    from seqclf.tasks.classify.inference import Classifier

    tokenizer = WordTokenizer.fit(["a good film", "a bad film"], 10, max_len=4)
    net = SequenceClassifier(RecurrentEncoder(tokenizer.vocab_size, "gru", 4, 4, bidirectional=True))
    model = Classifier(net, tokenizer, Labels.fit([0, 1], "train", None, ["neg", "pos"]))
    with pytest.raises(SeqclfError, match=r"^trace\(\): the reading trace needs a model that reads in order") as e:
        model.trace(["a good film"])
    assert "trace=true" not in str(e.value)
