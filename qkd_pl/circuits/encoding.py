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
from dataclasses import dataclass
from typing import Callable, Sequence

import pennylane as qml
import torch

from ..registry import Registry


def amplitude(features, wires: Sequence[int], rotation: str = "Y") -> None:
    """Pads and normalizes in the array's own arithmetic, always, before PennyLane sees the state.

    Why not ``AmplitudeEmbedding(normalize=True, pad_with=0.0)``: its preprocessing divides by
    the norm only when the norm is not already 1, a Python branch on the input's values. A traced
    graph (circuits/compiled.py) made on a unit-norm batch would keep no division, and return
    wrong numbers for every later batch. Dividing unconditionally costs one division and gives
    the same state (a zero vector still has no state: 0/0, as PennyLane's own division gives).
    """
    dim = 2 ** len(wires)
    shape = qml.math.shape(features)
    if shape[-1] < dim:  # a branch on the shape, which a trace's key holds
        zeros = qml.math.zeros((*shape[:-1], dim - shape[-1]), like=features)
        features = qml.math.concatenate([features, qml.math.cast_like(zeros, features)], axis=-1)
    norm = qml.math.linalg.norm(features, axis=-1)
    features = features / qml.math.reshape(norm, (*shape[:-1], 1))
    qml.AmplitudeEmbedding(features, wires=wires, normalize=False, validate_norm=False)


def angle(features, wires: Sequence[int], rotation: str = "Y") -> None:
    qml.AngleEmbedding(math.pi * qml.math.tanh(features), wires=wires, rotation=rotation)


def qubit(features, wires: Sequence[int], rotation: str = "Y") -> None:
    qml.AngleEmbedding(2 * math.pi * qml.math.tanh(features), wires=wires, rotation="Y")  # RY(2x), x = pi tanh f


@dataclass(frozen=True)
class Encoding:
    """An encoding: its template, how many features it takes for Q qubits, and whether those
    features are rotation angles (which the student standardizes first, students/angle_inputs.py)."""

    name: str
    help: str
    n_features: Callable[[int], int]
    template: Callable
    angles: bool
    classical_view: Callable[[torch.Tensor], torch.Tensor]  # what the classical control sees instead


def unit_norm(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


def bounded_angle(x: torch.Tensor) -> torch.Tensor:
    return math.pi * torch.tanh(x)


ENCODINGS: Registry[Encoding] = Registry("encoding", "--encoding")
ENCODINGS.add(Encoding("amplitude", "2^Q features divided by their norm (zero-padded when fewer)",
                       lambda q: 2**q, amplitude, angles=False, classical_view=unit_norm))
ENCODINGS.add(Encoding("angle", "Q features, x = pi*tanh(f) the angle of a rotation about --rotation",
                       lambda q: q, angle, angles=True, classical_view=bounded_angle))
ENCODINGS.add(Encoding("qubit", "Q features, each qubit cos(x)|0> + sin(x)|1> with x = pi*tanh(f), i.e. RY(2x)",
                       lambda q: q, qubit, angles=True, classical_view=bounded_angle))
ROTATIONS = ("X", "Y", "Z")


def n_features(encoding: str, n_qubits: int) -> int:
    return ENCODINGS[encoding].n_features(n_qubits)
