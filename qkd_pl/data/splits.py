"""Index arithmetic on label vectors: class subsets, per-class caps and stratified splits.

Everything returns sorted index arrays into the official split, so that every run with the
same options sees exactly the same images, whatever the order of operations elsewhere.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import QkdError, QkdWarning
from ..parsing import parse_classes

__all__ = ["cap_per_class", "check_classes", "parse_classes", "select_classes", "stratified_split"]


def check_classes(classes: list[int], n_classes: int) -> None:
    bad = [c for c in classes if not 0 <= c < n_classes]
    if bad:
        raise QkdError(f"--classes names {bad}, but this dataset has classes 0-{n_classes - 1}")


def select_classes(labels: np.ndarray, classes: list[int] | None, n_classes: int) -> np.ndarray:
    if classes is None:
        return np.arange(len(labels))
    check_classes(classes, n_classes)
    return np.flatnonzero(np.isin(labels, classes))


def cap_per_class(labels: np.ndarray, idx: np.ndarray, per_class: int | None, split: str = "this split",
                  asked: str | None = None) -> np.ndarray:
    """Keep the first ``per_class`` images of each class, in the split's own order (as the paper did);
    ``asked`` names the option behind the cap in the warning, where it is not ``--per-class per_class``."""
    if per_class is None:
        return idx
    if per_class < 1:
        raise QkdError(f"--per-class must be at least 1, got {per_class}")
    classes, counts = np.unique(labels[idx], return_counts=True)
    short = {int(c): int(n) for c, n in zip(classes, counts) if n < per_class}
    if short:
        warnings.warn(f"{asked or f'--per-class {per_class}'} is more than some classes have ({', '.join(f'class {c}: {n}' for c, n in short.items())}"
                      f" images in the {split}); using all of theirs", QkdWarning, stacklevel=2)
    keep = [idx[labels[idx] == c][:per_class] for c in classes]
    return np.sort(np.concatenate(keep))


def stratified_split(labels: np.ndarray, idx: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``idx`` into (train, validation) with the class proportions of ``idx`` in both."""
    from sklearn.model_selection import train_test_split

    if not 0.0 < fraction < 1.0:
        raise QkdError(f"--val-fraction must lie strictly between 0 and 1, got {fraction}")
    n_classes = len(np.unique(labels[idx]))
    n_val = int(np.ceil(fraction * len(idx)))
    if n_val < n_classes or len(idx) - n_val < n_classes:
        raise QkdError(f"{len(idx)} training images are too few for a stratified validation split of "
                       f"{fraction} over {n_classes} classes; raise --per-class or change --val-fraction")
    train, val = train_test_split(idx, test_size=fraction, stratify=labels[idx], random_state=seed)
    return np.sort(train), np.sort(val)
