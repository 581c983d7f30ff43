"""Name -> student architecture, so ``--student`` chooses among them.

A record says what the checks before a run need to know: whether the student reads basis-state
probabilities (which adjoint differentiation cannot differentiate) and whether its circuit has
trainable weights (a classical control of a weightless circuit would have none either).

``--student module.path:name`` names a user's own student: a factory ``name(image_shape,
n_classes) -> nn.Module`` (a function, or an ``nn.Module`` class whose constructor takes those
two) whose module maps raw [0, 1] images (batch, C, H, W) to (batch, n_classes) logits. Its
circuit, if it has one, is its own: qkd-pl's student options (--qubits, --layers, --reducer,
--encoding, --rotation, --ansatz, --readout, --device) do not apply to it and are ignored, its
record says so (``user``), and the device pairing and memory checks leave it alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

from ..registry import Registry
from ..user_code import module_factory
from .hybrid_cnn import HybridCNNStudent
from .quantum import QuantumStudent


@dataclass(frozen=True)
class Student:
    name: str
    help: str
    build: Callable[..., nn.Module]  # (StudentConfig, Backend, image_shape, n_classes, mean, std)
    measures_probabilities: bool
    circuit_weights: bool
    user: bool = False  # a user's own module: qkd-pl's circuit options do not apply


USER_IGNORES = "--qubits, --layers, --reducer, --encoding, --rotation, --ansatz, --readout, --device"


STUDENTS: Registry[Student] = Registry("student", "--student")
STUDENTS.add(Student("v2", "reduce -> encode -> circuit -> <Z> -> linear head (the paper's v2)", QuantumStudent,
                     measures_probabilities=False, circuit_weights=True))
STUDENTS.add(Student("hybrid-cnn", "the notebooks' v1 preset: CNN -> pi*tanh angles -> H, RY -> 2^Q probabilities "
                                   "as class scores (ignores --reducer/--encoding/--ansatz/--layers)",
                     HybridCNNStudent, measures_probabilities=True, circuit_weights=False))


def _user_student(path: str, obj: Any) -> Student:
    make = module_factory(path, obj, "--student")
    return Student(path, f"your own student {path} ({USER_IGNORES} do not apply to it)",
                   lambda cfg, backend, image_shape, n_classes, mean, std: make(image_shape, n_classes),
                   measures_probabilities=False, circuit_weights=False, user=True)


STUDENTS.accept_imports(_user_student)
