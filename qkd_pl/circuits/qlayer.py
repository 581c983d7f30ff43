"""The student's quantum part: a QNode (encoding -> ansatz -> <Z> on each qubit) in a TorchLayer.

The circuit runs in float64 whatever the rest of the model uses. In float32, lightning.qubit's
adjoint gradient through the decomposed amplitude embedding was off by 2e-2 at 4 qubits and
NaN at 8; in float64 it matches default.qubit's backprop to 1e-8.
"""

from __future__ import annotations

import pennylane as qml
import torch
from torch import nn

from ..config import StudentConfig
from ..devices import Backend, make_device
from ..errors import QkdError
from .ansatz import ANSATZES, ansatz_weight_shape
from .encoding import ENCODINGS


def build_qnode(cfg: StudentConfig, backend: Backend) -> qml.QNode:
    if cfg.encoding not in ENCODINGS:
        raise QkdError(f"unknown --encoding {cfg.encoding!r}; choose one of: {', '.join(ENCODINGS)}")
    if cfg.ansatz not in ANSATZES:
        raise QkdError(f"unknown --ansatz {cfg.ansatz!r}; choose one of: {', '.join(ANSATZES)}")
    encode = ENCODINGS[cfg.encoding][1]
    ansatz = ANSATZES[cfg.ansatz][0]
    wires = list(range(cfg.qubits))

    @qml.qnode(make_device(backend, cfg.qubits), interface="torch", diff_method=backend.diff_method)
    def circuit(inputs, weights):
        encode(inputs, wires)
        ansatz(weights, wires)
        return [qml.expval(qml.PauliZ(w)) for w in wires]

    return circuit


class QuantumLayer(nn.Module):
    """(batch, n_features) -> (batch, Q) expectation values, differentiable in inputs and weights."""

    def __init__(self, cfg: StudentConfig, backend: Backend):
        super().__init__()
        self.qnode = build_qnode(cfg, backend)
        shape = ansatz_weight_shape(cfg.ansatz, cfg.layers, cfg.qubits)
        self.layer = qml.qnn.TorchLayer(self.qnode, {"weights": shape}).double()
        self.n_outputs = cfg.qubits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layer(x.to(torch.float64))
        return out.to(x.dtype)
