"""The centre N x N pixels with N^2 = n features (grey-scale).

When n is not a square (2^Q for odd Q, or Q features for angle encodings) the crop is the
centre rows x cols rectangle with rows * cols = n, as square as possible: 8 -> 2x4, 32 -> 4x8.
"""

from __future__ import annotations

import torch
from torch import nn

from .grid import check_fits, to_grey


class CentreCrop(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], n_features: int):
        super().__init__()
        rows, cols = check_fits("crop", n_features, image_shape)
        _, h, w = image_shape
        self.top, self.left, self.rows, self.cols = (h - rows) // 2, (w - cols) // 2, rows, cols

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = to_grey(x)
        return x[:, :, self.top:self.top + self.rows, self.left:self.left + self.cols].flatten(1)
