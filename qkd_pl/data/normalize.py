"""Per-channel standardization as the first layer of every model.

Keeping the training split's mean and std as buffers inside the model (rather than in the
data pipeline) makes each checkpoint self-contained: it takes raw [0, 1] images, whatever
run or tool feeds it.
"""

from __future__ import annotations

import torch
from torch import nn


class Standardize(nn.Module):
    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1).clone())
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std
