"""The traced graph a QuantumLayer on qkd.fused calls after its second call of a shape: the same
outputs and gradients as the QNode (bit for bit) and as lightning.qubit (1e-5; default.qubit for the
probs readout, which lightning's adjoint method cannot differentiate), for every
encoding x ansatz x readout, on qkd.fused and qkd.fused32; retraced when its key changes; never made where the fast path did
not run."""

import copy
import functools
import itertools

import pennylane as qml
import pytest
import torch

from qkd_pl.circuits import ANSATZES, ENCODINGS, READOUTS, QuantumLayer, compiled, n_features  # noqa: F401
from qkd_pl.config import StudentConfig
from qkd_pl.devices import Backend

FUSED = Backend("qkd.fused", "backprop", "test")
FUSED32 = Backend("qkd.fused32", "backprop", "test")
LIGHTNING = Backend("lightning.qubit", "adjoint", "test")


def outputs_and_gradients(layer: QuantumLayer, x: torch.Tensor, calls: int = 1):
    """The last of ``calls`` forward passes, and the gradients of a weighted sum of it."""
    for _ in range(calls - 1):
        layer(x)
    x = x.clone().requires_grad_(True)
    layer.zero_grad()
    out = layer(x)
    (out * torch.arange(1.0, out.shape[1] + 1)).sum().backward()
    return out.detach(), x.grad, layer.layer.weights.grad.clone()


def cfg_for(encoding, ansatz, readout="z", qubits=3):
    return StudentConfig(qubits=qubits, layers=2, encoding=encoding, ansatz=ansatz, readout=readout, rotation="Y")


DEFAULT_QUBIT = Backend("default.qubit", "backprop", "test")


def reference_backend(readout: str) -> Backend:
    """lightning.qubit (adjoint), or default.qubit (backprop) for a readout of probabilities, which
    lightning's adjoint method cannot differentiate (refused there, README Model)."""
    return DEFAULT_QUBIT if READOUTS[readout].probabilities else LIGHTNING


@functools.lru_cache(maxsize=None)
def reference_for(encoding: str, ansatz: str, readout: str):
    """The independent simulator's outputs and gradients (the same for both precisions' tests)."""
    torch.manual_seed(0)
    x = torch.randn(6, n_features(encoding, 3))
    torch.manual_seed(1)
    return outputs_and_gradients(QuantumLayer.v2(cfg_for(encoding, ansatz, readout), reference_backend(readout)), x)


@pytest.mark.slow
@pytest.mark.parametrize("backend", [FUSED, FUSED32], ids=lambda b: b.device)
@pytest.mark.parametrize("encoding,ansatz,readout", list(itertools.product(ENCODINGS, ANSATZES, READOUTS)))
def test_the_graph_equals_the_qnode_and_lightning(encoding, ansatz, readout, backend):
    cfg = cfg_for(encoding, ansatz, readout)
    torch.manual_seed(0)
    x = torch.randn(6, n_features(encoding, 3))
    torch.manual_seed(1)
    fused = QuantumLayer.v2(cfg, backend)
    qnode = outputs_and_gradients(fused, x)  # first call: through the QNode
    graph = outputs_and_gradients(fused, x, calls=3)
    assert fused.compiled.traces == 1
    assert graph[0].shape == (6, READOUTS[readout].width(3))
    for a, b in zip(qnode, graph):
        assert torch.equal(a, b), (a - b).abs().max()
    for a, b in zip(reference_for(encoding, ansatz, readout), graph):
        assert torch.allclose(a.double(), b.double(), atol=1e-5), (a - b).abs().max()


@pytest.mark.parametrize("readout", list(READOUTS))
def test_every_readout(readout):
    cfg = cfg_for("amplitude", "strong", readout, qubits=4)
    torch.manual_seed(1)
    layer = QuantumLayer.v2(cfg, FUSED)
    x = torch.randn(5, n_features("amplitude", 4))
    qnode, graph = outputs_and_gradients(layer, x), outputs_and_gradients(layer, x, calls=3)
    assert layer.compiled.traces == 1
    for a, b in zip(qnode, graph):
        assert torch.equal(a, b)


def test_new_weights_are_used_and_a_new_shape_is_traced_anew():
    layer = QuantumLayer.v2(cfg_for("angle", "strong"), FUSED)
    x = torch.randn(4, 3)
    for _ in range(3):
        layer(x)
    assert layer.compiled.traces == 1
    with torch.no_grad():
        layer.layer.weights.add_(0.5)
    assert torch.equal(layer(x), layer.layer(x.double()).float())  # the graph reads the weights each call
    wider = torch.randn(7, 3)
    for _ in range(3):
        out = layer(wider)
    assert layer.compiled.traces == 2 and out.shape == (7, 3)
    assert torch.equal(out, layer.layer(wider.double()).float())


