"""Trainable circuits. Each takes one weight tensor so TorchLayer sees a single ``weights`` argument."""

from __future__ import annotations

from typing import Callable, Sequence

import pennylane as qml


def strong(weights, wires: Sequence[int]) -> None:
    """qml.StronglyEntanglingLayers: a general rotation per qubit, then a ring of CNOTs, per layer."""
    qml.StronglyEntanglingLayers(weights, wires=wires)


def strong_shape(layers: int, n_qubits: int) -> tuple[int, ...]:
    return qml.StronglyEntanglingLayers.shape(n_layers=layers, n_wires=n_qubits)


# name -> (template, weight shape for (layers, qubits))
ANSATZES: dict[str, tuple[Callable, Callable[[int, int], tuple[int, ...]]]] = {
    "strong": (strong, strong_shape),
}


def ansatz_weight_shape(ansatz: str, layers: int, n_qubits: int) -> tuple[int, ...]:
    return ANSATZES[ansatz][1](layers, n_qubits)
