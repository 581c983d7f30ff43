"""Quantum students: reduction -> quantum layer -> linear head."""

from .quantum import QuantumStudent, count_parameters

__all__ = ["QuantumStudent", "count_parameters"]
