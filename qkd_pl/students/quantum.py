"""The v2 student of the paper (figures/ss1.png): image -> reduce -> encode -> circuit -> readout -> linear.

Parameters are reported split into classical and quantum, because with the FC reduction
most of them are classical (784 -> 16 alone is 12,560) and a reader comparing students
should see how much of the model the circuit actually is.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..circuits import ENCODINGS, READOUTS, QuantumLayer, ansatz_weight_shape, n_features
from ..config import StudentConfig
from ..data.normalize import Standardize
from ..devices import Backend
from ..errors import QkdError
from ..reduction import build_reducer
from .angle_inputs import AngleInputs
from .control import ClassicalControl, WidthControl


class QuantumStudent(nn.Module):
    def __init__(self, cfg: StudentConfig, backend: Backend, image_shape: tuple[int, int, int],
                 n_classes: int, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        if cfg.qubits < 1:
            raise QkdError(f"--qubits must be at least 1, got {cfg.qubits}")
        if cfg.layers < 1:
            raise QkdError(f"--layers must be at least 1, got {cfg.layers}")
        self.standardize = Standardize(mean, std)
        features = n_features(cfg.encoding, cfg.qubits)
        self.reduce = build_reducer(cfg.reducer, image_shape, features)
        # Rotation encodings need features of a known scale (see angle_inputs.py); amplitude normalizes.
        self.prepare = AngleInputs(features) if ENCODINGS[cfg.encoding].angles else nn.Identity()
        width = READOUTS[cfg.readout].width(cfg.qubits)
        if cfg.control and cfg.control_match == "width":
            self.quantum = WidthControl(features, width, cfg.encoding, cfg.readout)
        elif cfg.control:
            n_params = math.prod(ansatz_weight_shape(cfg.ansatz, cfg.layers, cfg.qubits))
            self.quantum = ClassicalControl(features, width, n_params, cfg.encoding, cfg.readout)
        else:
            self.quantum = QuantumLayer.v2(cfg, backend)
        self.head = nn.Linear(width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.quantum(self.prepare(self.reduce(self.standardize(x)))))

    def fit_reduction(self, x_train: torch.Tensor) -> None:
        """Fit a data-dependent reduction (PCA) on standardized training images only."""
        if getattr(self.reduce, "needs_fit", False):
            with torch.no_grad():
                self.reduce.fit(self.standardize(x_train))


def check_student(cfg: StudentConfig, backend: Backend) -> None:
    """Refuse a student/device pairing that cannot run, before any data is loaded."""
    from .registry import STUDENTS

    student = STUDENTS[cfg.arch]
    if cfg.control and not student.circuit_weights:
        raise QkdError(f"{cfg.arch}'s circuit has no trainable parameters, so a classical control of the same "
                       f"size would have none either; use --classical-control with the v2 student")
    probabilities = student.measures_probabilities or (cfg.arch == "v2" and READOUTS[cfg.readout].probabilities)
    if probabilities and backend.diff_method == "adjoint":
        what = cfg.arch if student.measures_probabilities else f"--readout {cfg.readout}"
        raise QkdError(f"{what} measures basis-state probabilities, which {backend.device}'s adjoint "
                       f"differentiation does not support; use --device default.qubit (or auto)")


def build_student(cfg: StudentConfig, backend: Backend, image_shape: tuple[int, int, int], n_classes: int,
                  mean: torch.Tensor, std: torch.Tensor) -> nn.Module:
    """A student network, its circuit a TorchLayer on the backend's device.

    Args:
        cfg: the student's configuration (``cfg.arch`` picks it from ``STUDENTS``).
        backend: where its circuit runs (``resolve_backend``).
        image_shape: (channels, height, width) of its inputs.
        n_classes: its outputs.
        mean, std: per-channel statistics of the training images; the student standardizes
            raw [0, 1] images itself, so a checkpoint is self-contained.

    Returns:
        A ``torch.nn.Module`` mapping (batch, C, H, W) images to (batch, n_classes) logits.

    Example:
        >>> model = build_student(StudentConfig(qubits=2), resolve_backend("auto", 2), (1, 8, 8), 10,
        ...                       torch.zeros(1), torch.ones(1))
        >>> model(torch.rand(5, 1, 8, 8)).shape
        torch.Size([5, 10])
    """
    from .registry import STUDENTS

    check_student(cfg, backend)
    return STUDENTS[cfg.arch].build(cfg, backend, image_shape, n_classes, mean, std)
