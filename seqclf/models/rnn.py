"""The network: a plain nn.Module that knows nothing about training."""

from __future__ import annotations

import torch
from torch import nn

CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def check_cell(cell: str) -> str:
    if cell not in CELLS:
        raise ValueError(f"model.cell={cell!r} is not a known cell type; choose one of: {', '.join(CELLS)}.")
    return cell


class RNNClassifier(nn.Module):
    """Embedding -> RNN/LSTM/GRU -> dropout -> Linear(., 1): one logit per sequence.

    The sequence is represented by the encoder's output at the last time step, which is the
    last real token when sequences are pre-padded (zeros in front). With ``bidirectional`` the
    backward direction's summary is its output at time 0, where it has read the whole sequence.
    """

    def __init__(
        self,
        vocab_size: int,
        cell: str = "lstm",
        embed_dim: int = 16,
        hidden_size: int = 32,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        pad_idx: int = 0,
    ):
        super().__init__()
        self.hidden_size, self.bidirectional = hidden_size, bidirectional
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_idx)
        self.encoder = CELLS[check_cell(cell)](
            embed_dim,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,  # torch applies it between layers only
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), 1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens``: (batch, time) word ids -> (batch,) logits."""
        return self.classify(self.embedding(tokens))

    def classify(self, embedded: torch.Tensor) -> torch.Tensor:
        """``embedded``: (batch, time, embed_dim), the encoder's inputs x_t -> (batch,) logits. Split
        from ``forward`` so that gradients with respect to each x_t can be measured."""
        out, _ = self.encoder(embedded)
        if self.bidirectional:
            h = self.hidden_size
            features = torch.cat([out[:, -1, :h], out[:, 0, h:]], dim=-1)
        else:
            features = out[:, -1]
        return self.head(self.dropout(features)).squeeze(-1)
