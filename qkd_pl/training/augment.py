"""Teacher-side data augmentation, on whole batches of tensors (no per-image Python)."""

from __future__ import annotations

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


AUGMENTATIONS = {"none": None, "crop-flip": crop_flip}
