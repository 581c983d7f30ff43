"""The train / validation / test tensors of one run, with labels remapped to 0..C-1.

Normalization statistics are computed here from the training part only and handed to the
models (which carry them as buffers), so a checkpoint is self-contained and the validation
and test images never influence preprocessing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..config import DataConfig
from .sources import DATASETS, canonical_name, data_root, load_split
from .splits import cap_per_class, select_classes, stratified_split


@dataclass
class DataBundle:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: list[int]  # original label of each output index
    mean: torch.Tensor  # per channel, from the training part
    std: torch.Tensor
    source: dict | None = None  # what the files are, when that is more than the dataset's name (a declared copy)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def to(self, device: torch.device) -> "DataBundle":
        """The same images and labels on ``device`` (the class list stays as it is)."""
        moved = {f: getattr(self, f).to(device) for f in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test",
                                                           "mean", "std")}
        return DataBundle(**moved, classes=self.classes, source=self.source)

    def summary(self) -> str:
        c, h, w = self.image_shape
        return (f"{len(self.y_train)} train / {len(self.y_val)} validation / {len(self.y_test)} test images, "
                f"{c}x{h}x{w}, {self.n_classes} classes {self.classes}")


def load_data(cfg: DataConfig, data_dir: str | None = None) -> DataBundle:
    """The images of a run: its classes, its validation split (carved from the official training
    split), the per-class caps, and normalization statistics from the training part only.

    Args:
        cfg: which dataset, classes, cap and split.
        data_dir: where the files live (default ``$QKD_DATA_DIR``, else the user cache folder).

    Returns:
        Float images in [0, 1] shaped (N, C, H, W) and labels remapped to 0..C-1, for train,
        validation and test.

    Raises:
        QkdError: unknown dataset or classes, or files missing (in one line naming them).

    Example:
        >>> data = load_data(DataConfig("digits", classes=[0, 1]))
        >>> data.image_shape, data.n_classes
        ((1, 8, 8), 2)
    """
    name = canonical_name(cfg.dataset)
    root = data_root(data_dir)
    x_tr, y_tr = load_split(name, root, train=True)
    x_te, y_te = load_split(name, root, train=False)
    n_all = DATASETS[name].n_classes
    yt, ye = y_tr.numpy(), y_te.numpy()

    fit_idx, val_idx, test_idx = split_indices(cfg, yt, ye, n_all)

    classes = list(cfg.classes) if cfg.classes is not None else list(range(n_all))
    remap = torch.full((n_all,), -1, dtype=torch.long)
    remap[torch.tensor(classes)] = torch.arange(len(classes))

    def take(x, y, idx):
        idx = torch.as_tensor(idx)
        return x[idx].contiguous(), remap[y[idx]]

    x_fit, y_fit = take(x_tr, y_tr, fit_idx)
    x_val, y_val = take(x_tr, y_tr, val_idx)
    x_test, y_test = take(x_te, y_te, test_idx)
    mean = x_fit.mean(dim=(0, 2, 3))
    std = x_fit.std(dim=(0, 2, 3)).clamp_min(1e-6)
    describe = DATASETS[name].source
    source = describe(root) if describe else None
    return DataBundle(x_fit, y_fit, x_val, y_val, x_test, y_test, classes, mean, std, source)


def split_indices(cfg: DataConfig, labels_train: np.ndarray, labels_test: np.ndarray, n_classes: int):
    """(train, validation, test) indices into the official train and test splits."""
    train_idx = cap_per_class(labels_train, select_classes(labels_train, cfg.classes, n_classes), cfg.per_class, "train")
    test_idx = cap_per_class(labels_test, select_classes(labels_test, cfg.classes, n_classes), cfg.per_class, "test")
    fit_idx, val_idx = stratified_split(labels_train, train_idx, cfg.val_fraction, cfg.split_seed)
    return fit_idx, val_idx, test_idx
