"""Measurements of what happens inside a classifier with a recurrent encoder: the gradient that
reaches each input step, and the gate activations of its LSTM or GRU (which nn.LSTM and nn.GRU do
not return)."""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from seqclf.models.networks import SequenceClassifier

# Gate names in the order of torch's stacked weight rows (weight_ih_l0 = [W_i; W_f; W_g; W_o] for LSTM).
GATES = {nn.LSTM: ("input", "forget", "cell", "output"), nn.GRU: ("reset", "update", "new")}
# The gates a user reads: sigmoids between 0 (closed) and 1 (open); the tanh candidates are left out.
REPORTED = {nn.LSTM: ("forget", "input", "output"), nn.GRU: ("update", "reset")}


def grad_norm_per_position(
    net: SequenceClassifier, tokens: torch.Tensor, labels: torch.Tensor, loss=None
) -> torch.Tensor:
    """(time,) the norm of dLoss_i/dx_t, the gradient of each review's loss with respect to the
    embedding fed to the encoder at step t, averaged over the batch. Backpropagation through time
    multiplies one Jacobian per step between t and the last step, so in a vanilla RNN this norm
    shrinks towards the first words. The parameters' ``.grad`` are left untouched. ``loss(logits,
    labels, reduction)``: the task's loss (default: BCE on one logit, binary)."""
    with torch.enable_grad():
        encoder = net.encoder
        embedded = encoder.embedding(tokens).detach().requires_grad_(True)
        mask = tokens != net.pad_idx
        logits = net.readout(encoder.encode(embedded, mask), mask)
        if loss is None:
            total = F.binary_cross_entropy_with_logits(logits, labels.to(embedded.dtype), reduction="sum")
        else:
            total = loss(logits, labels, reduction="sum")
        (grad,) = torch.autograd.grad(total, embedded)
    return grad.norm(dim=-1).mean(dim=0).detach()


def _layer_inputs(encoder: nn.RNNBase, x: torch.Tensor) -> list[torch.Tensor]:
    """The input of each layer (x, then the outputs of the layers below it), one call per layer
    with that layer's own weights, as the stacked encoder computes it in eval mode."""
    inputs = [x]
    suffixes = ("", "_reverse") if encoder.bidirectional else ("",)
    for layer in range(encoder.num_layers - 1):
        single = type(encoder)(
            inputs[-1].shape[-1], encoder.hidden_size, batch_first=True, bidirectional=encoder.bidirectional
        ).to(x.device, x.dtype)
        params = {
            f"{kind}_l0{suffix}": getattr(encoder, f"{kind}_l{layer}{suffix}")
            for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            for suffix in suffixes
        }
        inputs.append(functional_call(single, params, (inputs[-1],))[0])
    return inputs


def _direction_gates(encoder: nn.RNNBase, name: str, x: torch.Tensor, h: torch.Tensor) -> dict[str, torch.Tensor]:
    """Gates of one layer and direction from its inputs x (batch, time, in) and its hidden states h
    (batch, time, hidden), where h[:, t] is the state after reading x[:, t] in that direction's order."""
    w_ih, w_hh = getattr(encoder, f"weight_ih_{name}"), getattr(encoder, f"weight_hh_{name}")
    b_ih = getattr(encoder, f"bias_ih_{name}", None)
    b_hh = getattr(encoder, f"bias_hh_{name}", None)
    reverse = name.endswith("_reverse")
    h_prev = torch.zeros_like(h)  # h_{t-1}: the state before step t in this direction's order (h_0 = 0)
    if reverse:
        h_prev[:, :-1] = h[:, 1:]
    else:
        h_prev[:, 1:] = h[:, :-1]
    gi = F.linear(x, w_ih, b_ih)
    gh = F.linear(h_prev, w_hh, b_hh)
    if isinstance(encoder, nn.LSTM):
        i, f, g, o = (gi + gh).chunk(4, dim=-1)
        return {"input": i.sigmoid(), "forget": f.sigmoid(), "cell": g.tanh(), "output": o.sigmoid()}
    ir, iz, in_ = gi.chunk(3, dim=-1)
    hr, hz, hn = gh.chunk(3, dim=-1)
    r = (ir + hr).sigmoid()
    return {"reset": r, "update": (iz + hz).sigmoid(), "new": (in_ + r * hn).tanh()}


@torch.no_grad()
def gate_activations(encoder: nn.RNNBase, x: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
    """Every gate of an LSTM or GRU encoder (eval mode, batch_first, zero initial state), recomputed
    exactly from its weights, its inputs ``x`` (batch, time, features) and the hidden states it
    returns: ``{"l0": {"forget": (batch, time, hidden), ...}, "l0_reverse": {...}, "l1": ...}``.

    LSTM: i, f, g, o = sigmoid/tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), c_t = f c_{t-1} + i g.
    GRU (torch's convention): r, z = sigmoid(W_i x_t + b_i + W_h h_{t-1} + b_h),
    n = tanh(W_in x_t + b_in + r (W_hn h_{t-1} + b_hn)), h_t = (1 - z) n + z h_{t-1}: the update
    gate z is the share of the previous state kept, 1 - z the share of new content."""
    if type(encoder) not in GATES:
        raise ValueError(f"{type(encoder).__name__} has no gates; only nn.LSTM and nn.GRU do.")
    if not encoder.batch_first or getattr(encoder, "proj_size", 0):
        raise ValueError("gate_activations expects a batch_first encoder without projections.")
    # states[l] is layer l's input and states[l + 1] its output (the encoder's own for the top layer).
    states = [*_layer_inputs(encoder, x), encoder(x)[0]]
    hidden, gates = encoder.hidden_size, {}
    for layer in range(encoder.num_layers):
        layer_in, out = states[layer], states[layer + 1]
        gates[f"l{layer}"] = _direction_gates(encoder, f"l{layer}", layer_in, out[..., :hidden])
        if encoder.bidirectional:
            gates[f"l{layer}_reverse"] = _direction_gates(encoder, f"l{layer}_reverse", layer_in, out[..., hidden:])
    return gates
