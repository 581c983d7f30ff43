"""Encodings, ansatzes and the QNodes that join them, wrapped as torch layers."""

from .ansatz import ANSATZES, ansatz_weight_shape
from .encoding import ENCODINGS, ROTATIONS, n_features
from .readout import READOUTS
from .qlayer import QuantumLayer, qnode_for, v2_circuit
from .accelerate import accelerate

__all__ = ["ANSATZES", "accelerate", "ENCODINGS", "ROTATIONS", "QuantumLayer", "READOUTS", "ansatz_weight_shape", "n_features",
           "qnode_for", "v2_circuit"]
