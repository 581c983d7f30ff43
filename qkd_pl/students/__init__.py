"""Quantum students: the v2 reduce -> encode -> circuit -> head model, and the v1 hybrid CNN preset."""

from .build import build_student, check_student
from .parameters import count_parameters
from .quantum import QuantumStudent

__all__ = ["QuantumStudent", "build_student", "check_student", "count_parameters"]
