"""A user's data as the tensors the loop indexes: map-style ``Dataset``s, ``TensorDataset``s or
(images, labels) pairs.

Why tensors: the loop draws every epoch's order from a seeded generator over row indices (so a
resumed run sees the batches an uninterrupted one would) and a teacher's logits are computed
once per row and cached by a digest of the images; both need the rows fixed and addressable. The
students qkd-pl is for take small images, so holding a split in memory is the cheap side.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from ..errors import QkdError, first_line

Data = Any  # Dataset | TensorDataset | tuple[Tensor, Tensor] | Tensor (images only: a transfer set)


def as_tensors(data: Data, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, labels) of a labelled split.

    Args:
        data: a map-style ``Dataset`` of (image, label), a ``TensorDataset``, or an (images, labels) pair.
        what: the split's name, for messages ("train_set").

    Returns:
        Float images (N, ...) and int64 labels (N,).
    """
    x, y = _columns(data, what, labelled=True)
    if y is None:
        raise QkdError(f"{what} yields images without labels; give (image, label) pairs")
    if y.dtype.is_floating_point or y.dtype == torch.bool or y.ndim != 1:
        raise QkdError(f"{what}: labels must be integer class indices, one per image (got {y.dtype}, "
                       f"shape {tuple(y.shape)})")
    if len(y) and int(y.min()) < 0:
        raise QkdError(f"{what}: labels must be class indices 0..C-1 (found {int(y.min())})")
    return x, y.long()


def as_images(data: Data, what: str) -> torch.Tensor:
    """The images of a transfer set: labels, if it has any, are dropped unread."""
    return _columns(data, what, labelled=False)[0]


def _columns(data: Data, what: str, labelled: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(data, torch.Tensor):
        return _images(data, what), None
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        x, y = data
        if len(x) != len(y):
            raise QkdError(f"{what}: {len(x)} images but {len(y)} labels")
        return _images(x, what), (y if labelled else None)
    if isinstance(data, TensorDataset):
        tensors = data.tensors
        return _images(tensors[0], what), (tensors[1] if labelled and len(tensors) > 1 else None)
    if not isinstance(data, Dataset) or not hasattr(data, "__len__"):
        raise QkdError(f"{what} is a {type(data).__name__}; give a map-style torch Dataset of (image, label), "
                       f"or an (images, labels) pair of tensors")
    if len(data) == 0:
        raise QkdError(f"{what} is empty")
    xs, ys = [], []
    try:
        for batch in DataLoader(data, batch_size=512, shuffle=False):
            if isinstance(batch, (list, tuple)):
                xs.append(batch[0])
                if labelled and len(batch) > 1:
                    ys.append(torch.as_tensor(batch[1]))
            else:
                xs.append(batch)
    except Exception as exc:  # noqa: BLE001 - a user's __getitem__ may fail in any way
        first = first_line(exc)
        raise QkdError(f"{what}: reading it failed ({type(exc).__name__}: {first}); items must be image tensors, "
                       f"or (image tensor, int label) pairs, of one shape") from None
    if not all(isinstance(t, torch.Tensor) for t in xs):
        raise QkdError(f"{what}: its images are {type(xs[0]).__name__}, not tensors; add a transform such as "
                       f"torchvision.transforms.ToTensor()")
    return _images(torch.cat(xs), what), (torch.cat(ys) if ys else None)


def _images(x: torch.Tensor, what: str) -> torch.Tensor:
    if not x.dtype.is_floating_point:
        raise QkdError(f"{what}: images must be float tensors (got {x.dtype}); scale them to [0, 1], e.g. with "
                       f"torchvision.transforms.ToTensor()")
    if x.ndim < 2:
        raise QkdError(f"{what}: images have shape {tuple(x.shape[1:])}; expected (C, H, W) or features per image")
    return x
