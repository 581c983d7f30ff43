"""How classical features enter the circuit, and how many each encoding takes for Q qubits.

Input scaling, so that any real feature maps to a usable angle without wrapping around:
- ``amplitude``: 2^Q features, divided by their norm (zero-padded when fewer); scale-free.
- ``angle``: Q features, rotation angle pi * tanh(f) in (-pi, pi) about X, Y or Z
  (``--rotation``, default Y), as the paper's v1 notebooks scaled their angles.
- ``qubit``: Q features, each qubit prepared as cos(t)|0> + sin(t)|1> with t = (pi/2) * tanh(f),
  i.e. RY(2t); t in (-pi/2, pi/2) reaches every such state once.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import pennylane as qml


def amplitude(features, wires: Sequence[int], rotation: str = "Y") -> None:
    qml.AmplitudeEmbedding(features, wires=wires, normalize=True, pad_with=0.0)


def angle(features, wires: Sequence[int], rotation: str = "Y") -> None:
    qml.AngleEmbedding(math.pi * qml.math.tanh(features), wires=wires, rotation=rotation)


def qubit(features, wires: Sequence[int], rotation: str = "Y") -> None:
    qml.AngleEmbedding(math.pi * qml.math.tanh(features), wires=wires, rotation="Y")  # RY(2t), t=(pi/2)tanh


# name -> (number of features for Q qubits, template)
ENCODINGS: dict[str, tuple[Callable[[int], int], Callable]] = {
    "amplitude": (lambda q: 2**q, amplitude),
    "angle": (lambda q: q, angle),
    "qubit": (lambda q: q, qubit),
}
ROTATIONS = ("X", "Y", "Z")


def n_features(encoding: str, n_qubits: int) -> int:
    return ENCODINGS[encoding][0](n_qubits)
