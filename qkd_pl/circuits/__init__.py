"""Encodings, ansatzes and the QNode that joins them, wrapped as a torch layer."""

from .ansatz import ANSATZES, ansatz_weight_shape
from .encoding import ENCODINGS, n_features
from .qlayer import QuantumLayer

__all__ = ["ANSATZES", "ENCODINGS", "QuantumLayer", "ansatz_weight_shape", "n_features"]
