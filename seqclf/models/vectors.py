"""Pretrained word vectors (``model.vectors``): a file read through gensim's KeyedVectors (word2vec
text or binary, GloVe text without a header, fastText ``.vec`` or ``.bin``; which one is read from
the file itself, gzipped or not), copied into an encoder's word embeddings for the words of the
run's vocabulary. seqclf-train does it once, when a run starts; the weights then live in the
checkpoint, so resuming, predicting and evaluating never read the file again."""

from __future__ import annotations

import gzip
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from seqclf.errors import ConfigError
from seqclf.models.checks import VECTOR_FORMATS as FORMATS
from seqclf.models.checks import check_vectors_file

log = logging.getLogger(__name__)

# The first four bytes of a fastText model (.bin), little-endian: its magic number.
FASTTEXT_MAGIC = (793712314).to_bytes(4, "little")
# Below this share of the vocabulary found in the file, the vectors are said to fit the data badly.
COVERAGE_WARN = 0.5


@dataclass
class Coverage:
    """What the vectors gave the vocabulary: ``found`` of its ``words`` (the special tokens left out)
    were in the file, ``subwords`` more were built from their character n-grams (a fastText .bin)."""

    path: str
    format: str
    dim: int
    words: int
    found: int
    subwords: int

    @property
    def share(self) -> float:
        return (self.found + self.subwords) / max(self.words, 1)

    def to_dict(self) -> dict:
        return {**asdict(self), "coverage": round(self.share, 6)}


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def sniff(path: Path) -> str:
    """The file's format: ``fasttext`` (a fastText model), ``word2vec`` (a "count dim" header, then
    text or binary rows) or ``glove`` (text rows, no header)."""
    with _open(path) as f:
        line = f.readline(1 << 20)
    if line.startswith(FASTTEXT_MAGIC):
        return "fasttext"
    first = line.split()
    if len(first) == 2 and all(part.isdigit() for part in first):
        return "word2vec"
    return "glove"


@dataclass
class Loaded:
    path: str
    format: str
    vectors: object  # a gensim KeyedVectors


def read(path: str | Path) -> Loaded:
    """The vectors in ``path`` as a gensim KeyedVectors (for a fastText model, one that also builds a
    vector for any word from its character n-grams), or one paragraph saying why they cannot be."""
    check_vectors_file(path)
    given, where = str(path), f"model.vectors={path}"
    path = Path(path).expanduser()
    try:
        from gensim.models import KeyedVectors
        from gensim.models.fasttext import load_facebook_vectors
    except ImportError:
        raise ConfigError(
            f"{where}: reading word vectors needs gensim, an optional extra: pip install 'seqclf[vectors]'."
        ) from None
    logging.getLogger("gensim").setLevel(logging.WARNING)  # a line per event otherwise
    try:
        kind = sniff(path)
        if kind == "fasttext":
            return Loaded(given, kind, load_facebook_vectors(str(path)))
        if kind == "glove":
            return Loaded(given, kind, KeyedVectors.load_word2vec_format(str(path), binary=False, no_header=True))
        try:  # a header, then text rows or binary ones: the text reader fails at once on binary rows
            return Loaded(given, "word2vec text", KeyedVectors.load_word2vec_format(str(path), binary=False))
        except (UnicodeDecodeError, ValueError):
            return Loaded(given, "word2vec binary", KeyedVectors.load_word2vec_format(str(path), binary=True))
    except Exception as e:  # noqa: BLE001 - gensim's readers raise many kinds; the message says what they saw
        raise ConfigError(
            f"{where} could not be read as word vectors ({type(e).__name__}: {e}). seqclf reads {FORMATS} files "
            "(gzipped too), the format taken from the file itself; check that the file is complete and is one of "
            "those (seqclf-vectors writes one)."
        ) from None


def check_fits(encoder: torch.nn.Module, loaded: Loaded) -> list[torch.nn.Embedding]:
    """``encoder``'s word embeddings, if the vectors fit them (an encoder built for any vocabulary
    tells, so seqclf-train checks before it reads the data), else one paragraph."""
    tables = encoder.word_embeddings()
    if not tables:
        raise ConfigError(
            f"model.vectors={loaded.path}: {type(encoder).__name__} has no word embedding to fill (its "
            "word_embeddings() gives none); use an encoder that embeds words (model=rnn|lstm|gru|bag|hybrid)."
        )
    size = loaded.vectors.vector_size
    wide = sorted({t.embedding_dim for t in tables} - {size})
    if wide:
        raise ConfigError(
            f"model.vectors={loaded.path} holds {size}-dimensional vectors, but the model's word embedding is "
            f"{wide[0]} wide; set the embedding's size to the vectors' (model.encoder.embed_dim={size}; "
            "for model=hybrid, model.encoder.recurrent.embed_dim and model.encoder.bag.embed_dim)."
        )
    return tables


def apply(encoder: torch.nn.Module, vocab: list[str], loaded: Loaded) -> Coverage:
    """Fill each of ``encoder.word_embeddings()`` with the vectors of ``vocab``'s words (the row of
    word id i is word i's vector). A word the file lacks (exactly, then lowercased) keeps a random
    row drawn with the vectors' own spread, so it starts on their scale; the padding row stays zero."""
    tables = check_fits(encoder, loaded)
    path, kind, kv = loaded.path, loaded.format, loaded.vectors
    lowered = None
    ids, rows, found, subwords, words = [], [], 0, 0, 0
    for i, word in enumerate(vocab):
        if word.startswith("<"):  # the special tokens (<pad>, <unk>, a generator's <s>...): the tokenizer drops "<"
            continue
        words += 1
        key = word if word in kv.key_to_index else None
        if key is None:
            if lowered is None:  # most frequent first: a cased file's "The" stands for "the" before "THE"
                lowered = {k.lower(): k for k in reversed(kv.index_to_key)}
            key = lowered.get(word.lower())
        if key is not None:
            found += 1
        elif kind == "fasttext":
            key, subwords = word, subwords + 1
        else:
            continue
        ids.append(i)
        rows.append(kv.get_vector(key))
    coverage = Coverage(str(Path(path).expanduser().resolve()), kind, int(kv.vector_size), words, found, subwords)
    if not ids:
        raise ConfigError(
            f"none of the vocabulary's {words} words is in model.vectors={path}: the vectors are for other words "
            "(another language, or a tokenisation that keeps punctuation). Use vectors of this data's language, or "
            "train some on these texts with seqclf-vectors."
        )
    import numpy as np

    given = torch.from_numpy(np.stack(rows)).float()
    spread = float(given.std())
    index = torch.tensor(ids)
    pad = getattr(encoder, "pad_idx", 0)
    with torch.no_grad():
        for table in tables:
            words_part = table.weight[: len(vocab)]
            words_part.normal_(0.0, spread)
            words_part[index] = given.to(table.weight.dtype)
            if pad < len(vocab):
                words_part[pad].zero_()
    if coverage.share < COVERAGE_WARN:
        log.warning(
            "model.vectors=%s has vectors for %.0f%% of the vocabulary's %d words; the rest start at random. "
            "Vectors trained on these texts (seqclf-vectors) cover them all.",
            path, 100 * coverage.share, words,
        )  # fmt: skip
    return coverage
