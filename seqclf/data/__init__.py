"""The data path every task shares: sources and file formats, the tokenizer, the classes, the encoded
cache, batches and the text DataModule the tasks' own build on (each imported when first used:
seqclf-predict needs the tokenizer and the classes, not Lightning)."""

from importlib import import_module

_PUBLIC = {
    "TextDataModule": "seqclf.data.datamodule",
    "Labels": "seqclf.data.labels",
    "WordTokenizer": "seqclf.data.text",
    "tokenize": "seqclf.data.text",
}


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'seqclf.data' has no attribute {name!r}")


__all__ = sorted(_PUBLIC)
