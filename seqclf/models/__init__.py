"""The models package: the network, a plain nn.Module."""

from seqclf.models.rnn import CELLS, RNNClassifier

__all__ = ["CELLS", "RNNClassifier"]
