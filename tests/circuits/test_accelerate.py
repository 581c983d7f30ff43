"""A user's plain TorchLayer gets the traced fast path in place, equal to its QNode, and keeps
its parameters and checkpoints as they were."""

import copy
import pickle
import warnings

import pennylane as qml
import pytest
import torch
from torch import nn

from qkd_pl.circuits import QuantumLayer, accelerate
from qkd_pl.errors import QkdWarning


def angle_circuit(inputs, weights):  # at module level, so a model holding it can be pickled
    qml.AngleEmbedding(inputs, wires=range(3))
    qml.StronglyEntanglingLayers(weights, wires=range(3))
    return [qml.expval(qml.PauliZ(i)) for i in range(3)]


def amplitude_circuit(inputs, weights):  # PennyLane's own normalization divides only when the norm is not 1
    qml.AmplitudeEmbedding(inputs, wires=range(3), normalize=True)
    qml.StronglyEntanglingLayers(weights, wires=range(3))
    return [qml.expval(qml.PauliZ(i)) for i in range(3)]


def torch_layer(device="qkd.fused", normalize_inside=False):
    qnode = qml.QNode(amplitude_circuit if normalize_inside else angle_circuit, qml.device(device, wires=3),
                      interface="torch")
    torch.manual_seed(0)
    return qml.qnn.TorchLayer(qnode, {"weights": (2, 3, 3)})


def run(layer, x, calls=4):
    for _ in range(calls):
        layer.zero_grad()
        out = layer(x)
        (out ** 2).sum().backward()
    return out.detach(), layer.weights.grad.clone()


def test_an_accelerated_layer_equals_its_qnode_in_outputs_and_gradients_and_is_traced():
    layer = torch_layer()
    reference = copy.deepcopy(layer)
    model = nn.Sequential(nn.Linear(5, 3), layer)
    keys = list(model.state_dict())
    assert accelerate(model) == 1 and accelerate(model) == 0  # once
    x = torch.randn(16, 3, dtype=torch.float64)
    out, grad = run(layer, x)
    ref_out, ref_grad = run(reference, x)
    assert torch.allclose(out, ref_out, atol=1e-12) and torch.allclose(grad, ref_grad, atol=1e-12)
    assert layer.forward.traces == 1  # the third call of the shape traced it
    assert list(model.state_dict()) == keys  # checkpoints are unchanged
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert clone[1].forward.layer is clone[1]  # the copy calls its own circuit and weights, not the original's
        assert torch.allclose(clone(torch.ones(2, 5)), model(torch.ones(2, 5)), atol=1e-12)
        with torch.no_grad():
            clone[1].weights.add_(0.5)
        assert not torch.allclose(clone(torch.ones(2, 5)), model(torch.ones(2, 5)))


def test_a_layer_on_another_device_keeps_calling_its_qnode():
    layer = torch_layer("default.qubit")
    reference = copy.deepcopy(layer)
    accelerate(layer)
    x = torch.randn(8, 3, dtype=torch.float64)
    out, grad = run(layer, x)
    ref_out, ref_grad = run(reference, x)
    assert layer.forward.traces == 0
    assert torch.allclose(out, ref_out, atol=1e-12) and torch.allclose(grad, ref_grad, atol=1e-12)


def test_a_circuit_that_branches_on_values_stays_on_its_qnode_with_one_warning():
    layer = torch_layer(normalize_inside=True)
    reference = copy.deepcopy(layer)
    accelerate(layer)
    x = torch.randn(8, 8, dtype=torch.float64)
    x = x / x.norm(dim=1, keepdim=True)  # unit rows: PennyLane skips its division, and a trace would bake that in
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out, _ = run(layer, x, calls=6)
    assert sum(issubclass(w.category, QkdWarning) for w in caught) == 1
    assert layer.forward.untraceable and torch.allclose(out, reference(x), atol=1e-12)
    other = torch.randn(8, 8, dtype=torch.float64) * 5  # the norms a baked-in graph would get wrong
    assert torch.allclose(layer(other), reference(other), atol=1e-12)


def test_qkd_pl_layers_and_compile_off_are_left_alone(monkeypatch):
    dev = qml.device("qkd.fused", wires=2)
    qnode = qml.QNode(lambda inputs, weights: [qml.expval(qml.PauliZ(0))], dev, interface="torch")
    ours = QuantumLayer(qnode, {"weights": (1,)}, 1)
    assert accelerate(nn.Sequential(ours)) == 0
    monkeypatch.setenv("QKD_COMPILE", "off")
    assert accelerate(torch_layer()) == 0


@pytest.mark.parametrize("wrap", [False, True])
def test_the_distiller_accelerates_the_torch_layers_of_a_student(tmp_path, wrap):
    from qkd_pl import Distiller, TrainConfig
    from qkd_pl.circuits.accelerate import is_accelerated

    layer = torch_layer()
    student = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), layer, nn.Linear(3, 2))
    x, y = torch.rand(24, 1, 2, 2), torch.arange(24) % 2
    Distiller(train=TrainConfig(epochs=1), progress=False, fast=wrap).fit(student, (x, y), (x, y), tmp_path)
    assert is_accelerated(layer) == wrap
