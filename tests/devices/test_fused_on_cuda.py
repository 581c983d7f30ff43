"""qkd.fused on CUDA tensors, checked on a machine without a GPU: torch's fake tensors carry a
device and refuse to mix two, so a plan run on fake CUDA parameters fails wherever one of its own
tables or fixed matrices stayed on the CPU. Forward passes only: the backward pass, the traced
graph and the compiled step need a real GPU, where benchmarks/gpu_students.py checks outputs and
gradients against the CPU."""

import pennylane as qml
import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from qkd_pl.circuits.ansatz import ansatz_weight_shape
from qkd_pl.circuits.qlayer import v2_circuit
from qkd_pl.config import StudentConfig
from qkd_pl.devices import fused_sim, resolve_backend
from qkd_pl.students import build_student


@pytest.fixture(autouse=True)
def _no_fakes_left_behind():
    """The simulator's process-wide caches of constants per device must not keep fake CUDA copies
    (a real GPU run later in the same process would get them)."""
    moved, const = dict(fused_sim._MOVED), dict(fused_sim._CONST)
    yield
    fused_sim._MOVED.clear()
    fused_sim._MOVED.update(moved)
    fused_sim._CONST.clear()
    fused_sim._CONST.update(const)


def _on_fake_cuda(t: torch.Tensor) -> torch.Tensor:
    return torch.empty(t.shape, dtype=t.dtype, device="cuda")


def _generic(inputs, weights):  # a DenseStep read from the tape, a fixed dense gate, permutations, probs
    qml.AngleEmbedding(inputs, wires=range(3))
    qml.CRX(weights[0], wires=[0, 1])
    qml.Hadamard(wires=2)
    qml.IsingXX(weights[1], wires=[1, 2])
    qml.CNOT(wires=[2, 0])
    qml.Toffoli(wires=[0, 1, 2])
    return [qml.expval(qml.PauliZ(0) @ qml.PauliZ(2)), qml.probs(wires=[1, 0])]


def _student_circuit(encoding, ansatz, qubits=5):
    cfg = StudentConfig(qubits=qubits, layers=2, reducer="fc", encoding=encoding, ansatz=ansatz)
    features = 2**qubits if encoding == "amplitude" else qubits
    return v2_circuit(cfg), features, ansatz_weight_shape(ansatz, 2, qubits), qubits


def _cnot_first(inputs, weights):  # a permutation of |0...0>: the zero state is made on the run's device
    qml.CNOT(wires=[0, 1])
    qml.AngleEmbedding(inputs, wires=range(3))
    qml.RX(0.3, wires=2)  # a Python float: its angle is made on the run's device too
    qml.RY(weights[0], wires=1)
    return [qml.expval(qml.PauliZ(w)) for w in range(3)]


def _untouched_chunk(inputs, weights):  # 7 wires in chunks of 4 and 3; the first step leaves the second alone
    qml.RY(weights[0], wires=0)
    qml.CNOT(wires=[0, 5])
    qml.AngleEmbedding(inputs, wires=range(4))
    return [qml.expval(qml.PauliZ(w)) for w in range(7)]


def _strong_cz(inputs, weights):  # a fixed two-qubit gate inside a template: a dense step's own matrix
    qml.AngleEmbedding(inputs, wires=range(3))
    qml.StronglyEntanglingLayers(weights, wires=range(3), imprimitive=qml.CZ)
    return [qml.expval(qml.PauliZ(w)) for w in range(3)]


CIRCUITS = {
    "amplitude-ring": lambda: _student_circuit("amplitude", "ring"),
    "angle-strong": lambda: _student_circuit("angle", "strong"),
    "qubit-basic": lambda: _student_circuit("qubit", "basic"),
    "generic gates": lambda: (_generic, 3, (2,), 3),
    "CNOT first, a float angle": lambda: (_cnot_first, 3, (1,), 3),
    "an untouched chunk": lambda: (_untouched_chunk, 4, (1,), 7),
    "StronglyEntanglingLayers with CZ": lambda: (_strong_cz, 3, (2, 3, 3), 3),
}


@pytest.mark.parametrize("name", CIRCUITS)
@pytest.mark.parametrize("cdtype", [torch.complex128, torch.complex64])
def test_a_plan_runs_where_its_parameters_are(name, cdtype):
    circuit, features, weight_shape, n = CIRCUITS[name]()
    x, w = torch.rand(3, features, dtype=torch.float64), torch.rand(*weight_shape, dtype=torch.float64)
    plan = fused_sim.plan_for(qml.tape.make_qscript(circuit)(x, w), list(range(n)))
    assert plan is not None
    with FakeTensorMode(allow_non_fake_inputs=True):
        tape = qml.tape.make_qscript(circuit)(_on_fake_cuda(x), _on_fake_cuda(w))
        out = fused_sim.run_plan(plan, tape, cdtype)
        outs = out if isinstance(out, tuple) else (out,)
        assert all(o.device.type == "cuda" for o in outs)
    real = fused_sim.run_plan(plan, qml.tape.make_qscript(circuit)(x, w), cdtype)  # and the CPU is unchanged
    assert all(o.device.type == "cpu" for o in (real if isinstance(real, tuple) else (real,)))


@pytest.mark.parametrize("encoding,ansatz", [("amplitude", "ring"), ("angle", "strong")])
def test_a_student_moved_to_cuda_runs_its_forward_there(monkeypatch, encoding, ansatz):
    monkeypatch.setenv("QKD_COMPILE", "off")  # the QNode's own path; a traced graph cannot be probed on fakes
    cfg = StudentConfig(qubits=4, layers=2, reducer="fc", encoding=encoding, ansatz=ansatz)
    model = build_student(cfg, resolve_backend("qkd.fused", 4), (1, 28, 28), 10, torch.zeros(1), torch.ones(1))
    x = torch.rand(5, 1, 28, 28)
    model(x)  # the device plans the tape's structure from real values once
    with FakeTensorMode(allow_non_fake_inputs=True):
        model = model.to("cuda")
        out = model(_on_fake_cuda(x))
        assert out.device.type == "cuda" and out.shape == (5, 10)


def test_a_traced_graph_is_keyed_on_the_torch_device():
    cfg = StudentConfig(qubits=3, layers=1, reducer="fc", encoding="angle", ansatz="ring")
    model = build_student(cfg, resolve_backend("qkd.fused", 3), (1, 8, 8), 2, torch.zeros(1), torch.ones(1))
    layer = model.quantum.compiled
    weights = dict(layer.layer.qnode_weights)
    x = torch.rand(4, 3, dtype=torch.float64)
    with FakeTensorMode(allow_non_fake_inputs=True):
        elsewhere = layer._key(_on_fake_cuda(x), {k: _on_fake_cuda(v) for k, v in weights.items()})
    assert layer._key(x, weights) != elsewhere
