"""Data augmentation and mixup, on whole batches of tensors (no per-image Python).

Every draw comes from the loop's generator, seeded by (seed, epoch), so a resumed run draws what
an uninterrupted one would have, and a teacher called on the fly sees exactly the student's view.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """A random ``H x W`` crop of each image padded by ``pad`` reflected pixels, flipped left-right
    with probability 1/2: the standard CIFAR augmentation, drawn from ``generator`` so that a
    resumed run draws what an uninterrupted one would have.

    Reflection rather than zeros: the images are in [0, 1] before the teacher standardizes them,
    so a zero border would be a black frame the test images never have.

    Args:
        x: images shaped (B, C, H, W), with H and W larger than ``pad``.
        generator: the source of the crop offsets and flips (on the CPU).
        pad: the largest shift, in pixels.

    Returns:
        The augmented images, same shape, dtype and device as ``x``.
    """
    b, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
    flip = (torch.rand(b, generator=generator) < 0.5).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))
    cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, None, :]
    return padded[torch.arange(b, device=x.device)[:, None, None, None],
                  torch.arange(c, device=x.device)[None, :, None, None], rows, cols]


def shift_rotate(x: torch.Tensor, generator: torch.Generator, shift: float = 1 / 14, degrees: float = 10.0
                 ) -> torch.Tensor:
    """Each image shifted by up to ``shift`` of its side (2 pixels of MNIST's 28) and rotated by up
    to ``degrees``, bilinear, the border filled with the image's own edge: the small geometric
    changes a handwritten digit or a centred garment survives (flips would not: a mirrored 2 or
    shoe is another image).

    Args:
        x: images shaped (B, C, H, W).
        generator: the source of the shifts and angles (on the CPU).
        shift: the largest shift, as a fraction of the side.
        degrees: the largest rotation.

    Returns:
        The augmented images, same shape, dtype and device as ``x``.
    """
    b = x.shape[0]
    angle = (torch.rand(b, generator=generator) * 2 - 1) * math.radians(degrees)
    move = (torch.rand(b, 2, generator=generator) * 2 - 1) * (2 * shift)  # affine_grid's [-1, 1] spans the side
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([cos, -sin, move[:, 0]], 1), torch.stack([sin, cos, move[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def mixup(x: torch.Tensor, alpha: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, float]:
    """The batch blended with a shuffled copy of itself: (mixed images, each row's partner, weight).

    One weight per batch, drawn from Beta(alpha, alpha) (Zhang et al. 2018); the loss is that
    weight times the loss with each row's own label plus the rest times the loss with its
    partner's. torch's Beta sampler takes no generator, so the draw seeds numpy's from the loop's.
    """
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    partner = torch.randperm(len(x), generator=generator).to(x.device)
    return lam * x + (1 - lam) * x[partner], partner, lam


AUGMENTATIONS = {"none": None, "crop-flip": crop_flip, "shift-rotate": shift_rotate}
