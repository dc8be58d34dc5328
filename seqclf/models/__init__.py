"""The models package: the networks, plain nn.Modules: encoders (one protocol), pooling, and each task's head."""

from seqclf.models.encoders import CELLS, Encoder, RecurrentEncoder
from seqclf.models.networks import LanguageModel, SequenceClassifier, SequenceTagger

__all__ = ["CELLS", "Encoder", "LanguageModel", "RecurrentEncoder", "SequenceClassifier", "SequenceTagger"]
