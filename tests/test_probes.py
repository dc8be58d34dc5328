"""The gradient and gate measurements of seqclf.models.probes against answers known another way."""

import pytest
import torch
from torch import nn

from seqclf.models import RecurrentEncoder, SequenceClassifier
from seqclf.models.probes import gate_activations, grad_norm_per_position


def unrolled_gates(encoder: nn.RNNBase, x: torch.Tensor, layer: int = 0, reverse: bool = False) -> dict:
    """The same gates, step by step with an nn.LSTMCell/nn.GRUCell holding the layer's weights:
    the textbook formula on the cell's own previous state, checked against the cell's new state."""
    suffix = f"l{layer}" + ("_reverse" if reverse else "")
    is_lstm = isinstance(encoder, nn.LSTM)
    cell = (nn.LSTMCell if is_lstm else nn.GRUCell)(x.shape[-1], encoder.hidden_size)
    for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        getattr(cell, kind).data.copy_(getattr(encoder, f"{kind}_{suffix}"))
    steps = range(x.shape[1] - 1, -1, -1) if reverse else range(x.shape[1])
    h = torch.zeros(x.shape[0], encoder.hidden_size)
    c = torch.zeros_like(h)
    out = {}
    for t in steps:
        gi = x[:, t] @ cell.weight_ih.T + cell.bias_ih
        gh = h @ cell.weight_hh.T + cell.bias_hh
        if is_lstm:
            i, f, g, o = (gi + gh).chunk(4, dim=-1)
            step = {"input": i.sigmoid(), "forget": f.sigmoid(), "cell": g.tanh(), "output": o.sigmoid()}
            h_new, c_new = cell(x[:, t], (h, c))
            torch.testing.assert_close(step["forget"] * c + step["input"] * step["cell"], c_new)
            torch.testing.assert_close(step["output"] * c_new.tanh(), h_new)
            c = c_new
        else:
            ir, iz, in_ = gi.chunk(3, dim=-1)
            hr, hz, hn = gh.chunk(3, dim=-1)
            r = (ir + hr).sigmoid()
            step = {"reset": r, "update": (iz + hz).sigmoid(), "new": (in_ + r * hn).tanh()}
            h_new = cell(x[:, t], h)
            torch.testing.assert_close((1 - step["update"]) * step["new"] + step["update"] * h, h_new)
        for name, value in step.items():
            out.setdefault(name, [None] * x.shape[1])[t] = value
        h = h_new
    return {name: torch.stack(values, dim=1) for name, values in out.items()}


@pytest.mark.parametrize("cell_type", [nn.LSTM, nn.GRU])
@pytest.mark.parametrize("bidirectional, num_layers", [(False, 1), (True, 1), (False, 2)])
def test_recomputed_gates_equal_a_step_by_step_cell(cell_type, bidirectional, num_layers):
    torch.manual_seed(0)
    encoder = cell_type(3, 5, num_layers=num_layers, batch_first=True, bidirectional=bidirectional).eval()
    x = torch.randn(4, 7, 3)
    gates = gate_activations(encoder, x)
    expected = unrolled_gates(encoder, x)
    assert set(gates["l0"]) == set(expected)
    for name in expected:
        torch.testing.assert_close(gates["l0"][name], expected[name])
    if bidirectional:
        for name, value in unrolled_gates(encoder, x, reverse=True).items():
            torch.testing.assert_close(gates["l0_reverse"][name], value)
    if num_layers == 2:  # the second layer reads the first layer's outputs
        layer0 = cell_type(3, 5, batch_first=True)
        layer0.load_state_dict({k: v for k, v in encoder.state_dict().items() if k.endswith("l0")})
        layer0_out = layer0(x)[0]
        for name, value in unrolled_gates(encoder, layer0_out, layer=1).items():
            torch.testing.assert_close(gates["l1"][name], value)


def test_gates_of_a_vanilla_rnn_are_refused():
    with pytest.raises(ValueError, match="only nn.LSTM and nn.GRU"):
        gate_activations(nn.RNN(3, 4, batch_first=True), torch.randn(1, 2, 3))


def test_gradient_at_each_word_of_a_linear_rnn_scales_as_w_to_the_distance():
    """h_t = tanh(x_t + w h_{t-1}) with tiny inputs is linear, so dLoss/dx_t = w^(T-1-t) dLoss/dx_{T-1}."""
    w, steps = 0.7, 10
    net = SequenceClassifier(RecurrentEncoder(5, "rnn", embed_dim=1, hidden_size=1))
    with torch.no_grad():
        net.encoder.embedding.weight.copy_(torch.tensor([[0.0], [1e-4], [-1e-4], [2e-4], [3e-4]]))
        net.encoder.rnn.weight_ih_l0.fill_(1.0)
        net.encoder.rnn.weight_hh_l0.fill_(w)
        net.encoder.rnn.bias_ih_l0.zero_()
        net.encoder.rnn.bias_hh_l0.zero_()
        net.head.weight.fill_(2.0)
    tokens = torch.randint(1, 5, (3, steps))
    norms = grad_norm_per_position(net.eval(), tokens, torch.tensor([1.0, 0.0, 1.0]))
    expected = norms[-1] * w ** torch.arange(steps - 1, -1, -1, dtype=torch.float32)
    torch.testing.assert_close(norms, expected, rtol=1e-4, atol=0)
    assert all(p.grad is None for p in net.parameters())  # the measure leaves parameter gradients alone
