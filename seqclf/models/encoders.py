"""Encoders: what reads a text's token ids into features at every step, behind one protocol that
every task's network uses (seqclf.models.networks), chosen by config with a ``_target_``
(``model.encoder``), so an encoder written in a user's own module trains, resumes, predicts and
sweeps with no change to seqclf."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from seqclf.errors import ConfigError
from seqclf.models.checks import CELL_NAMES, RECURRENT, check_recurrent

# The torch module of each recurrent cell: nn.RNN (tanh), nn.LSTM, nn.GRU.
CELLS: dict[str, type[nn.RNNBase]] = dict(zip(CELL_NAMES, (nn.RNN, nn.LSTM, nn.GRU), strict=True))


class Encoder(nn.Module):
    """The encoder protocol. A subclass is built as ``cls(vocab_size=..., pad_idx=..., **settings)``
    (``settings``: the config's ``model.encoder`` without ``_target_``, primitives, kept in every
    checkpoint) and provides:

    - ``forward(tokens, mask) -> (batch, time, features)``: ``tokens`` (batch, time) word ids,
      ``mask`` (batch, time) True at the text's own words (False at padding);
    - ``features``: the width of each step's output;
    - ``causal``: whether step t's output depends on steps up to t only (a reading trace and a
      generator need it);
    - optionally ``step(tokens, state) -> (features, state)``: continue from ``state`` (None at the
      start) over a few more tokens, for sampling; ``last(features, mask)``: the summary that
      ``pooling=last`` reads (default: the last step's output), and ``summaries``, that summary at
      every step (for the reading trace); ``work(settings, batch, length)``:
      multiply-adds of a batch, for choosing thread counts (default: unknown, so a run takes its
      share of the cores); ``word_embeddings()``: the embedding tables whose row i is word id i's
      vector, which pretrained word vectors fill (``model.vectors``; default: the
      ``embedding`` attribute, if it is an nn.Embedding).
    """

    features: int
    causal: bool = False

    def last(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(batch, features): what the sequence's last step says (pre-padded texts end there)."""
        return features[:, -1]

    def summaries(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(batch, time, features): ``last`` of the text up to each step, for a causal encoder's reading
        trace (default: each step's output, as ``last`` is the last step's)."""
        return features

    def word_embeddings(self) -> list[nn.Embedding]:
        embedding = getattr(self, "embedding", None)
        return [embedding] if isinstance(embedding, nn.Embedding) else []

    def step(self, tokens: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        raise NotImplementedError(f"{type(self).__name__} cannot continue a text step by step (no step method)")

    @classmethod
    def work(cls, settings: Mapping[str, Any], batch: int, length: int) -> float | None:
        return None


class RecurrentEncoder(Encoder):
    """Embedding -> RNN/LSTM/GRU, the lecture's encoder: the embedding of each word, read in order
    (and backwards too with ``bidirectional``) by ``num_layers`` stacked cells. ``dropout`` applies
    between stacked layers (torch's); the network adds its own before its head.

    ``packed``: the cells read each text's own words only (torch's packed sequences), not the padding
    that Keras' pad_sequences puts around them, so a text's features do not depend on how long the
    other texts of its batch are, and a batch costs its longest text's steps, not data.max_len's
    (with data.bucket, batches of similar lengths). Off, the cells read the padding too, as the
    lecture's Keras model did."""

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
        packed: bool = False,
    ):
        super().__init__()
        check_recurrent(cell, embed_dim, hidden_size, num_layers, dropout)
        self.cell, self.hidden_size, self.bidirectional, self.pad_idx = cell, hidden_size, bidirectional, pad_idx
        self.packed = bool(packed)
        self.features = hidden_size * (2 if bidirectional else 1)
        self.causal = not bidirectional
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_idx)
        self.rnn = CELLS[cell](
            embed_dim,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,  # torch applies it between layers only
        )

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.packed and mask is None:
            mask = tokens != self.pad_idx
        return self.encode(self.embedding(tokens), mask)

    def encode(self, embedded: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The cells over the embedded inputs x_t: split from ``forward`` so that the gradient with
        respect to each x_t can be measured (seqclf.models.probes)."""
        if not self.packed or mask is None:
            return self.rnn(embedded)[0]
        return self._packed(embedded, mask)

    def _packed(self, embedded: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Each text's words moved to the front, read (packed when read both ways), and the outputs
        moved back to the words' own steps (zeros at the padding): pre- and post-padded texts alike."""
        from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

        steps = embedded.shape[1]
        lengths = mask.sum(dim=1)
        first = _first_word(mask)
        t = torch.arange(steps, device=embedded.device)
        to_front = (t + first[:, None]).clamp(max=steps - 1)
        front = embedded.gather(1, to_front[..., None].expand(-1, -1, embedded.shape[-1]))
        if self.bidirectional:  # the backward direction must start at each text's own last word
            packed = pack_padded_sequence(front, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
            out = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=steps)[0]
        else:
            # Read in order, a word's output depends on the words before it only, so the padding after
            # the texts' ends changes nothing: the batch's longest text's steps, unpacked (torch's CPU
            # cells take a slow path for packed batches of unequal lengths).
            # Traced for export, the batch's longest text is a number of that batch: read every step.
            longest = steps if _tracing() else max(1, int(lengths.max()))
            out = nn.functional.pad(self.rnn(front[:, :longest])[0], (0, 0, 0, steps - longest))
        back = (t - first[:, None]).clamp(min=0)
        out = out.gather(1, back[..., None].expand(-1, -1, out.shape[-1]))
        return out * mask[..., None].to(out.dtype)

    def last(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The forward direction's output at the last step; read backwards, the sequence's summary
        is the backward direction's output at step 0, where it has read the whole text. Packed, those
        steps are the text's own last and first words, wherever the padding is."""
        if self.packed and mask is not None:
            first = _first_word(mask)
            last = (first + mask.sum(dim=1) - 1).clamp(min=0)
            rows = torch.arange(features.shape[0], device=features.device)
            if not self.bidirectional:
                return features[rows, last]
            h = self.hidden_size
            return torch.cat([features[rows, last, :h], features[rows, first, h:]], dim=-1)
        if not self.bidirectional:
            return features[:, -1]
        h = self.hidden_size
        return torch.cat([features[:, -1, :h], features[:, 0, h:]], dim=-1)

    def step(self, tokens: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        return self.rnn(self.embedding(tokens), state)

    @classmethod
    def work(cls, settings: Mapping[str, Any], batch: int, length: int) -> float:
        from seqclf.threads import recurrent_settings_work

        return recurrent_settings_work(settings, batch, length)


def _tracing() -> bool:
    """Whether the network is being traced (ONNX or TorchScript export), where a number read from a
    tensor would be fixed into the exported graph."""
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()


def _first_word(mask: torch.Tensor) -> torch.Tensor:
    """(batch,) each text's first own step (0 for an empty text)."""
    return mask.to(torch.int8).argmax(dim=1)


def resolve(target: Any) -> type[Encoder]:
    """The Encoder class ``model.encoder._target_`` names (importing its module), or a ConfigError."""
    if not isinstance(target, str) or "." not in target:
        raise ConfigError(
            f"model.encoder._target_={target!r} must name an encoder class by its import path, e.g. "
            f"{RECURRENT} (model=lstm) or mypackage.encoders.MyEncoder."
        )
    module_name, _, name = target.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as e:
        raise ConfigError(
            f"model.encoder._target_={target} cannot be imported ({type(e).__name__}: {e}); check the name, and that "
            "its module is importable here (installed, or on PYTHONPATH)."
        ) from None
    if not (isinstance(found, type) and issubclass(found, Encoder)):
        raise ConfigError(
            f"model.encoder._target_={target} is not a seqclf encoder: an encoder is a subclass of "
            "seqclf.models.encoders.Encoder (forward(tokens, mask) -> (batch, time, features), features, causal)."
        )
    return found


def spec(encoder: Mapping[str, Any] | None) -> dict[str, Any]:
    """``model.encoder`` as plain values for hparams (a config node's containers become a dict and
    lists); None: the recurrent encoder's defaults (the lecture's LSTM)."""
    if encoder is None:
        return {"_target_": RECURRENT}
    from omegaconf import OmegaConf

    if OmegaConf.is_config(encoder):
        return OmegaConf.to_container(encoder, resolve=True)
    return dict(encoder) if isinstance(encoder, Mapping) else encoder


def settings_of(spec: Mapping[str, Any]) -> dict[str, Any]:
    """An encoder spec's settings: the spec without ``_target_``, as plain values."""
    return {str(k): v for k, v in spec.items() if k != "_target_"}


def defaults(target: Any) -> dict[str, Any]:
    """The settings an encoder class takes when a spec leaves them out (its constructor's defaults):
    a checkpoint saved before a setting existed was trained with its default."""
    import inspect

    try:
        parameters = inspect.signature(resolve(target).__init__).parameters.values()
    except ConfigError:
        return {}
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def build(spec: Mapping[str, Any], vocab_size: int, pad_idx: int = 0) -> Encoder:
    """The encoder ``spec`` (``model.encoder``: ``_target_`` and its settings) describes, for a
    vocabulary of ``vocab_size`` ids; an unknown setting is one paragraph naming the known ones."""
    if not isinstance(spec, Mapping) or "_target_" not in spec:
        raise ConfigError(
            f"model.encoder={spec!r} must be a mapping with a _target_ (an encoder class) and its settings; "
            "choose one with model=rnn|lstm|gru."
        )
    cls, settings = resolve(spec["_target_"]), settings_of(spec)
    accepted = inspect.signature(cls.__init__).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        unknown = sorted(set(settings) - set(accepted) - {"self"})
        if unknown:
            known = ", ".join(k for k in accepted if k not in ("self", "vocab_size", "pad_idx"))
            raise ConfigError(
                f"model.encoder.{unknown[0]} is not a setting of {spec['_target_']}; its settings are {known}."
            )
    encoder = cls(vocab_size=vocab_size, pad_idx=pad_idx, **settings)
    if not isinstance(getattr(encoder, "features", None), int):
        raise ConfigError(f"{spec['_target_']} sets no integer `features` (the width of its output at each step).")
    return encoder
