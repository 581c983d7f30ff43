"""Readouts: each against a hand computation on a product state, on every exact simulator that
can differentiate it (outputs and gradients to 1e-5), and on a shot-based device within a
stated bound (5 standard errors of the estimate, plus 1e-3)."""

import itertools
import math

import pytest
import torch

from qkd_pl.circuits import READOUTS, QuantumLayer
from qkd_pl.config import StudentConfig
from qkd_pl.devices import Backend, resolve_backend

EXACT = [Backend("default.qubit", "backprop", "test"), Backend("qkd.fused", "backprop", "test"),
         Backend("lightning.qubit", "adjoint", "test")]


def layer(readout, backend, qubits=3, ansatz="strong", encoding="angle"):
    torch.manual_seed(5)
    return QuantumLayer.v2(StudentConfig(qubits=qubits, layers=2, encoding=encoding, ansatz=ansatz,
                                         readout=readout), backend)


def expected(readout, features):
    """RY(theta_i)|0> on each wire, theta = pi tanh(f) (the angle encoding): <Z_i> = cos theta_i,
    and the basis states' probabilities are products of cos^2(theta/2) and sin^2(theta/2), wire 0
    the most significant bit."""
    angles = [math.pi * math.tanh(f) for f in features]
    z = [math.cos(a) for a in angles]
    if readout == "z":
        return z
    if readout == "zz":
        return z + [a * b for a, b in itertools.combinations(z, 2)]
    out = []
    for bits in itertools.product([0, 1], repeat=len(angles)):
        out.append(math.prod(math.sin(a / 2) ** 2 if b else math.cos(a / 2) ** 2 for a, b in zip(angles, bits)))
    return out


@pytest.mark.parametrize("readout", list(READOUTS))
@pytest.mark.parametrize("backend", EXACT[:2], ids=lambda b: b.device)
def test_each_readout_matches_its_hand_computation(readout, backend):
    q = layer(readout, backend, ansatz="strong-local")
    with torch.no_grad():
        q.layer.weights.zero_()  # the ansatz is the identity: the state is the encoding's product state
        angles = torch.tensor([[0.3, -1.2, 2.5], [1.0, 0.1, -0.4]])
        out = q(angles)
    assert out.shape == (2, READOUTS[readout].width(3))
    for row, a in zip(out.tolist(), angles.tolist()):
        assert row == pytest.approx(expected(readout, a), abs=1e-6)


@pytest.mark.parametrize("readout", list(READOUTS))
@pytest.mark.parametrize("qubits", [3, 5])
def test_exact_simulators_agree_on_outputs_and_gradients(readout, qubits):
    backends = EXACT if not READOUTS[readout].probabilities else EXACT[:2]  # adjoint cannot do probs
    results = []
    for backend in backends:
        q = layer(readout, backend, qubits, encoding="amplitude")
        x = torch.randn(4, 2**qubits, generator=torch.Generator().manual_seed(1), requires_grad=True)
        out = q(x)
        weights = torch.arange(1.0, out.shape[1] + 1, dtype=out.dtype)  # so gradients differ per output
        (out * weights).sum().backward()
        results.append((out.detach(), q.layer.weights.grad, x.grad))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.allclose(a.double(), b.double(), atol=1e-5), (a - b).abs().max()


@pytest.mark.parametrize("readout", ["zz", "probs"])
def test_a_shot_based_device_agrees_within_shot_noise(readout):
    shots = 4000
    x = torch.randn(3, 3, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        exact = layer(readout, resolve_backend("default.qubit", 3))(x).double()
        sampled = layer(readout, resolve_backend("qiskit.aer", 3, shots=shots))(x).double()
    var = (1 - exact**2) if readout == "zz" else exact * (1 - exact)
    bound = 5 * torch.sqrt(var.clamp_min(0) / shots) + 1e-3
    assert ((sampled - exact).abs() <= bound).all(), (sampled - exact).abs().max()
    assert not torch.equal(sampled, exact)
