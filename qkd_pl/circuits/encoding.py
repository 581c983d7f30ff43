"""How classical features enter the circuit, and how many each encoding takes for Q qubits."""

from __future__ import annotations

from typing import Callable, Sequence

import pennylane as qml


def amplitude(features, wires: Sequence[int]) -> None:
    """2^Q features as the amplitudes of the state, normalized (and zero-padded if shorter)."""
    qml.AmplitudeEmbedding(features, wires=wires, normalize=True, pad_with=0.0)


# name -> (number of features for Q qubits, template)
ENCODINGS: dict[str, tuple[Callable[[int], int], Callable]] = {
    "amplitude": (lambda q: 2**q, amplitude),
}


def n_features(encoding: str, n_qubits: int) -> int:
    return ENCODINGS[encoding][0](n_qubits)
