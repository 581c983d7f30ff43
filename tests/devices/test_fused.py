"""qkd.fused: the fused path agrees with default.qubit on outputs and gradients (to 1e-10, both
being float64 backprop), actually runs the circuits students use, and hands everything it
does not understand to default.qubit instead of answering wrongly."""

import itertools

import numpy as np
import pennylane as qml
import pytest
import torch

from qkd_pl.circuits import ANSATZES, ENCODINGS, QuantumLayer
from qkd_pl.config import StudentConfig
from qkd_pl.devices import Backend
from qkd_pl.devices.fused import FusedQubit

ATOL = 1e-10


def rand(*shape):
    return torch.rand(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(sum(shape)))


def compare(circuit, n_wires: int, *args, expect_fast: bool = True, diff: bool = True):
    """Run ``circuit`` on qkd.fused and default.qubit; outputs and gradients must agree."""
    results = []
    fused = FusedQubit(wires=n_wires)
    for dev in (fused, qml.device("default.qubit", wires=n_wires)):
        inputs = [a.detach().clone().requires_grad_(diff and a.is_floating_point()) for a in args]
        out = qml.QNode(circuit, dev, interface="torch", diff_method="backprop")(*inputs)
        flat = torch.cat([torch.as_tensor(o).reshape(-1) for o in (out if isinstance(out, (tuple, list)) else [out])])
        grads = []
        if diff:
            weights = torch.arange(1, flat.numel() + 1, dtype=flat.dtype)  # weighted so gradients differ
            grads = torch.autograd.grad((flat * weights).sum(), [i for i in inputs if i.requires_grad],
                                        allow_unused=True)
        results.append((flat.detach(), grads))
    (a, ga), (b, gb) = results
    assert a.shape == b.shape and torch.allclose(a, b, atol=ATOL), (a - b).abs().max()
    for x, y in zip(ga, gb):
        assert (x is None) == (y is None)
        if x is not None:
            assert torch.allclose(x, y, atol=ATOL), (x - y).abs().max()
    assert (fused.fast_executions > 0, fused.fallback_executions > 0) == (expect_fast, not expect_fast)
    return a


@pytest.mark.parametrize("encoding,ansatz", list(itertools.product(ENCODINGS, ANSATZES)))
def test_every_student_circuit_runs_on_the_fused_path(encoding, ansatz):
    backend = Backend("qkd.fused", "backprop", "test")
    layer = QuantumLayer.v2(StudentConfig(qubits=4, layers=2, encoding=encoding, ansatz=ansatz), backend)
    layer(torch.randn(6, 16 if encoding == "amplitude" else 4)).sum().backward()
    device = layer.qnode.device
    assert device.fast_executions > 0 and device.fallback_executions == 0


def test_gates_permutations_and_dense_two_qubit_gates():
    def circuit(x, w):
        qml.AmplitudeEmbedding(x, wires=range(4), normalize=True, pad_with=0.0)
        qml.Hadamard(0), qml.S(1), qml.T(2), qml.PauliY(3), qml.PhaseShift(w[0], wires=1)
        qml.Rot(w[1], w[2], w[3], wires=2)
        qml.CNOT([0, 2]), qml.SWAP([1, 3]), qml.Toffoli([0, 1, 3])
        qml.MultiControlledX(wires=[2, 0, 1], control_values=[0, 1])
        qml.CZ([1, 2]), qml.CRX(w[4], wires=[3, 0]), qml.IsingXX(w[5], wires=[0, 1])
        qml.QubitUnitary(qml.matrix(qml.RY(0.7, wires=0)), wires=3)
        return (qml.expval(qml.PauliZ(1)), qml.expval(qml.PauliZ(0) @ qml.PauliZ(3)), qml.probs(wires=[3, 1]),
                qml.probs())

    compare(circuit, 4, rand(5, 10), rand(6))


def test_control_values_are_part_of_the_cached_plan():
    # Same gate names and wires, other control values: a plan keyed by name alone would reuse
    # the first permutation for the second circuit.
    def circuit(values):
        def c(x):
            qml.AngleEmbedding(x, wires=range(3), rotation="Y")
            qml.MultiControlledX(wires=[0, 1, 2], control_values=values)
            return qml.probs(wires=2)
        return c

    dev = FusedQubit(wires=3)
    x = torch.tensor([2.0, 2.5, 0.1])
    outs = [qml.QNode(circuit(v), dev, interface="torch", diff_method="backprop")(x) for v in ([1, 1], [0, 0])]
    refs = [qml.QNode(circuit(v), qml.device("default.qubit", wires=3))(x.numpy()) for v in ([1, 1], [0, 0])]
    for o, r in zip(outs, refs):
        assert np.allclose(o.numpy(), r, atol=ATOL)
    assert not np.allclose(refs[0], refs[1])


def test_templates_with_their_options():
    def circuit(x, w_sel, w_bel):
        qml.AngleEmbedding(x, wires=[0, 2, 1], rotation="X")  # fewer features than wires, other order
        qml.StronglyEntanglingLayers(w_sel, wires=range(4), ranges=[3, 2], imprimitive=qml.CZ)
        qml.BasicEntanglerLayers(w_bel, wires=range(4), rotation=qml.RZ)
        return [qml.expval(qml.PauliZ(i)) for i in range(4)]

    compare(circuit, 4, rand(7, 3), rand(2, 4, 3), rand(3, 4))


def test_single_sample_and_sub_chunk_circuits():
    def circuit(x, w):
        qml.AngleEmbedding(x, wires=range(6), rotation="Z")
        qml.StronglyEntanglingLayers(w, wires=range(6))
        return qml.expval(qml.PauliZ(4))

    compare(circuit, 6, rand(6), rand(1, 6, 3))  # 6 wires: two chunks of 3


def test_unsupported_measurements_fall_back_and_late_state_preparations_are_decomposed():
    def observable(x):
        qml.AngleEmbedding(x, wires=range(2))
        return qml.expval(qml.PauliX(0) @ qml.PauliZ(1))

    def late_state_prep(x):
        qml.Hadamard(0)
        qml.StatePrep(x / torch.linalg.norm(x, dim=-1, keepdim=True), wires=[0, 1])
        return qml.expval(qml.PauliZ(0))

    compare(observable, 2, rand(4, 2), expect_fast=False)
    compare(late_state_prep, 2, rand(4, 4))  # default.qubit's pipeline decomposes it into gates the fused path runs


def test_shots_and_other_differentiation_methods_use_default_qubit():
    def circuit(x):
        qml.RY(x, wires=0)
        return qml.expval(qml.PauliZ(0))

    dev = FusedQubit(wires=1)
    x = torch.tensor(0.4, requires_grad=True)
    sampled = qml.set_shots(qml.QNode(circuit, dev, interface="torch", diff_method="parameter-shift"), 20_000)(x)
    # 20,000 shots of <Z> = cos(0.4): standard error sqrt(1 - cos^2)/sqrt(20000) = 0.0028; 5 sigma.
    assert abs(sampled.item() - np.cos(0.4)) < 5 * 0.0028
    adjoint = qml.QNode(circuit, dev, interface="torch", diff_method="adjoint")(x)
    (grad,) = torch.autograd.grad(adjoint, x)
    assert abs(grad.item() + np.sin(0.4)) < 1e-8
    assert dev.fast_executions == 0  # adjoint derivatives go to default.qubit's own methods, not execute


def test_installed_as_a_pennylane_plugin():
    dev = qml.device("qkd.fused", wires=2)
    assert isinstance(dev, FusedQubit) and dev.name == "qkd.fused"
