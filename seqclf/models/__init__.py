"""The models package: the networks, plain nn.Modules."""

from seqclf.models.rnn import CELLS, RecurrentEncoder, RNNClassifier, RNNLanguageModel, RNNTagger

__all__ = ["CELLS", "RNNClassifier", "RNNLanguageModel", "RNNTagger", "RecurrentEncoder"]
