"""How classical features enter the circuit, and how many each encoding takes for Q qubits.

Input scaling: the student standardizes angle and qubit features over the batch first
(students/angle_inputs.py), then both encodings take the same bounded value x = pi * tanh(f)
in (-pi, pi), as the paper's v1 notebooks scaled their angles, and apply their definitions:
- ``amplitude``: 2^Q features, divided by their norm (zero-padded when fewer); scale-free.
- ``angle``: Q features, x is the rotation angle about X, Y or Z (``--rotation``, default Y):
  RY(x)|0> = cos(x/2)|0> + sin(x/2)|1>.
- ``qubit``: Q features, each qubit prepared as cos(x)|0> + sin(x)|1>, i.e. RY(2x). With one
  shared x the two encodings differ, as the paper's do; with t = x/2 (an earlier scaling) the
  qubit encoding was RY(pi * tanh(f)), gate for gate the angle encoding's.
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
    qml.AngleEmbedding(2 * math.pi * qml.math.tanh(features), wires=wires, rotation="Y")  # RY(2x), x = pi tanh f


# name -> (number of features for Q qubits, template)
ENCODINGS: dict[str, tuple[Callable[[int], int], Callable]] = {
    "amplitude": (lambda q: 2**q, amplitude),
    "angle": (lambda q: q, angle),
    "qubit": (lambda q: q, qubit),
}
ROTATIONS = ("X", "Y", "Z")


def n_features(encoding: str, n_qubits: int) -> int:
    return ENCODINGS[encoding][0](n_qubits)
