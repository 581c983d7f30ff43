"""The quantum layer gives the same outputs and gradients on independent exact simulators,
for every encoding x ansatz: lightning.qubit (adjoint, C++) is the reference for default.qubit
(backprop, gate by gate), qkd.fused (backprop, fused) and qkd.fused32 (the same in complex64),
to 1e-5."""

import itertools

import pytest
import torch

from qkd_pl.circuits import ANSATZES, ENCODINGS, QuantumLayer, n_features
from qkd_pl.config import StudentConfig
from qkd_pl.devices import Backend
from qkd_pl.reduction.fc import FullyConnected

EXACT = [Backend("lightning.qubit", "adjoint", "test"), Backend("default.qubit", "backprop", "test"),
         Backend("qkd.fused", "backprop", "test"), Backend("qkd.fused32", "backprop", "test")]
COMBOS = list(itertools.product(ENCODINGS, ANSATZES))


def run(backend: Backend, cfg: StudentConfig):
    torch.manual_seed(7)
    fc = FullyConnected((1, 4, 4), n_features(cfg.encoding, cfg.qubits))
    layer = QuantumLayer.v2(cfg, backend)
    x = torch.randn(5, 1, 4, 4)
    out = layer(fc(x))
    (out * torch.arange(1.0, cfg.qubits + 1)).sum().backward()  # weight outputs so gradients differ
    return out.detach(), layer.layer.weights.grad, fc.linear.weight.grad, fc.linear.bias.grad


@pytest.mark.parametrize("encoding,ansatz", COMBOS)
@pytest.mark.parametrize("backend", EXACT[1:], ids=lambda b: b.device)
def test_exact_simulators_agree_on_outputs_and_gradients(encoding, ansatz, backend):
    cfg = StudentConfig(qubits=3, layers=2, encoding=encoding, ansatz=ansatz, rotation="X")
    ref, other = run(EXACT[0], cfg), run(backend, cfg)
    assert ref[0].shape == (5, 3)
    for a, b in zip(ref, other):
        assert torch.allclose(a.double(), b.double(), atol=1e-5), (a - b).abs().max()


@pytest.mark.parametrize("qubits", [1, 2, 4, 5, 8])
def test_agreement_holds_across_sizes(qubits):
    # 5 and 8 qubits: the fused device splits the wires into two chunks (CHUNK_QUBITS = 4).
    cfg = StudentConfig(qubits=qubits, layers=1, ansatz="ring")
    ref = run(EXACT[0], cfg)
    for backend in EXACT[1:]:
        for a, b in zip(ref, run(backend, cfg)):
            assert torch.allclose(a.double(), b.double(), atol=1e-5)


def test_gradients_reach_the_reduction_layer():
    _, w_grad, fc_w_grad, fc_b_grad = run(EXACT[0], StudentConfig(qubits=3, layers=1))
    assert w_grad.abs().sum() > 0 and fc_w_grad.abs().sum() > 0 and fc_b_grad.abs().sum() > 0


def test_expectations_are_bounded_and_the_circuit_runs_in_float64():
    layer = QuantumLayer.v2(StudentConfig(qubits=3, layers=1), EXACT[0])
    assert layer.layer.weights.dtype == torch.float64
    out = layer(torch.randn(10, 8))
    assert out.dtype == torch.float32 and out.abs().max() <= 1.0 + 1e-6


def test_qubit_and_angle_encodings_prepare_their_definitions_states():
    # The paper ansatz with zero weights is the identity. Both take x = pi tanh(f): angle
    # prepares RY(x)|0> (<Z> = cos x), qubit cos x|0> + sin x|1> (<Z> = cos 2x).
    f = torch.tensor([[0.3, -1.2]])
    x = torch.pi * torch.tanh(f)
    for encoding, expected in (("qubit", torch.cos(2 * x)), ("angle", torch.cos(x))):
        layer = QuantumLayer.v2(StudentConfig(qubits=2, layers=1, encoding=encoding, ansatz="paper"), EXACT[0])
        with torch.no_grad():
            layer.layer.weights.zero_()
        assert torch.allclose(layer(f), expected, atol=1e-6), encoding


def test_paper_ansatz_has_per_qubit_and_shared_parameters():
    from qkd_pl.circuits import ansatz_weight_shape

    assert ansatz_weight_shape("paper", 2, 4) == (2, 4 * 4 + 3)
