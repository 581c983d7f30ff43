"""A traced graph in real arithmetic: the same outputs and gradients as the complex graph, for every
student circuit on both precisions; parts known to be zero cost nothing; anything outside the
vocabulary is refused (None), never guessed."""

import itertools

import pytest
import torch
from torch.fx.experimental.proxy_tensor import make_fx

from qkd_pl.circuits import ANSATZES, ENCODINGS, READOUTS, QuantumLayer, n_features
from qkd_pl.circuits.real_graph import to_real
from qkd_pl.config import StudentConfig
from qkd_pl.devices import Backend

CASES = list(itertools.product(ENCODINGS, ANSATZES, READOUTS))  # every encoding x ansatz x readout


def values_and_gradients(fn, *inputs):
    inputs = [t.detach().clone().requires_grad_(True) for t in inputs]
    out = fn(*inputs)
    grads = torch.autograd.grad((out * torch.arange(1.0, out.shape[-1] + 1, dtype=out.dtype)).sum(), inputs)
    return [out.detach(), *grads]


def traced_graph(layer: QuantumLayer, x: torch.Tensor):
    for _ in range(3):
        layer(x)
    (traced,) = layer.compiled._graphs.values()
    return traced.graph


@pytest.mark.slow
@pytest.mark.parametrize("device,tolerance", [("qkd.fused", 1e-12), ("qkd.fused32", 1e-5)])
@pytest.mark.parametrize("encoding,ansatz,readout", CASES)
def test_every_student_circuit_gives_the_same_outputs_and_gradients(encoding, ansatz, readout, device, tolerance):
    cfg = StudentConfig(qubits=3, layers=2, encoding=encoding, ansatz=ansatz, readout=readout, rotation="Y")
    torch.manual_seed(0)
    layer = QuantumLayer.v2(cfg, Backend(device, "backprop", "test"))
    x = torch.randn(5, n_features(encoding, 3), dtype=torch.float64)
    graph = traced_graph(layer, x)
    real = to_real(graph)
    assert real is not None
    assert graph(x, layer.layer.weights).shape == (5, READOUTS[readout].width(3))
    assert not any(getattr(n.meta.get("val"), "is_complex", lambda: False)() for n in real.graph.nodes)
    assert all(not b.is_complex() for b in real.buffers())
    weights = layer.layer.weights
    for a, b in zip(values_and_gradients(graph, x, weights), values_and_gradients(real, x, weights)):
        assert torch.allclose(a, b, rtol=tolerance, atol=tolerance), (a - b).abs().max()


def test_complex_arithmetic_by_hand():
    """Products, sums, conjugates, exponentials and the structural operations, against torch's own
    complex arithmetic."""
    def f(x, w):
        z = x.to(torch.complex128) * torch.exp(-0.5j * w.to(torch.complex128))  # (3, 4)
        m = torch.stack([z, z.conj() - 2 * z], 0)  # (2, 3, 4)
        p = torch.bmm(m, m.transpose(1, 2)) + torch.zeros_like(m[:, :, :3])
        q = (p @ z)[..., 1:].reshape(2, -1)
        return torch.view_as_real(torch.cat([q, -q], 1)).pow(2).sum(-1)

    x, w = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    graph = make_fx(f)(x, w)
    real = to_real(graph)
    assert real is not None
    for a, b in zip(values_and_gradients(f, x, w), values_and_gradients(real, x, w)):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-12)


def test_a_part_known_to_be_zero_is_never_computed():
    """A real state through real gates (the amplitude encoding and RY layers) stays real: one real
    product where a complex one would need four."""
    rotation = torch.tensor([[0.6, -0.8], [0.8, 0.6]], dtype=torch.float64)

    def f(x):
        state = x.to(torch.complex128) @ rotation.to(torch.complex128)
        return torch.view_as_real(state).pow(2).sum(-1)

    real = to_real(make_fx(f)(torch.randn(4, 2, dtype=torch.float64)))
    products = [n for n in real.graph.nodes if n.target == torch.ops.aten.mm.default]
    assert len(products) == 1
    x = torch.randn(4, 2, dtype=torch.float64)
    assert torch.allclose(real(x), f(x), rtol=1e-14)


@pytest.mark.parametrize("unknown", [
    lambda x: torch.view_as_real(x.to(torch.complex128) / (1 + x.to(torch.complex128))),  # complex division
    lambda x: x.to(torch.complex128) * 2,  # a complex output
    lambda x: torch.view_as_real(torch.linalg.eigvals(x.to(torch.complex128))),
])
def test_an_operation_outside_the_vocabulary_is_refused(unknown):
    x = torch.rand(3, 3, dtype=torch.float64) + 1
    assert to_real(make_fx(unknown)(x)) is None
