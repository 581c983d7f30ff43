"""The quantum layer gives the same outputs and gradients on two independent simulators."""

import pytest
import torch

from qkd_pl.circuits import QuantumLayer
from qkd_pl.config import StudentConfig
from qkd_pl.devices import Backend
from qkd_pl.reduction.fc import FullyConnected

EXACT = [Backend("default.qubit", "backprop", "test"), Backend("lightning.qubit", "adjoint", "test")]


def run(backend: Backend, qubits: int, layers: int):
    torch.manual_seed(7)
    fc = FullyConnected((1, 4, 4), 2**qubits)
    layer = QuantumLayer(StudentConfig(qubits=qubits, layers=layers), backend)
    x = torch.randn(5, 1, 4, 4)
    out = layer(fc(x))
    (out * torch.arange(1.0, qubits + 1)).sum().backward()  # weight outputs differently so gradients differ
    return out.detach(), layer.layer.weights.grad, fc.linear.weight.grad, fc.linear.bias.grad


@pytest.mark.parametrize("qubits,layers", [(2, 1), (3, 2), (4, 2)])
def test_backprop_and_adjoint_agree_on_outputs_and_gradients(qubits, layers):
    ref, other = (run(b, qubits, layers) for b in EXACT)
    assert ref[0].shape == (5, qubits)
    for a, b in zip(ref, other):
        assert torch.allclose(a.double(), b.double(), atol=1e-5), (a - b).abs().max()


def test_gradients_reach_the_reduction_layer():
    _, w_grad, fc_w_grad, fc_b_grad = run(EXACT[0], 3, 1)
    assert w_grad.abs().sum() > 0 and fc_w_grad.abs().sum() > 0 and fc_b_grad.abs().sum() > 0


def test_expectations_are_bounded_and_runs_in_float64_inside():
    layer = QuantumLayer(StudentConfig(qubits=3, layers=1), EXACT[0])
    assert layer.layer.weights.dtype == torch.float64
    out = layer(torch.randn(10, 8))
    assert out.dtype == torch.float32 and out.abs().max() <= 1.0 + 1e-6
