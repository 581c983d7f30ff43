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
    wires = list(range(cfg.qubits))

    def circuit(inputs, weights):
        encode(inputs, wires, cfg.rotation)
        ansatz(weights, wires)
        return measure(wires)

    return circuit


class QuantumLayer(nn.Module):
    """(batch, n_inputs) -> (batch, n_outputs), differentiable in inputs and weights."""

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
