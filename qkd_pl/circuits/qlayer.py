"""The student's quantum part: a QNode wrapped in ``qml.qnn.TorchLayer``.

The circuit runs in float64 whatever the rest of the model uses. In float32, lightning.qubit's
adjoint gradient through the decomposed amplitude embedding was off by 2e-2 at 4 qubits and
NaN at 8; in float64 it matches default.qubit's backprop to 1e-8.
"""

from __future__ import annotations

from typing import Callable

import pennylane as qml
import torch
from torch import nn

from ..config import StudentConfig
from ..devices import Backend, make_device
from ..errors import QkdError
from .ansatz import ANSATZES, ansatz_weight_shape
from .compiled import CompiledLayer
from .encoding import ENCODINGS, ROTATIONS
from .readout import READOUTS


def qnode_for(circuit: Callable, n_qubits: int, backend: Backend) -> qml.QNode:
    """Bind a circuit function to the backend's device, differentiation method and shots."""
    return qml.QNode(circuit, make_device(backend, n_qubits), interface="torch",
                     diff_method=backend.diff_method, shots=backend.shots)


def v2_circuit(cfg: StudentConfig) -> Callable:
    """encoding -> ansatz -> readout (the paper's v2 student, figures/ss1.png, reads <Z> on each qubit)."""
    if cfg.rotation not in ROTATIONS:
        raise QkdError(f"unknown --rotation {cfg.rotation!r}; choose one of: {', '.join(ROTATIONS)}")
    encode, ansatz = ENCODINGS[cfg.encoding].template, ANSATZES[cfg.ansatz].template
    measure = READOUTS[cfg.readout].measure
    wires = tuple(range(cfg.qubits))  # hashable: layers of one circuit share traced graphs (compiled.py)

    def circuit(inputs, weights):
        encode(inputs, wires, cfg.rotation)
        ansatz(weights, wires)
        return measure(wires)

    return circuit


class QuantumLayer(nn.Module):
    """A QNode as a torch layer, (batch, n_inputs) -> (batch, n_outputs), on the traced fast path.

    What ``qml.qnn.TorchLayer`` is, plus what qkd-pl adds: the circuit runs in float64 whatever
    the rest of the model uses (see the module's docstring), and on qkd.fused its calls go through
    a traced graph (compiled.py) checked against the QNode. A plain TorchLayer in your own module
    gets the same path from ``qkd_pl.accelerate`` (the Distiller applies it), so this class is
    for building a layer directly.

    Args:
        qnode: a QNode with an ``inputs`` argument and trainable weight arguments, torch interface.
        weight_shapes: the shape of each weight argument, as for ``qml.qnn.TorchLayer``.
        n_outputs: the width of the circuit's output.

    Example:
        >>> dev = qml.device("qkd.fused", wires=2)
        >>> @qml.qnode(dev, interface="torch")
        ... def circuit(inputs, weights):
        ...     qml.AngleEmbedding(inputs, wires=range(2))
        ...     qml.StronglyEntanglingLayers(weights, wires=range(2))
        ...     return [qml.expval(qml.PauliZ(i)) for i in range(2)]
        >>> layer = QuantumLayer(circuit, {"weights": (1, 2, 3)}, 2)
        >>> layer(torch.rand(5, 2)).shape
        torch.Size([5, 2])
    """

    def __init__(self, qnode: qml.QNode, weight_shapes: dict[str, tuple[int, ...]], n_outputs: int):
        super().__init__()
        self.qnode = qnode
        self.layer = qml.qnn.TorchLayer(qnode, weight_shapes).double()
        self.compiled = CompiledLayer(self.layer)  # on qkd.fused: the QNode's call as a traced graph
        self.n_outputs = n_outputs

    @classmethod
    def v2(cls, cfg: StudentConfig, backend: Backend) -> "QuantumLayer":
        qnode = qnode_for(v2_circuit(cfg), cfg.qubits, backend)
        return cls(qnode, {"weights": ansatz_weight_shape(cfg.ansatz, cfg.layers, cfg.qubits)},
                   READOUTS[cfg.readout].width(cfg.qubits))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.compiled(x.to(torch.float64))
        return out.to(x.dtype)
