"""Name -> student architecture, so ``--student`` chooses among them.

A record says what the checks before a run need to know: whether the student reads basis-state
probabilities (which adjoint differentiation cannot differentiate) and whether its circuit has
trainable weights (a classical control of a weightless circuit would have none either).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from ..registry import Registry
from .hybrid_cnn import HybridCNNStudent
from .quantum import QuantumStudent


@dataclass(frozen=True)
class Student:
    name: str
    help: str
    build: Callable[..., nn.Module]  # (StudentConfig, Backend, image_shape, n_classes, mean, std)
    measures_probabilities: bool
    circuit_weights: bool


STUDENTS: Registry[Student] = Registry("student", "--student")
STUDENTS.add(Student("v2", "reduce -> encode -> circuit -> <Z> -> linear head (the paper's v2)", QuantumStudent,
                     measures_probabilities=False, circuit_weights=True))
STUDENTS.add(Student("hybrid-cnn", "the notebooks' v1 preset: CNN -> pi*tanh angles -> H, RY -> 2^Q probabilities "
                                   "as class scores (ignores --reducer/--encoding/--ansatz/--layers)",
                     HybridCNNStudent, measures_probabilities=True, circuit_weights=False))
