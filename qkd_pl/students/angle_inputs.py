"""Batch standardization of the features that angle and qubit encodings turn into rotations.

An angle is pi * tanh(f) of a learned feature f. Nothing bounds f: trained at the v2 preset's
Adam lr 1e-2, the FC reduction's outputs grew to a mean |f| of about 18 within one MNIST epoch,
tanh saturated, every rotation sat at +-pi, and the students stayed at chance (9.9 % validation
accuracy after 5 epochs on 8,000 MNIST images, 4 qubits; measured). Standardizing f over the
batch (no trainable scale or shift, running statistics at evaluation, as BatchNorm does) keeps
the angles spread over their range: 70.2 % on the same run. Amplitude encoding divides by the
norm and needs none of this.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class AngleInputs(nn.BatchNorm1d):
    def __init__(self, n_features: int):
        super().__init__(n_features, affine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] < 2:  # one sample has no batch statistics: use the running ones
            return F.batch_norm(x, self.running_mean, self.running_var, training=False, eps=self.eps)
        return super().forward(x)
