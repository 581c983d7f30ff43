"""Shot-based devices agree with the exact simulator within a stated statistical bound.

A PauliZ expectation estimated from S shots has standard error sqrt((1 - <Z>^2) / S). We
require every estimate within 5 standard errors (plus 1e-3 for the float path), which a
correct device fails with probability below 1e-6 per value.
"""

import pytest
import torch

from qkd_pl.circuits import QuantumLayer
from qkd_pl.config import StudentConfig
from qkd_pl.devices import resolve_backend

SHOTS = 4000


def outputs(backend, cfg, x):
    torch.manual_seed(3)
    layer = QuantumLayer.v2(cfg, backend)
    with torch.no_grad():
        return layer(x).double()


@pytest.mark.parametrize("encoding", ["amplitude", "angle"])
def test_qiskit_aer_matches_exact_within_shot_noise(encoding):
    cfg = StudentConfig(qubits=3, layers=1, encoding=encoding)
    torch.manual_seed(0)
    x = torch.randn(6, 8 if encoding == "amplitude" else 3)
    exact = outputs(resolve_backend("default.qubit", 3), cfg, x)
    shots = outputs(resolve_backend("qiskit.aer", 3, shots=SHOTS), cfg, x)
    bound = 5 * torch.sqrt((1 - exact**2).clamp_min(0) / SHOTS) + 1e-3
    assert ((shots - exact).abs() <= bound).all(), (shots - exact).abs().max()
    assert not torch.equal(shots, exact)  # it really sampled


def test_noise_model_moves_results_beyond_shot_noise():
    cfg = StudentConfig(qubits=2, layers=1)
    x = torch.randn(4, 4)
    exact = outputs(resolve_backend("default.qubit", 2), cfg, x)
    noisy = outputs(resolve_backend("qiskit.aer", 2, shots=SHOTS, noise="fake_manila"), cfg, x)
    bound = 5 * torch.sqrt((1 - exact**2).clamp_min(0) / SHOTS) + 1e-3
    assert ((noisy - exact).abs() > bound).any()
