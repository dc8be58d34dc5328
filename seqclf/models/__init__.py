"""The models package: the networks, plain nn.Modules."""

from seqclf.models.rnn import CELLS, RecurrentEncoder, RNNClassifier, RNNTagger

__all__ = ["CELLS", "RNNClassifier", "RNNTagger", "RecurrentEncoder"]
