"""Every weight a circuit receives counts as quantum, wherever the circuit sits."""

import pennylane as qml
import torch
from torch import nn

from qkd_pl.students import count_parameters


def layer():
    dev = qml.device("default.qubit", wires=2)

    @qml.qnode(dev, interface="torch")
    def circuit(inputs, weights):
        qml.AngleEmbedding(inputs, wires=range(2))
        qml.StronglyEntanglingLayers(weights, wires=range(2))
        return [qml.expval(qml.PauliZ(i)) for i in range(2)]

    return qml.qnn.TorchLayer(circuit, {"weights": (3, 2, 3)})


def test_a_plain_torch_layer_is_quantum_and_frozen_weights_are_left_out():
    model = nn.Sequential(nn.Linear(8, 2), layer(), nn.Linear(2, 3))
    assert count_parameters(model) == {"classical": 18 + 9, "quantum": 18, "total": 45}
    model[0].weight.requires_grad_(False)
    assert count_parameters(model)["classical"] == 2 + 9


class HoldsAQNode(nn.Module):
    """A module calling its QNode directly, with the tensors it declares as circuit parameters."""

    qkd_circuit_parameters = ("angles",)

    def __init__(self):
        super().__init__()
        self.angles = nn.Parameter(torch.zeros(4))
        self.scale = nn.Parameter(torch.ones(1))


def test_a_module_declares_the_parameters_its_qnode_receives():
    assert count_parameters(HoldsAQNode()) == {"classical": 1, "quantum": 4, "total": 5}


class CallsItsQNode(nn.Module):
    """A user's module that calls a QNode itself with its own weights, no TorchLayer."""

    def __init__(self):
        super().__init__()
        self.reduce = nn.Linear(4, 2)
        self.weights = nn.Parameter(torch.zeros(3, 2, 3))
        self.qnode = layer().qnode

    def forward(self, x):
        return torch.stack(self.qnode(self.reduce(x), self.weights), dim=-1).float()


def test_parameters_a_module_hands_to_its_qnode_are_found_by_running_it():
    from qkd_pl.students.parameters import detect_circuit_parameters

    model = CallsItsQNode()
    assert count_parameters(model)["quantum"] == 0  # nothing says so before it runs
    assert detect_circuit_parameters(model, lambda: model(torch.rand(2, 4))) == 1
    assert count_parameters(model) == {"classical": 10, "quantum": 18, "total": 28}
    assert model.qkd_circuit_parameters == ("weights",)
    assert detect_circuit_parameters(model, lambda: model(torch.rand(2, 4))) == 1  # declared once, not twice
    assert model.qkd_circuit_parameters == ("weights",)
    assert not hasattr(CallsItsQNode(), "qkd_circuit_parameters")  # the instance was declared, not the class
