"""Trainable circuits. Each takes one weight tensor so TorchLayer sees a single ``weights`` argument.

- ``paper``: the circuit drawn in the paper (figures/ss3.png): per layer, RX RY RZ RX on each
  qubit with its own parameters, then RX RY RZ with parameters shared by all qubits. The
  drawing has no two-qubit gates, so neither does this; with amplitude encoding the input
  state already carries the correlations.
- ``strong``: qml.StronglyEntanglingLayers (a general rotation per qubit, then a CNOT ring).
- ``basic``: qml.BasicEntanglerLayers (one RY per qubit, then a CNOT ring).
"""

from __future__ import annotations

from typing import Callable, Sequence

import pennylane as qml


def paper(weights, wires: Sequence[int]) -> None:
    n = len(wires)
    for w in weights:  # one row per layer
        for i, wire in enumerate(wires):
            qml.RX(w[4 * i], wires=wire)
            qml.RY(w[4 * i + 1], wires=wire)
            qml.RZ(w[4 * i + 2], wires=wire)
            qml.RX(w[4 * i + 3], wires=wire)
        for wire in wires:
            qml.RX(w[4 * n], wires=wire)
            qml.RY(w[4 * n + 1], wires=wire)
            qml.RZ(w[4 * n + 2], wires=wire)


def strong(weights, wires: Sequence[int]) -> None:
    qml.StronglyEntanglingLayers(weights, wires=wires)


def basic(weights, wires: Sequence[int]) -> None:
    qml.BasicEntanglerLayers(weights, wires=wires, rotation=qml.RY)


# name -> (template, weight shape for (layers, qubits))
ANSATZES: dict[str, tuple[Callable, Callable[[int, int], tuple[int, ...]]]] = {
    "paper": (paper, lambda layers, q: (layers, 4 * q + 3)),
    "strong": (strong, lambda layers, q: qml.StronglyEntanglingLayers.shape(n_layers=layers, n_wires=q)),
    "basic": (basic, lambda layers, q: qml.BasicEntanglerLayers.shape(n_layers=layers, n_wires=q)),
}


def ansatz_weight_shape(ansatz: str, layers: int, n_qubits: int) -> tuple[int, ...]:
    return ANSATZES[ansatz][1](layers, n_qubits)