def test_layers_sharing_a_device_keep_their_own_graphs():
    """Two circuits that differ only in a template option, one device: each layer's graph is its own."""
    device = qml.device("qkd.fused", wires=2)
    layers = []
    def circuit_for(rotation):
        def circuit(inputs, weights):
            qml.AngleEmbedding(inputs, wires=[0, 1], rotation=rotation)
            qml.StronglyEntanglingLayers(weights, wires=[0, 1])
            return [qml.expval(qml.PauliZ(w)) for w in (0, 1)]
        return circuit

    for rotation in ("X", "Y"):
        qnode = qml.QNode(circuit_for(rotation), device, interface="torch", diff_method="backprop")
        torch.manual_seed(0)
        layers.append(QuantumLayer(qnode, {"weights": (1, 2, 3)}, 2))
    x = torch.randn(3, 2)
    for _ in range(3):
        outs = [layer(x) for layer in layers]
    assert [layer.compiled.traces for layer in layers] == [1, 1]
    assert not torch.allclose(outs[0], outs[1])
    for layer, out in zip(layers, outs):
        assert torch.equal(out, layer.layer(x.double()).float())


@pytest.mark.parametrize("backend", [Backend("default.qubit", "backprop", "test"), LIGHTNING],
                         ids=lambda b: b.device)
def test_other_devices_are_never_traced(backend):
    layer = QuantumLayer.v2(cfg_for("angle", "strong"), backend)
    x = torch.randn(4, 3)
    for _ in range(4):
        layer(x)
    assert layer.compiled.traces == 0


def test_adjoint_on_the_fused_device_is_not_traced():
    layer = QuantumLayer.v2(cfg_for("angle", "strong"), Backend("qkd.fused", "adjoint", "test"))
    for _ in range(4):
        layer(torch.randn(4, 3))
    assert layer.compiled.traces == 0


def test_compile_off(monkeypatch):
    monkeypatch.setenv("QKD_COMPILE", "0")
    layer = QuantumLayer.v2(cfg_for("angle", "strong"), FUSED)
    for _ in range(4):
        layer(torch.randn(4, 3))
    assert layer.compiled.traces == 0 and not compiled.enabled()


def test_a_copy_traces_its_own_graph():
    layer = QuantumLayer.v2(cfg_for("amplitude", "strong"), FUSED)
    x = torch.randn(4, 8)
    for _ in range(3):
        layer(x)
    twin = copy.deepcopy(layer)
    assert twin.compiled.layer is twin.layer and twin.compiled.traces == 0
    with torch.no_grad():
        twin.layer.weights.mul_(-1)
    for _ in range(3):
        out = twin(x)
    assert twin.compiled.traces == 1
    assert torch.equal(out, twin.layer(x.double()).float())
    assert not torch.allclose(out, layer(x))


@pytest.mark.slow
def test_inductor_compiles_a_training_shape_after_its_steps(monkeypatch):
    """QKD_COMPILE=inductor: after COMPILE_AFTER training calls of a shape, its graph in real
    arithmetic compiled by torch.compile; the same outputs and gradients as the eager graph (to
    rounding) and lightning.qubit (1e-5); evaluation (no gradients) and a shape that trained for
    fewer steps stay on the eager graph."""
    monkeypatch.setenv("QKD_COMPILE", "inductor")
    monkeypatch.setattr(compiled, "COMPILE_AFTER", 2)
    cfg = cfg_for("amplitude", "strong", qubits=2)
    torch.manual_seed(0)
    x, short = torch.randn(6, 4), torch.randn(5, 4)
    torch.manual_seed(1)
    layer = QuantumLayer.v2(cfg, FUSED)
    eager = outputs_and_gradients(layer, x, calls=3)  # traced on the third call; one training call so far
    (traced,) = layer.compiled._graphs.values()
    assert traced.real is not None and traced.compiled is None
    fast = outputs_and_gradients(layer, x)  # the second training call: compiled
    assert traced.compiled is not None
    for a, b in zip(eager, fast):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12), (a - b).abs().max()
    torch.manual_seed(1)
    reference = outputs_and_gradients(QuantumLayer.v2(cfg, LIGHTNING), x)
    for a, b in zip(reference, fast):
        assert torch.allclose(a.double(), b.double(), atol=1e-5)

    with torch.no_grad():
        layer.layer.weights.add_(0.25)  # the compiled graph reads the weights each call, too
    trained = outputs_and_gradients(layer, x)
    with torch.no_grad():
        assert torch.equal(layer(x), traced.graph(x.double(), layer.layer.weights).float())  # evaluation: eager
    assert torch.allclose(trained[0], layer.layer(x.double()).float().detach(), atol=1e-6)
    outputs_and_gradients(layer, short, calls=3)
    assert [t.compiled is not None for t in layer.compiled._graphs.values()] == [True, False]


