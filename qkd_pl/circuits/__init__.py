"""Encodings, ansatzes and the QNodes that join them, wrapped as torch layers."""

from .ansatz import ANSATZES, ansatz_weight_shape
from .encoding import ENCODINGS, ROTATIONS, n_features
from .readout import READOUTS
from .qlayer import QuantumLayer, qnode_for, v2_circuit

__all__ = ["ANSATZES", "ENCODINGS", "ROTATIONS", "QuantumLayer", "READOUTS", "ansatz_weight_shape", "n_features",
           "qnode_for", "v2_circuit"]
