from seqclf.models.rnn import CELLS, RNNClassifier

__all__ = ["CELLS", "RNNClassifier"]
