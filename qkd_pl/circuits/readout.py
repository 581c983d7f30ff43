"""Readouts (``--readout``): what is measured at the end of the circuit, and so how many numbers
the linear head maps to class logits.

The paper measures <Z> on each qubit: Q numbers, so a student's logits lie in a Q-dimensional
affine subspace whatever the circuit does. ``zz`` adds the Q(Q-1)/2 two-qubit correlations
<Z_i Z_j>; ``probs`` reads all 2^Q basis-state probabilities (the most a circuit can give,
and what a 10-class head can use at 4 qubits). Each record also says how the classical control
maps its output into the readout's range (tanh for expectation values in [-1, 1], softmax for
probabilities), so the control differs from the circuit in what it computes, not in its range.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable, Sequence

import pennylane as qml
import torch

from ..registry import Registry


def _z(wires: Sequence[int]) -> list:
    return [qml.expval(qml.PauliZ(w)) for w in wires]


def _zz(wires: Sequence[int]) -> list:
    singles = _z(wires)  # first: a QNode returns its measurements in the order they were made
    return singles + [qml.expval(qml.PauliZ(a) @ qml.PauliZ(b)) for a, b in itertools.combinations(wires, 2)]


def _probs(wires: Sequence[int]):
    return qml.probs(wires=list(wires))


@dataclass(frozen=True)
class Readout:
    """The measurements of a Q-qubit circuit, their number, and the control's matching output map."""

    name: str
    help: str
    measure: Callable[[Sequence[int]], object]
    width: Callable[[int], int]
    probabilities: bool  # basis-state probabilities: adjoint differentiation cannot differentiate them
    classical: Callable[[torch.Tensor], torch.Tensor]


READOUTS: Registry[Readout] = Registry("readout", "--readout")
READOUTS.add(Readout("z", "<Z> on each qubit: Q numbers (the paper's)", _z, lambda q: q, False, torch.tanh))
READOUTS.add(Readout("zz", "<Z_i> and every <Z_i Z_j>: Q + Q(Q-1)/2 numbers", _zz, lambda q: q + q * (q - 1) // 2,
                     False, torch.tanh))
READOUTS.add(Readout("probs", "the 2^Q basis-state probabilities", _probs, lambda q: 2**q, True,
                     lambda x: torch.softmax(x, dim=-1)))
