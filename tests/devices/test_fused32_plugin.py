"""qkd.fused32 is a PennyLane device by name, like qkd.fused: ``qml.device("qkd.fused32", wires=n)``
builds it from the ``pennylane.plugins`` entry point (pyproject.toml) with PennyLane's usual
arguments, and its answers are default.qubit's to 1e-5."""

from __future__ import annotations

import warnings
from importlib.metadata import entry_points

import numpy as np
import pennylane as qml
import pytest
import torch

from qkd_pl.devices.fused import FusedQubit, FusedQubit32


def circuit(x, w):
    qml.AngleEmbedding(x, wires=range(3), rotation="Y")
    qml.StronglyEntanglingLayers(w, wires=range(3))
    qml.CRX(w[0, 0, 0], wires=[2, 0])
    return ([qml.expval(qml.PauliZ(i)) for i in range(3)] + [qml.expval(qml.PauliZ(0) @ qml.PauliZ(2))]
            + [qml.probs(wires=[1, 2])])


def inputs():
    g = torch.Generator().manual_seed(5)
    return (torch.rand(4, 3, dtype=torch.float64, generator=g) * 3,
            torch.rand(2, 3, 3, dtype=torch.float64, generator=g) * 3)


def run(device, interface="torch"):
    x, w = (a.clone().requires_grad_(True) for a in inputs())
    out = qml.QNode(circuit, device, interface=interface, diff_method="backprop")(x, w)
    flat = torch.cat([o.reshape(-1) for o in out])
    gx, gw = torch.autograd.grad((flat * torch.linspace(0.5, 1.5, flat.numel(), dtype=flat.dtype)).sum(), [x, w])
    return flat.detach(), gx, gw


def test_the_entry_point_names_the_complex64_class():
    (ep,) = [e for e in entry_points(group="pennylane.plugins") if e.name == "qkd.fused32"]
    assert ep.load() is FusedQubit32
    (ep,) = [e for e in entry_points(group="pennylane.plugins") if e.name == "qkd.fused"]
    assert ep.load() is FusedQubit


def test_built_by_name_with_pennylanes_arguments():
    dev = qml.device("qkd.fused32", wires=3)
    assert isinstance(dev, FusedQubit32) and isinstance(dev, FusedQubit)
    assert dev.name == "qkd.fused32" and dev.c_dtype == torch.complex64 and len(dev.wires) == 3
    assert qml.device("qkd.fused", wires=3).c_dtype == torch.complex128
    labelled = qml.device("qkd.fused32", wires=["a", "b"], seed=3, max_workers=None)
    assert list(labelled.wires) == ["a", "b"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # shots on the device: deprecated by PennyLane, still accepted
        assert qml.device("qkd.fused32", wires=1, shots=100).shots.total_shots == 100


def test_same_expectation_values_and_gradients_as_default_qubit():
    dev = qml.device("qkd.fused32", wires=3)
    out, gx, gw = run(dev)
    ref, rx, rw = run(qml.device("default.qubit", wires=3))
    assert dev.fast_executions == 1 and dev.fallback_executions == 0  # the complex64 fast path ran
    assert out.dtype == torch.float32 and out.shape == ref.shape == (4 * 4 + 4 * 4,)
    for a, b in ((out, ref), (gx, rx), (gw, rw)):
        assert torch.allclose(a.double(), b, rtol=1e-5, atol=1e-5), (a.double() - b).abs().max()


def test_numpy_parameters_and_shots_go_to_default_qubit():
    def one(x):
        qml.RY(x, wires=0)
        qml.CNOT([0, 1])
        return qml.expval(qml.PauliZ(1))

    dev = qml.device("qkd.fused32", wires=2, seed=11)
    exact = qml.QNode(one, dev)(np.array(0.4))
    assert abs(exact - np.cos(0.4)) < 1e-12  # default.qubit's float64, not complex64
    sampled = qml.set_shots(qml.QNode(one, dev), 20_000)(np.array(0.4))
    assert abs(sampled - np.cos(0.4)) < 5 * np.sin(0.4) / np.sqrt(20_000)  # 5 standard errors
    assert dev.fast_executions == 0 and dev.fallback_executions == 2


def test_usable_in_a_torch_layer():
    def student(inputs, w):
        qml.AngleEmbedding(inputs, wires=range(3))
        qml.StronglyEntanglingLayers(w, wires=range(3))
        return [qml.expval(qml.PauliZ(i)) for i in range(3)]

    dev = qml.device("qkd.fused32", wires=3)
    layer = qml.qnn.TorchLayer(qml.QNode(student, dev, interface="torch"), {"w": (2, 3, 3)})
    out = layer(torch.rand(5, 3))
    out.sum().backward()
    assert out.shape == (5, 3) and layer.w.grad is not None and dev.fast_executions > 0
