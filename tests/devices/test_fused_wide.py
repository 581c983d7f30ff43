"""qkd.fused and qkd.fused32 against default.qubit at 9, 10 and 12 qubits.

``auto`` picks qkd.fused up to 16 qubits, and from 9 qubits on the fused path splits the wires
into three or more chunks (CHUNK_QUBITS = 4: 3+3+3 at 9, 4+3+3 at 10, 4+4+4 at 12), so a local
step applies a *middle* chunk, one with wires on both sides, by an einsum instead of a plain
matrix product (``fused_sim._apply_chunk``); up to 8 qubits there are at most two chunks and that
branch never runs. Here random circuits and the students' circuits (each encoding with each
ansatz) at those widths must give default.qubit's outputs and torch-backprop gradients: to 1e-9
on qkd.fused (float64), to a relative and absolute 1e-5 on qkd.fused32 (complex64), as in
test_fused_differential.py (the same comparison, the same family of random circuits). Batches
are small (3 samples) to keep default.qubit's side fast.
"""

from __future__ import annotations

import random

import pennylane as qml
import pytest
import torch

from qkd_pl.circuits import ANSATZES, ENCODINGS, ansatz_weight_shape, n_features, v2_circuit
from qkd_pl.config import StudentConfig
from qkd_pl.devices import fused_sim
from qkd_pl.devices.fused import FusedQubit
from tests_helpers_circuits import random_circuit

WIDTHS = [9, 10, 12]


def outputs_and_gradients(circuit, device, args):
    """The flattened outputs of ``circuit`` on ``device`` and the gradients of their weighted sum
    (every output counting differently) in every argument, by torch backprop."""
    inputs = [a.detach().clone().requires_grad_(True) for a in args]
    out = qml.QNode(circuit, device, interface="torch", diff_method="backprop")(*inputs)
    flat = torch.cat([torch.as_tensor(o).reshape(-1) for o in (out if isinstance(out, (tuple, list)) else [out])])
    weights = torch.linspace(0.5, 1.5, flat.numel(), dtype=flat.dtype)
    grads = (torch.autograd.grad((flat * weights).sum(), inputs, allow_unused=True) if flat.requires_grad
             else [None] * len(inputs))  # a circuit none of whose gates reads the arguments
    return flat.detach(), [torch.zeros_like(i) if g is None else g for g, i in zip(grads, inputs)]


def agree(circuit, devices, *args) -> None:
    """``circuit`` gives default.qubit's outputs and gradients on each of ``devices`` (qkd.fused
    to 1e-9, qkd.fused32 to a relative and absolute 1e-5); default.qubit runs it once for all."""
    b, gb = outputs_and_gradients(circuit, qml.device("default.qubit", wires=devices[0].wires), args)
    for device in devices:
        a, ga = outputs_and_gradients(circuit, device, args)
        single = device.c_dtype == torch.complex64
        tol = {"rtol": 1e-5, "atol": 1e-5} if single else {"atol": 1e-9}
        assert a.shape == b.shape, (device.name, a.shape, b.shape)
        assert a.dtype == (torch.float32 if single else torch.float64), (device.name, a.dtype)
        assert torch.allclose(a.double(), b, **tol), f"{device.name}: outputs differ by {(a - b).abs().max():.3g}"
        for x, y in zip(ga, gb):
            assert torch.allclose(x.double(), y, **tol), f"{device.name}: gradients differ by {(x - y).abs().max():.3g}"


def devices(n: int) -> list[FusedQubit]:
    """A qkd.fused and a qkd.fused32 of n wires, each with one plan cache for all circuits of a test."""
    return [FusedQubit(wires=n), FusedQubit(wires=n, c_dtype=torch.complex64)]


def t(*shape, seed=0):
    return torch.rand(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)) * 3 - 1.5


@pytest.fixture
def middle_chunks(monkeypatch):
    """The (n, start, size, batched matrix) of every chunk applied with wires on both sides of it."""
    seen = []
    apply = fused_sim._apply_chunk

    def spy(state, n, start, size, k):
        if 0 < start and start + size < n:
            seen.append((n, start, size, k.dim() == 3))
        return apply(state, n, start, size, k)

    monkeypatch.setattr(fused_sim, "_apply_chunk", spy)
    return seen


def test_these_widths_have_a_middle_chunk():
    assert fused_sim.CHUNK_QUBITS == 4
    assert fused_sim._chunks(8) == [(0, 4), (4, 4)]  # the widest without one
    assert fused_sim._chunks(9) == [(0, 3), (3, 3), (6, 3)]
    assert fused_sim._chunks(10) == [(0, 4), (4, 3), (7, 3)]
    assert fused_sim._chunks(12) == [(0, 4), (4, 4), (8, 4)]


@pytest.mark.parametrize("n", WIDTHS)
def test_random_circuits(n, middle_chunks):
    fused = devices(n)
    for i in range(4):
        circuit, nx, nw = random_circuit(random.Random(7000 + 100 * n + i), random.Random(i), n)
        w = t(nw, seed=300 + i)
        for batch in ((None, 3) if i == 0 else (3,)):  # one circuit also unbatched
            x = t(nx, seed=i) if batch is None else t(batch, nx, seed=i)
            agree(circuit, fused, x, w)
    assert all(d.fast_executions > 0 for d in fused)
    # A middle chunk applied both as one matrix for the batch (weights) and per sample (inputs).
    assert {(n, batched) for n, _, _, batched in middle_chunks} == {(n, False), (n, True)}, middle_chunks


@pytest.mark.slow
@pytest.mark.parametrize("n", WIDTHS)
@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_student_circuits(n, encoding, middle_chunks):
    """Every ansatz after this encoding, <Z> on each qubit, 2 layers: batched inputs and weights,
    both differentiated, on one device per width as a student's layer would be."""
    fused = devices(n)
    for k, ansatz in enumerate(ANSATZES):
        cfg = StudentConfig(qubits=n, layers=2, encoding=encoding, ansatz=ansatz, rotation="X")
        x = t(3, n_features(encoding, n), seed=n + k)
        w = t(*ansatz_weight_shape(ansatz, 2, n), seed=10 * n + k)
        agree(v2_circuit(cfg), fused, x, w)
    assert all(d.fallback_executions == 0 and d.fast_executions == len(ANSATZES) for d in fused)
    assert middle_chunks


@pytest.mark.parametrize("readout", ["zz", "probs"])
def test_other_readouts_at_twelve_qubits(readout):
    cfg = StudentConfig(qubits=12, layers=2, encoding="angle", ansatz="strong", readout=readout)
    fused = devices(12)
    agree(v2_circuit(cfg), fused, t(3, 12, seed=1), t(*ansatz_weight_shape("strong", 2, 12), seed=2))
    assert all(d.fallback_executions == 0 for d in fused)


def test_twelve_qubit_student_circuit_by_device_name():
    """qkd.fused32 as PennyLane builds it by name, at 12 qubits: same answers as default.qubit."""
    cfg = StudentConfig(qubits=12, layers=2, encoding="amplitude", ansatz="ring")
    device = qml.device("qkd.fused32", wires=12)
    agree(v2_circuit(cfg), [device], t(3, 2**12, seed=3), t(*ansatz_weight_shape("ring", 2, 12), seed=4))
    assert device.fast_executions > 0 and device.fallback_executions == 0
