"""Building a student by name: ``--student`` picks a record of ``STUDENTS`` and these check and build it.

Kept apart from ``quantum.py`` so that the registry can name ``QuantumStudent`` without the
student module importing the registry back.
"""

from __future__ import annotations

import torch
from torch import nn

from ..circuits import READOUTS
from ..config import StudentConfig
from ..devices import Backend
from ..errors import QkdError
from .registry import STUDENTS


def check_student(cfg: StudentConfig, backend: Backend) -> None:
    """Refuse a student/device pairing that cannot run, before any data is loaded."""
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
    check_student(cfg, backend)
    return STUDENTS[cfg.arch].build(cfg, backend, image_shape, n_classes, mean, std)
