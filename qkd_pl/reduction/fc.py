"""The paper's "original method": a trainable fully connected layer from all pixels to 2^Q."""

from __future__ import annotations

import math

import torch
from torch import nn


class FullyConnected(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], n_features: int):
        super().__init__()
        self.linear = nn.Linear(math.prod(image_shape), n_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))
