"""Average or max pooling of the (grey-scale) image onto a grid of exactly n regions."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .grid import check_fits, to_grey


class _Pool(nn.Module):
    name = ""

    def __init__(self, image_shape: tuple[int, int, int], n_features: int):
        super().__init__()
        self.grid = check_fits(self.name, n_features, image_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(to_grey(x), self.grid).flatten(1)


class AvgPool(_Pool):
    name = "avgpool"
    pool = staticmethod(F.adaptive_avg_pool2d)


class MaxPool(_Pool):
    name = "maxpool"
    pool = staticmethod(F.adaptive_max_pool2d)
