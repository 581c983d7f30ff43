"""Shapes shared by the non-learned reductions: a grid of n cells, and grey-scale input.

Pooling and cropping work on one channel: an RGB image (CIFAR10) is first turned into
luminance (ITU-R BT.601 weights), so 2^Q features describe 2^Q places in the image rather
than spending features on colour. The learned FC layer and PCA see all channels.
"""

from __future__ import annotations

import math

import torch

from ..errors import QkdError

LUMA = (0.299, 0.587, 0.114)


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, cols) with rows * cols = n and rows <= cols as close as possible: 16 -> 4x4, 8 -> 2x4."""
    rows = max(d for d in range(1, math.isqrt(n) + 1) if n % d == 0)
    return rows, n // rows


def to_grey(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 1:
        return x
    if x.shape[1] == 3:
        w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * w).sum(dim=1, keepdim=True)
    return x.mean(dim=1, keepdim=True)


def check_fits(name: str, n: int, image_shape: tuple[int, int, int]) -> tuple[int, int]:
    rows, cols = grid_shape(n)
    _, h, w = image_shape
    if rows > h or cols > w:
        raise QkdError(f"--reducer {name} needs a {rows}x{cols} grid for {n} features, larger than the "
                       f"{h}x{w} images; use fewer --qubits or --reducer fc/pca")
    return rows, cols
