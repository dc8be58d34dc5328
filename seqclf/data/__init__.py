"""The data package: the text-classification, tagging and generation DataModules, its classes and the tokenizer (each
imported when first used: seqclf-predict needs the tokenizer and the classes, not Lightning)."""

from importlib import import_module

_PUBLIC = {
    "TextDataModule": "seqclf.data.datamodule",
    "TaggingDataModule": "seqclf.data.tagging",
    "GenerationDataModule": "seqclf.data.generation",
    "Labels": "seqclf.data.labels",
    "WordTokenizer": "seqclf.data.text",
    "tokenize": "seqclf.data.text",
}


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'seqclf.data' has no attribute {name!r}")


__all__ = sorted(_PUBLIC)
