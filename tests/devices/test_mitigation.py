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
from qkd_pl.devices.mitigation import nearest_distribution, unconfuse
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
    assert raw_error > 5e-3  # fake_manila's readouts move these outputs by up to 0.25
    assert left < raw_error / 5, (raw_error, left)  # what is left is the single-qubit gates' errors


def test_the_nearest_distribution_is_the_projection_onto_the_simplex():
    p = torch.tensor([[0.5, 0.6, -0.1, 0.0], [0.25, 0.25, 0.25, 0.25], [1.2, -0.1, -0.05, -0.05]], dtype=torch.float64)
    q = nearest_distribution(p)
    assert torch.allclose(q, torch.tensor([[0.45, 0.55, 0, 0], [0.25, 0.25, 0.25, 0.25], [1, 0, 0, 0]],
                                          dtype=torch.float64), atol=1e-12)
    g = torch.Generator().manual_seed(0)
    rows = torch.randn(50, 8, generator=g, dtype=torch.float64) * 0.3 + 0.125
    near = nearest_distribution(rows)
    assert (near >= 0).all() and torch.allclose(near.sum(1), torch.ones(50, dtype=torch.float64))
    for _ in range(200):  # no other distribution is closer (random ones from the simplex)
        other = torch.distributions.Dirichlet(torch.ones(8, dtype=torch.float64)).sample((50,))
        assert ((rows - near).norm(dim=1) <= (rows - other).norm(dim=1) + 1e-12).all()


def test_mitigated_sampled_probabilities_stay_probabilities():
    cfg = StudentConfig(qubits=4, layers=1, readout="probs")
    torch.manual_seed(0)
    layer = QuantumLayer.v2(cfg, resolve_backend("noisy:fake_manila", 4, shots=256, mitigation="readout"))
    with torch.no_grad():
        out = layer(torch.randn(32, 16)).double()
    assert (out >= 0).all() and torch.allclose(out.sum(1), torch.ones(32, dtype=torch.float64))
    assert torch.isfinite(torch.log(out + 1e-3)).all()  # the v1 student's log-probabilities


def test_mitigation_and_the_level_reach_the_emulation():
    from qkd_pl.devices import make_device
    from qkd_pl.devices.parametric import to_parametric

    assert make_device(resolve_backend("noisy:fake_manila", 3, mitigation="readout"), 3).mitigation == "readout"
    cfg = StudentConfig(qubits=8, layers=2, encoding="angle", ansatz="line")
    torch.manual_seed(0)
    layer = QuantumLayer.v2(cfg, resolve_backend("qkd.fused", 8))
    tape = qml.workflow.construct_tape(layer.qnode)(torch.rand(8, dtype=torch.float64), layer.layer.weights.detach())
    structure = to_parametric(tape, list(range(8))).structure
    placed = [make_device(resolve_backend("noisy:fake_brisbane", 8, optimization_level=level), 8)
              .emulation(structure).circuit.physical for level in (1, 2)]
    assert placed[0] == list(range(8)) and placed[1] != placed[0]  # level 2 weighs the qubits' calibration


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
