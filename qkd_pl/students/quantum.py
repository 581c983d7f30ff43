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