def test_a_mistyped_compile_mode_is_refused(monkeypatch):
    from qkd_pl.errors import QkdError

    monkeypatch.setenv("QKD_COMPILE", "inducter")
    with pytest.raises(QkdError, match="choose one of: off, trace, inductor"):
        compiled.mode()
    monkeypatch.setenv("QKD_COMPILE", "0")
    assert compiled.mode() == "off" and not compiled.enabled()


def test_a_failed_compilation_leaves_the_traced_graph(monkeypatch):
    """A machine where inductor cannot compile (no C++ compiler, say): one warning, and the eager graph."""
    from qkd_pl.errors import QkdWarning

    def broken(*args, **kwargs):
        def call(*a):
            raise RuntimeError("no working C++ compiler found\nmore detail")
        return call

    monkeypatch.setenv("QKD_COMPILE", "inductor")
    monkeypatch.setattr(compiled, "COMPILE_AFTER", 1)
    monkeypatch.setattr(torch, "compile", broken)
    layer = QuantumLayer.v2(cfg_for("angle", "strong"), FUSED)
    x = torch.randn(4, 3)
    eager = outputs_and_gradients(layer, x, calls=2)
    with pytest.warns(QkdWarning, match="torch.compile failed .RuntimeError: no working C.. compiler found."):
        after = outputs_and_gradients(layer, x)
    for a, b in zip(eager, after):
        assert torch.equal(a, b)
    (traced,) = layer.compiled._graphs.values()
    assert traced.real is None and traced.compiled is None


def test_layers_of_one_circuit_share_a_traced_graph_and_other_circuits_do_not():
    from qkd_pl.circuits import compiled
    from qkd_pl.config import StudentConfig
    from qkd_pl.devices import resolve_backend
    from qkd_pl.students.quantum import QuantumStudent

    backend = resolve_backend("auto", 3, None, None, training=True)

    def layer(seed, **cfg):
        torch.manual_seed(seed)
        return QuantumStudent(StudentConfig(qubits=3, **cfg), backend, (1, 8, 8), 4, torch.zeros(1), torch.ones(1))

    compiled.SHARED.clear()  # no graph of an earlier test
    x = torch.rand(7, 1, 8, 8)
    first, same, rotated = (layer(0, encoding="angle", ansatz="basic"), layer(1, encoding="angle", ansatz="basic"),
                            layer(2, encoding="angle", ansatz="basic", rotation="X"))  # rotation: another circuit
    for model in (first, same, rotated):
        for _ in range(3):
            model(x)
    assert [m.quantum.compiled.traces for m in (first, same, rotated)] == [1, 1, 1]
    assert same.quantum.compiled.shared == 1 and rotated.quantum.compiled.shared == 0
    with torch.no_grad():  # the shared graph with the second layer's own weights is its own QNode's call
        layer_of = same.quantum
        inputs = torch.rand(7, 3, dtype=torch.float64)
        for _ in range(3):
            traced = layer_of.compiled(inputs)
        direct = layer_of.compiled._direct(inputs)
    assert layer_of.compiled.shared == 1 and torch.allclose(direct, traced, atol=1e-12)  # the shared graph ran


class ScaledCircuit:
    """A circuit as a callable object (not a plain function): its graphs are its own."""

    def __init__(self, scale):
        self.scale = scale

    def __call__(self, inputs, weights):
        qml.AngleEmbedding(inputs * self.scale, wires=range(2))
        qml.StronglyEntanglingLayers(weights, wires=range(2))
        return [qml.expval(qml.PauliZ(i)) for i in range(2)]


def test_a_shared_graph_is_keyed_on_the_devices_precision_and_odd_circuits_keep_their_own():
    from qkd_pl.circuits import accelerate
    from qkd_pl.devices.fused import FusedQubit

    def circuit(inputs, weights):
        qml.AngleEmbedding(inputs, wires=range(2))
        qml.StronglyEntanglingLayers(weights, wires=range(2))
        return [qml.expval(qml.PauliZ(i)) for i in range(2)]

    compiled.SHARED.clear()
    x = torch.rand(5, 2, dtype=torch.float64)

    def run(func, dtype):
        layer = qml.qnn.TorchLayer(qml.QNode(func, FusedQubit(wires=2, c_dtype=dtype), interface="torch"),
                                   {"weights": (1, 2, 3)})
        accelerate(layer)
        for _ in range(3):
            out = layer(x)
        assert layer.forward.traces == 1
        assert torch.allclose(out, type(layer).forward(layer, x), atol=1e-12 if dtype == torch.complex128 else 1e-6)
        return layer.forward

    assert run(circuit, torch.complex64).shared == 0
    assert run(circuit, torch.complex128).shared == 0  # another precision: its own graph
    assert run(circuit, torch.complex128).shared == 1
    assert [run(ScaledCircuit(s), torch.complex128).shared for s in (2.0, 3.0)] == [0, 0]  # traced, never shared
