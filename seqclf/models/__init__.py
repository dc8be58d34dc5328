"""The networks, plain nn.Modules: encoders (one protocol), pooling, each task's head, and probes
of what happens inside. Imported when first used: seqclf.models.checks needs no torch."""

from importlib import import_module

_PUBLIC = {
    "CELLS": "seqclf.models.encoders",
    "Encoder": "seqclf.models.encoders",
    "RecurrentEncoder": "seqclf.models.encoders",
    "LanguageModel": "seqclf.models.networks",
    "SequenceClassifier": "seqclf.models.networks",
    "SequenceTagger": "seqclf.models.networks",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'seqclf.models' has no attribute {name!r}")
