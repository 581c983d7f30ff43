"""Trainable circuits. Each takes one weight tensor so TorchLayer sees a single ``weights`` argument.

- ``paper``: the circuit drawn in the paper (figures/ss3.png): per layer, RX RY RZ RX on each
  qubit with its own parameters, then RX RY RZ with parameters shared by all qubits. The
  drawing has no two-qubit gates, so neither does this; with amplitude encoding the input
  state already carries the correlations.
- ``strong``: qml.StronglyEntanglingLayers (a general rotation per qubit, then a CNOT ring).
- ``strong-local``: the same rotations and weights as ``strong`` without the CNOTs, so a
  comparison shows what entanglement adds (each qubit's layers then compose to one rotation).
- ``basic``: qml.BasicEntanglerLayers (one RY per qubit, then a CNOT ring).
- ``ring``: RX RY RZ on each qubit, then a CNOT ring (as BasicEntanglerLayers wires it):
  the layer TorchQuantum's examples use, so ``benchmarks/peers`` times the same circuit on both.
- ``line``: for hardware. RZ RY on each qubit, then CNOTs between neighbours on a line (0-1,
  1-2, ...), never closing the ring: a line of Q qubits is a path of any IBM coupling map
  (heavy-hex included), so the transpiler places it with no SWAP and each layer costs Q - 1
  two-qubit gates (devices/hardware_cost.py, ``qkd draw --device ibm:<backend>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import pennylane as qml

from ..registry import Registry


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


def strong_local(weights, wires: Sequence[int]) -> None:
    # StronglyEntanglingLayers' rotations, Rot(phi, theta, omega) = RZ(omega) RY(theta) RZ(phi) on
    # each wire, without its CNOTs: the no-entanglement ablation of ``strong`` (same weights).
    for w in weights:  # (qubits, 3) per layer
        qml.AngleEmbedding(w[:, 0], wires=wires, rotation="Z")
        qml.AngleEmbedding(w[:, 1], wires=wires, rotation="Y")
        qml.AngleEmbedding(w[:, 2], wires=wires, rotation="Z")


def basic(weights, wires: Sequence[int]) -> None:
    qml.BasicEntanglerLayers(weights, wires=wires, rotation=qml.RY)


def ring(weights, wires: Sequence[int]) -> None:
    # Each rotation layer is one AngleEmbedding (RX(w[i, 0]) on wire i, ...): the same gates as
    # n separate RX, but one operator to build per call instead of n, which is most of a small
    # circuit's cost; qkd.fused reads the template whole.
    n = len(wires)
    for w in weights:  # (qubits, 3) per layer
        for axis in range(3):
            qml.AngleEmbedding(w[:, axis], wires=wires, rotation="XYZ"[axis])
        if n == 2:
            qml.CNOT(wires=[wires[0], wires[1]])
        elif n > 2:
            for i in range(n):
                qml.CNOT(wires=[wires[i], wires[(i + 1) % n]])


def line(weights, wires: Sequence[int]) -> None:
    n = len(wires)
    for w in weights:  # (qubits, 2) per layer
        # RZ before RY: an RZ last would only add phases that the CNOTs permute and a Z readout never sees
        qml.AngleEmbedding(w[:, 0], wires=wires, rotation="Z")
        qml.AngleEmbedding(w[:, 1], wires=wires, rotation="Y")
        for i in range(n - 1):
            qml.CNOT(wires=[wires[i], wires[i + 1]])


@dataclass(frozen=True)
class Ansatz:
    """A trainable circuit: its template (one weight tensor) and that tensor's shape for (layers, qubits)."""

    name: str
    help: str
    template: Callable
    weight_shape: Callable[[int, int], tuple[int, ...]]


ANSATZES: Registry[Ansatz] = Registry("ansatz", "--ansatz")
ANSATZES.add(Ansatz("paper", "the drawn circuit: RX RY RZ RX per qubit, then RX RY RZ shared by all qubits",
                    paper, lambda layers, q: (layers, 4 * q + 3)))
ANSATZES.add(Ansatz("strong", "qml.StronglyEntanglingLayers", strong,
                    lambda layers, q: qml.StronglyEntanglingLayers.shape(n_layers=layers, n_wires=q)))
ANSATZES.add(Ansatz("strong-local", "StronglyEntanglingLayers without its CNOTs (the no-entanglement ablation)",
                    strong_local, lambda layers, q: qml.StronglyEntanglingLayers.shape(n_layers=layers, n_wires=q)))
ANSATZES.add(Ansatz("basic", "qml.BasicEntanglerLayers (RY)", basic,
                    lambda layers, q: qml.BasicEntanglerLayers.shape(n_layers=layers, n_wires=q)))
ANSATZES.add(Ansatz("ring", "RX RY RZ per qubit, then a CNOT ring", ring, lambda layers, q: (layers, q, 3)))
ANSATZES.add(Ansatz("line", "for hardware: RZ RY per qubit, then CNOTs between neighbours on a line (no SWAP on IBM "
                            "devices)", line, lambda layers, q: (layers, q, 2)))


def ansatz_weight_shape(ansatz: str, layers: int, n_qubits: int) -> tuple[int, ...]:
    return ANSATZES[ansatz].weight_shape(layers, n_qubits)
