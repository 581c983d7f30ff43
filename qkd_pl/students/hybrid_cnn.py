"""The paper's v1 student (the authors' notebooks), kept as a preset so the v1 table can be rerun.

CNN (conv 1->10 k5, pool, conv 10->20 k5, dropout, pool, fc 320->50, fc 50->Q) -> angles
pi * tanh(.) -> H then RY(angle) on each qubit -> the 2^Q basis-state probabilities, the
first C of which score the classes. The circuit has no trainable parameters, exactly as in
the notebooks; the CNN front end is sized for 28x28 images (smaller ones are upsampled).

The logits are log(p + PROB_FLOOR) of those C probabilities, so cross-entropy and the
softened KL are (up to the floor) the true ones over the C classes, and the argmax, hence the
accuracy, is that of p itself. With the raw probabilities used as logits, softmax can never
exceed e / (e + C - 1) (0.35 for C = 6), and training stalled: 49 % validation accuracy on
MNIST 0-5 after 10 epochs (measured). Without the floor (log of p clamped at 1e-12), the
gradient 1/p of a nearly impossible class reached 1e12 and training collapsed, the tanh angles
saturating for good: in a full ``qkd reproduce v1`` all 12 MNIST 0-5 students (3 seeds x
baseline and 3 teachers) ended at or below 20 % validation accuracy. With a floor of 1e-3 the
gradient is at most 1e3 and the same 12 ended between 92 % and 96 % (measured).
"""

from __future__ import annotations

import math

import pennylane as qml
import torch
from torch import nn
from torch.nn import functional as F

from ..circuits import QuantumLayer, qnode_for
from ..config import StudentConfig
from ..data.normalize import Standardize
from ..data.resize import resize_to
from ..devices import Backend
from ..errors import QkdError

SIDE = 28
PROB_FLOOR = 1e-3  # bounds the gradient of log p by 1 / PROB_FLOOR; see the module docstring


def class_log_probs(probs: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Logits of the first ``n_classes`` basis states: a bounded-gradient log-probability."""
    return torch.log(probs[:, :n_classes] + PROB_FLOOR)


def v1_circuit(n_qubits: int):
    wires = list(range(n_qubits))

    def circuit(inputs):
        for w in wires:
            qml.Hadamard(wires=w)
            qml.RY(inputs[..., w], wires=w)
        return qml.probs(wires=wires)

    return circuit


class HybridCNNStudent(nn.Module):
    def __init__(self, cfg: StudentConfig, backend: Backend, image_shape: tuple[int, int, int],
                 n_classes: int, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        if 2**cfg.qubits < n_classes:
            raise QkdError(f"hybrid-cnn scores {n_classes} classes with 2^Q basis states; "
                           f"{cfg.qubits} qubits give only {2**cfg.qubits}: use at least "
                           f"{math.ceil(math.log2(n_classes))} --qubits")
        self.n_classes = n_classes
        self.standardize = Standardize(mean, std)
        self.conv1 = nn.Conv2d(image_shape[0], 10, 5)
        self.conv2 = nn.Conv2d(10, 20, 5)
        self.dropout = nn.Dropout2d()
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, cfg.qubits)
        self.quantum = QuantumLayer(qnode_for(v1_circuit(cfg.qubits), cfg.qubits, backend), {}, 2**cfg.qubits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.standardize(x)
        x = resize_to(x, SIDE, shrink=True)
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.dropout(self.conv2(x)), 2))
        x = F.relu(self.fc1(x.flatten(1)))
        angles = math.pi * torch.tanh(self.fc2(x))
        return class_log_probs(self.quantum(angles), self.n_classes)
