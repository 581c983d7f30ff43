"""Bilinear resizing of image batches to the side a network was built for.

LeNet5 needs at least 16 px for its two unpadded convolutions, and every network here keeps one
architecture (and parameter count) across datasets by growing small images (digits' 8 px) to
28 px; the hybrid-cnn student, whose fully connected layer is sized for 28 px, also shrinks
larger ones (CIFAR10's 32 px).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def resize_to(x: torch.Tensor, side: int, shrink: bool = False) -> torch.Tensor:
    """``x`` (N, C, H, W) at ``side`` x ``side`` when smaller (or, with ``shrink``, larger); else as is."""
    if x.shape[-1] < side or (shrink and x.shape[-1] > side):
        return F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)
    return x
