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
