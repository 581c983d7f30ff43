"""A traced graph bakes in every Python branch its call took on values (circuits/compiled.py):
qkd-pl's encodings take none, and a circuit that does is caught by the probes and left on its
QNode, with one warning, instead of returning wrong numbers. Random circuits through traced
layers, on inputs of random norms, agree with default.qubit in outputs and gradients."""

from __future__ import annotations

import random
import warnings

import pennylane as qml
import pytest
import torch

from qkd_pl.circuits import ENCODINGS, QuantumLayer, n_features
from qkd_pl.config import StudentConfig
from qkd_pl.devices import Backend
from qkd_pl.devices.fused import FusedQubit
from qkd_pl.errors import QkdWarning
from tests_helpers_circuits import random_circuit

FUSED = Backend("qkd.fused", "backprop", "test")


def unit_rows(n: int, d: int, seed: int) -> torch.Tensor:
    x = torch.randn(n, d, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    return x / x.norm(dim=1, keepdim=True)


def calls(layer: QuantumLayer, x: torch.Tensor, n: int) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(n):
            layer(x)
    return [w for w in caught if issubclass(w.category, QkdWarning)]


def amplitude_circuit(inputs, weights):  # the review's case: PennyLane normalizes only when the norm is not 1
    qml.AmplitudeEmbedding(inputs, wires=[0, 1], normalize=True)
    qml.StronglyEntanglingLayers(weights, wires=[0, 1])
    return [qml.expval(qml.PauliZ(i)) for i in range(2)]


def validating_circuit(inputs, weights):  # inputs normalized before the layer; PennyLane checks the norm
    qml.AmplitudeEmbedding(inputs, wires=[0, 1], normalize=False)
    qml.StronglyEntanglingLayers(weights, wires=[0, 1])
    return [qml.expval(qml.PauliZ(i)) for i in range(2)]


def branching_circuit(inputs, weights):  # a user's test on an input value
    if qml.math.max(qml.math.abs(inputs)) < 1.0:
        qml.AngleEmbedding(inputs, wires=[0, 1])
    else:
        qml.AngleEmbedding(inputs / 10, wires=[0, 1], rotation="X")
    qml.StronglyEntanglingLayers(weights, wires=[0, 1])
    return [qml.expval(qml.PauliZ(i)) for i in range(2)]


def user_layer(circuit) -> QuantumLayer:
    torch.manual_seed(0)
    qnode = qml.QNode(circuit, FusedQubit(wires=2), interface="torch", diff_method="backprop")
    return QuantumLayer(qnode, {"weights": (1, 2, 3)}, 2)


@pytest.mark.parametrize("circuit,traced_on,then", [
    (amplitude_circuit, unit_rows(8, 4, 0), torch.randn(8, 4, dtype=torch.float64) * 5),
    (branching_circuit, unit_rows(8, 2, 0) * 0.5, unit_rows(8, 2, 1) * 3),
], ids=["amplitude-normalize", "python-if-on-input"])
def test_a_circuit_that_branches_on_values_stays_on_its_qnode_with_one_warning(circuit, traced_on, then):
    layer = user_layer(circuit)
    first = calls(layer, traced_on, 4)  # traced on the third call, on inputs that take one branch
    # PennyLane's branch traces and is caught by the probes; a Python `if` on a tensor fails to trace
    assert len(first) == 1 and ("Python branch" in str(first[0].message) or "tracing it failed" in
                                str(first[0].message)), [str(w.message) for w in first]
    assert layer.compiled.untraceable
    traces = layer.compiled.traces
    assert calls(layer, then, 4) == []  # said once, not once per call or per shape
    assert torch.equal(layer(then), layer.layer(then))  # the QNode's numbers
    assert layer(then).abs().max() <= 1.0
    assert layer.compiled.traces == traces  # not traced again


def test_a_circuit_that_validates_its_inputs_keeps_running_on_its_qnode():
    """Its QNode raises on the probes' inputs of other norms: the graph cannot be checked, so the
    layer stays on its QNode, with one warning, and the user's calls go on working."""
    layer = user_layer(validating_circuit)
    caught = calls(layer, unit_rows(8, 4, 0), 4)
    assert len(caught) == 1 and "refused a probe" in str(caught[0].message)
    x = unit_rows(8, 4, 3)
    assert torch.equal(layer(x), layer.layer(x))


def test_graphs_of_other_shapes_are_dropped_once_a_branch_is_found():
    layer = user_layer(amplitude_circuit)
    first = torch.randn(5, 4, dtype=torch.float64) * 3  # not unit norm: the trace holds the division
    calls(layer, first, 4)
    assert layer.compiled.traces == 1 and not layer.compiled.untraceable
    calls(layer, unit_rows(8, 4, 0), 4)  # unit norm: this trace holds no division, and a probe says so
    assert layer.compiled.untraceable and all(g is None for g in layer.compiled._graphs.values())
    assert torch.equal(layer(first), layer.layer(first))


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_qkd_pl_encodings_keep_their_graph_and_equal_the_qnode_on_other_norms(encoding):
    torch.manual_seed(0)
    cfg = StudentConfig(qubits=3, layers=2, encoding=encoding, ansatz="strong", readout="z")
    layer = QuantumLayer.v2(cfg, FUSED)
    d = n_features(encoding, 3)
    assert calls(layer, unit_rows(6, d, 0), 4) == []
    assert layer.compiled.traces == 1 and not layer.compiled.untraceable
    for scale in (1e-3, 0.5, 7.0, 300.0):
        x = torch.randn(6, d, dtype=torch.float64, generator=torch.Generator().manual_seed(int(scale * 10))) * scale
        graph = layer.compiled._graphs[layer.compiled._key(x, dict(layer.layer.qnode_weights))]
        assert graph is not None  # the call below runs the traced graph
        assert torch.allclose(layer(x), layer.layer(x), atol=1e-12, rtol=0)


def test_tracing_leaves_the_global_random_state_alone():
    """A run seeded once must draw the same numbers whether or not a trace (and its probes) happened."""
    layer = QuantumLayer.v2(StudentConfig(qubits=2, layers=1, encoding="amplitude"), FUSED)
    x = unit_rows(4, 4, 0)
    torch.manual_seed(5)
    calls(layer, x, 4)
    after = torch.rand(3)
    torch.manual_seed(5)
    assert torch.equal(torch.rand(3), after)


def layer_for(circuit, n: int, nw: int) -> QuantumLayer:
    def student(inputs, weights):  # TorchLayer finds the input by this name
        return circuit(inputs, weights)

    qnode = qml.QNode(student, FusedQubit(wires=n), interface="torch", diff_method="backprop")
    layer = QuantumLayer(qnode, {"weights": (nw,)}, 0)
    with torch.no_grad():
        layer.layer.weights.copy_(torch.rand(nw, dtype=torch.float64, generator=torch.Generator().manual_seed(nw)) * 3)
    return layer


def reference(circuit, n: int, x: torch.Tensor, w: torch.Tensor):
    qnode = qml.QNode(circuit, qml.device("default.qubit", wires=n), interface="torch", diff_method="backprop")
    x = x.clone().requires_grad_(True)
    w = w.clone().requires_grad_(True)
    out = qnode(x, w)
    out = torch.cat([torch.as_tensor(o).reshape(len(x), -1) for o in (out if isinstance(out, (list, tuple)) else [out])],
                    dim=1)
    (out * torch.linspace(0.5, 1.5, out.shape[1], dtype=out.dtype)).sum().backward()
    return out.detach(), x.grad, w.grad


def reads_inputs(circuit, n: int, nx: int, nw: int) -> bool:
    out = qml.QNode(circuit, qml.device("default.qubit", wires=n))(torch.rand(3, nx), torch.rand(nw))
    return all(torch.as_tensor(o).ndim >= 1 and len(o) == 3 for o in (out if isinstance(out, (list, tuple)) else [out]))


@pytest.mark.slow
@pytest.mark.parametrize("n", [2, 3, 4])
def test_random_circuits_through_traced_layers_equal_default_qubit_on_inputs_of_random_norms(n):
    rng = random.Random(n)
    traced = 0
    for i in range(12):
        circuit, nx, nw = random_circuit(random.Random(7000 + 100 * n + i), random.Random(i), n)
        if not reads_inputs(circuit, n, nx, nw):
            continue  # a layer's output must carry the batch
        layer = layer_for(circuit, n, nw)
        for k in range(4):  # the trace is made on the third call; the fourth runs the graph on other norms
            norms = torch.tensor([10 ** rng.uniform(-2, 2) for _ in range(5)], dtype=torch.float64)
            x = torch.randn(5, nx, dtype=torch.float64, generator=torch.Generator().manual_seed(i * 10 + k))
            x = x / x.norm(dim=1, keepdim=True) * norms[:, None]
            xg = x.clone().requires_grad_(True)
            layer.zero_grad()
            out = layer(xg)
            (out * torch.linspace(0.5, 1.5, out.shape[1], dtype=out.dtype)).sum().backward()
            want, want_dx, want_dw = reference(circuit, n, x, layer.layer.weights.detach())
            assert torch.allclose(out.detach(), want, atol=1e-9), (i, k, (out - want).abs().max())
            assert torch.allclose(xg.grad, want_dx, atol=1e-9), (i, k)
            got_dw = layer.layer.weights.grad
            zeros = torch.zeros(nw, dtype=torch.float64)  # a circuit that reads no weight has no weight gradient
            assert torch.allclose(zeros if got_dw is None else got_dw, zeros if want_dw is None else want_dw,
                                  atol=1e-9), (i, k)
        assert layer.compiled.untraceable is None, layer.compiled.untraceable  # no false alarm
        traced += layer.compiled.traces
    assert traced > 0  # trusted graphs ran, not only the QNodes


@pytest.mark.parametrize("rewrite", ["unknown-operation", "wrong-numbers"])
def test_inductor_mode_says_once_when_the_real_rewrite_cannot_be_used(monkeypatch, rewrite):
    """QKD_COMPILE=inductor on a circuit whose real-arithmetic rewrite is refused or disagrees: the
    traced graph keeps running (the QNode's numbers) and one warning says the layer is not compiled."""
    from qkd_pl.circuits import compiled

    def broken(graph):
        if rewrite == "unknown-operation":
            return None
        return _Scaled(graph)

    monkeypatch.setenv("QKD_COMPILE", "inductor")
    monkeypatch.setattr(compiled, "to_real", broken)
    layer = QuantumLayer.v2(StudentConfig(qubits=2, layers=1, encoding="angle"), FUSED)
    caught = calls(layer, unit_rows(4, 2, 0), 4) + calls(layer, unit_rows(6, 2, 1), 4)  # two shapes, two traces
    assert layer.compiled.traces == 2 and layer.compiled.untraceable is None
    assert len(caught) == 1 and "not compiled" in str(caught[0].message)
    assert ("does not know" if rewrite == "unknown-operation" else "differs") in str(caught[0].message)
    x = unit_rows(6, 2, 1)
    assert torch.equal(layer(x), layer.layer(x))


class _Scaled(torch.nn.Module):
    """A 'rewrite' that is off by a factor: what the safeguard in compiled._real must catch."""

    def __init__(self, graph):
        super().__init__()
        self.graph = graph

    def forward(self, *args):
        return self.graph(*args) * 1.01
