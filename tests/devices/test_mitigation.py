"""Readout mitigation: the assignment-matrix correction against an explicit Kronecker product, and
in the noisy: emulation, what it takes out of a drop (the readouts') and what it leaves (the gates')."""

import functools

import pennylane as qml
import pytest
import torch

from qkd_pl.circuits import QuantumLayer
from qkd_pl.config import StudentConfig
from qkd_pl.devices import resolve_backend
from qkd_pl.devices.ibm import fake_backend
from qkd_pl.devices.mitigation import unconfuse
from qkd_pl.devices.noisy import NoisyEmulator
from qkd_pl.errors import QkdError


def _random_confusion(g):
    e = torch.rand(2, generator=g, dtype=torch.float64) * 0.2  # P(1|0), P(0|1)
    return torch.tensor([[1 - e[0], e[0]], [e[1], 1 - e[1]]], dtype=torch.float64)


def test_the_correction_inverts_independent_readouts_in_the_bit_order_of_the_index():
    g = torch.Generator().manual_seed(0)
    m = 3
    confusion = [_random_confusion(g) for _ in range(m)]
    true = torch.softmax(torch.randn(4, 2**m, generator=g, dtype=torch.float64), dim=1)
    # index bit j is classical bit j, so bit m-1 is the most significant: kron(M_{m-1}, ..., M_0)
    whole = functools.reduce(torch.kron, reversed(confusion))
    read = true @ whole
    assert torch.allclose(unconfuse(read, confusion), true, atol=1e-13)
    swapped = unconfuse(read, list(reversed(confusion)))  # the bit order matters: a mix-up is caught
    assert not torch.allclose(swapped, true, atol=1e-3)


def _outputs(device: str, readout: str, mitigation: str = "none", noiseless: bool = False) -> torch.Tensor:
    """A 3-qubit student with no two-qubit gate (gate errors are then tiny), on fake_manila's emulation."""
    cfg = StudentConfig(qubits=3, layers=1, encoding="angle", ansatz="strong-local", readout=readout)
    torch.manual_seed(0)  # the same weights in every call
    layer = QuantumLayer.v2(cfg, resolve_backend("qkd.fused", 3))
    emulator = NoisyEmulator(3, fake_backend(device), noiseless=noiseless, mitigation=mitigation)
    qnode = qml.QNode(layer.qnode.func, emulator, interface="torch", diff_method="backprop")
    torch.manual_seed(1)
    x = torch.randn(8, 3, dtype=torch.float64)
    return torch.stack(list(qnode(x, layer.layer.weights.detach())) if readout != "probs" else
                       [qnode(x, layer.layer.weights.detach())], -1).reshape(8, -1)


@pytest.mark.parametrize("readout", ["z", "probs"])
def test_readout_mitigation_takes_out_the_readout_part_of_the_drop(readout):
    exact = _outputs("fake_manila", readout, noiseless=True)
    raw = _outputs("fake_manila", readout)
    fixed = _outputs("fake_manila", readout, mitigation="readout")
    raw_error, left = (raw - exact).abs().max(), (fixed - exact).abs().max()
    assert raw_error > 5e-3  # fake_manila's readouts are off by a few percent
    assert left < raw_error / 5, (raw_error, left)  # what is left is the single-qubit gates' errors


def test_mitigation_is_refused_where_it_does_not_run():
    with pytest.raises(QkdError, match="does not take it yet"):
        resolve_backend("qkd.fused", 3, mitigation="readout")
    with pytest.raises(QkdError, match="training does not take it"):
        resolve_backend("noisy:fake_manila", 3, training=True, mitigation="readout")
    with pytest.raises(QkdError, match="unknown --mitigation 'zne'"):
        resolve_backend("noisy:fake_manila", 3, mitigation="zne")
    assert resolve_backend("noisy:fake_manila", 3, mitigation="readout").mitigation == "readout"


def test_the_transpiler_level_reaches_the_devices_and_is_refused_where_nothing_is_transpiled():
    from qkd_pl.devices import make_device

    assert make_device(resolve_backend("noisy:fake_manila", 3, optimization_level=2), 3).optimization_level == 2
    assert make_device(resolve_backend("ibm:fake_manila", 3, optimization_level=3), 3).optimization_level == 3
    assert resolve_backend("noisy:fake_manila", 3).optimization_level == 1
    with pytest.raises(QkdError, match="takes none"):
        resolve_backend("qkd.fused", 3, optimization_level=2)
    with pytest.raises(QkdError, match="takes none"):
        resolve_backend("ibm:fake_manila", 3, per_circuit=True, optimization_level=2)
    with pytest.raises(QkdError, match="levels are 0, 1, 2 and 3"):
        resolve_backend("noisy:fake_manila", 3, optimization_level=4)
