"""The train / validation / test tensors of one run, with labels remapped to 0..C-1.

Normalization statistics are computed here from the training part only and handed to the
models (which carry them as buffers), so a checkpoint is self-contained and the validation
and test images never influence preprocessing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig
from ..errors import QkdError, QkdWarning
from .sources import DATASETS, FOLDERS, canonical_name, data_root, files_signature, load_labels, load_split
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

    classes, remap = _remap(cfg, n_all)

    def take(x, y, idx):
        idx = torch.as_tensor(idx)
        return x[idx].contiguous(), remap[y[idx]]

    x_fit, y_fit = take(x_tr, y_tr, fit_idx)  # (without_pool: the pool is out of fit_idx already)
    x_val, y_val = take(x_tr, y_tr, val_idx)
    x_test, y_test = take(x_te, y_te, test_idx)
    mean = x_fit.mean(dim=(0, 2, 3))
    std = x_fit.std(dim=(0, 2, 3)).clamp_min(1e-6)
    source = describe_source(name, root)
    return DataBundle(x_fit, y_fit, x_val, y_val, x_test, y_test, classes, mean, std, source)


_SOURCES: dict[tuple, dict | None] = {}  # this process's descriptions of built-in datasets' files


def describe_source(name: str, root: Path) -> dict | None:
    """What a dataset's files are (a declared copy of CIFAR-10, say; None for the originals), worked
    out once per process for the same files (it reads them whole: CIFAR-10's MD5 sums)."""
    describe = DATASETS[name].source
    if describe is None:
        return None
    files = files_signature(root, name) if name in FOLDERS else None
    if files is None:
        return describe(root)
    key = (name, describe, str(Path(root).resolve()), files)
    if key not in _SOURCES:
        _SOURCES[key] = describe(root)
    return None if _SOURCES[key] is None else dict(_SOURCES[key])


def _remap(cfg: DataConfig, n_all: int) -> tuple[list[int], torch.Tensor]:
    """The run's classes (original labels) and the map from an original label to 0..C-1."""
    classes = list(cfg.classes) if cfg.classes is not None else list(range(n_all))
    remap = torch.full((n_all,), -1, dtype=torch.long)
    remap[torch.tensor(classes)] = torch.arange(len(classes))
    return classes, remap


_SPLIT_INDICES: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # this process's splits, by what makes them
SPLIT_INDICES_KEPT = 32  # an all-data split is about 0.6 MB


def split_indices(cfg: DataConfig, labels_train: np.ndarray, labels_test: np.ndarray, n_classes: int):
    """(train, validation, test) indices into the official train and test splits.

    ``nested`` splits the whole class subset first and caps each part after, so every run of
    one (dataset, classes, split seed, validation fraction) draws its train images from one
    train part and its validation images from one validation part: a teacher trained on all
    of it has seen a capped student's training images and none of its validation images.

    A process keeps the splits it made, keyed on the configuration and the labels' bytes: a grid
    cell asks for its own, its teacher's and its transfer set's several times (about 20 ms each
    on all of MNIST). Callers get their own copies. A split that warns (too few images of a
    class) is not kept, so it warns on every call.
    """
    classes = None if cfg.classes is None else tuple(int(c) for c in cfg.classes)
    key = (repr(dataclasses.replace(cfg, dataset="", classes=None)), classes, n_classes, _digest(labels_train),
           _digest(labels_test))
    if key not in _SPLIT_INDICES:
        said: list[warnings.WarningMessage] = []
        try:
            with warnings.catch_warnings(record=True) as said:
                warnings.simplefilter("always")
                parts = _split_indices(cfg, labels_train, labels_test, n_classes)
        finally:  # the warnings as they were raised, where they were raised (also before an error)
            for w in said:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if any(issubclass(w.category, QkdWarning) for w in said):
            return parts
        if len(_SPLIT_INDICES) >= SPLIT_INDICES_KEPT:
            _SPLIT_INDICES.pop(next(iter(_SPLIT_INDICES)))
        _SPLIT_INDICES[key] = parts
    return tuple(part.copy() for part in _SPLIT_INDICES[key])


def _digest(labels: np.ndarray) -> tuple:
    labels = np.ascontiguousarray(labels)
    return labels.dtype.str, labels.shape, hashlib.blake2b(labels.tobytes(), digest_size=16).hexdigest()


def _split_indices(cfg: DataConfig, labels_train: np.ndarray, labels_test: np.ndarray, n_classes: int):
    if cfg.without_pool is not None:  # a teacher that must never see a student's transfer pool
        fit_idx, val_idx, test = split_indices(dataclasses.replace(cfg, without_pool=None), labels_train,
                                               labels_test, n_classes)
        return np.setdiff1d(fit_idx, pool_of(cfg, labels_train, labels_test, n_classes)), val_idx, test
    pool = select_classes(labels_train, cfg.classes, n_classes)

    def test_idx():
        return cap_per_class(labels_test, select_classes(labels_test, cfg.classes, n_classes),
                             None if cfg.full_test else cfg.per_class, "test split")

    if cfg.split == "capped":
        train_idx = cap_per_class(labels_train, pool, cfg.per_class, "train split")
        return (*stratified_split(labels_train, train_idx, cfg.val_fraction, cfg.split_seed), test_idx())
    fit_idx, val_idx = stratified_split(labels_train, pool, cfg.val_fraction, cfg.split_seed)
    if cfg.per_class is None:
        return fit_idx, val_idx, test_idx()
    n_val = math.ceil(cfg.per_class * cfg.val_fraction)
    if n_val >= cfg.per_class:
        raise QkdError(f"--per-class {cfg.per_class} with --val-fraction {cfg.val_fraction} leaves no training image "
                       f"of a class; raise --per-class or lower --val-fraction")
    with warnings.catch_warnings(record=True) as short:  # one warning for the training split, as for the test split
        warnings.simplefilter("always")
        parts = (cap_per_class(labels_train, fit_idx, cfg.per_class - n_val),
                 cap_per_class(labels_train, val_idx, n_val))
    if short:
        have = np.bincount(labels_train[np.concatenate(parts)], minlength=n_classes)
        few = ", ".join(f"class {c}: {have[c]}" for c in np.unique(labels_train[pool]) if have[c] < cfg.per_class)
        warnings.warn(f"--per-class {cfg.per_class} is more than some classes have ({few} images in the train "
                      f"split); using all of theirs", QkdWarning, stacklevel=2)
    return (*parts, test_idx())


def pool_of(cfg: DataConfig, labels_train: np.ndarray, labels_test: np.ndarray, n_classes: int) -> np.ndarray:
    """The transfer pool ``cfg.without_pool`` (``"P:N"``) names: the transfer set of a student with
    ``--per-class P --transfer N`` on the same dataset, classes and split."""
    if cfg.split != "nested":
        raise QkdError("--without-pool needs --split nested: the pool is the train part's images beyond a "
                       "student's first ones of each class")
    per_class, transfer = cfg.without_pool.split(":")
    student = dataclasses.replace(cfg, per_class=int(per_class), without_pool=None)
    return _transfer(student, transfer, labels_train, labels_test, n_classes)


def _labels(dataset: str, data_dir: str | None) -> tuple[np.ndarray, np.ndarray, int]:
    """The labels of both official splits and the class count: one read of the files (about a
    second for MNIST or CIFAR-10), which callers comparing several splits of one dataset share."""
    name = canonical_name(dataset)
    root = data_root(data_dir)
    return (load_labels(name, root, train=True).numpy(), load_labels(name, root, train=False).numpy(),
            DATASETS[name].n_classes)


def split_of(cfg: DataConfig, data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (train, validation, test) indices a run of ``cfg`` uses, from the labels alone."""
    return split_indices(cfg, *_labels(cfg.dataset, data_dir))


def teacher_data_report(teacher: DataConfig, student: DataConfig, data_dir: str | None = None,
                        transfer: str = "none") -> dict:
    """What a teacher saw of a student's images; refused unless it can teach that student.

    A teacher may have seen more than the student (the paper's notebooks trained teachers on
    the whole class subsets and students on 150 images per class), but it must have been trained
    on every image the student is trained on (its logits there are what it learnt, not guesses)
    and on none the student validates or is tested on (else the student's model selection and
    test would see through the teacher what they must not). Test images are never trained on.

    A transfer pool is allowed either way and counted: ``pool_images_seen`` is how many of the
    student's ``transfer`` images the teacher was trained on (with their labels): all of them when
    it saw the whole train part, none when it was trained ``--without-pool``.

    Returns:
        The teacher's data configuration and image counts, for the student's run folder.

    Raises:
        QkdError: another dataset or class list, or images that break either rule, counted.
    """
    name_t, name_s = canonical_name(teacher.dataset), canonical_name(student.dataset)
    n_all = DATASETS[name_s].n_classes
    classes_t = teacher.classes or list(range(DATASETS[name_t].n_classes))
    classes_s = student.classes or list(range(n_all))
    fix = ("train the teacher on the same --dataset and --classes with the same --split-seed and --val-fraction "
           "(nested splits) and --per-class at least the student's, or none")
    if name_t != name_s or classes_t != classes_s:
        raise QkdError(f"the teacher was trained on {name_t} classes {classes_t}, the student uses {name_s} classes "
                       f"{classes_s}; {fix}")
    labels = _labels(student.dataset, data_dir)
    t_fit, t_val, _ = split_indices(teacher, *labels)
    s_fit, s_val, _ = split_indices(student, *labels)
    unseen = np.setdiff1d(s_fit, t_fit)
    leaked = np.intersect1d(s_val, t_fit)
    if len(unseen) or len(leaked):
        why = [f"{len(unseen)} of the student's {len(s_fit)} training images are not among the teacher's"] \
            if len(unseen) else []
        why += [f"the teacher was trained on {len(leaked)} of the student's {len(s_val)} validation images"] \
            if len(leaked) else []
        raise QkdError(f"the teacher cannot teach this student: {'; '.join(why)}; {fix}")
    report = {"data": dataclasses.asdict(teacher), "train_images": len(t_fit), "validation_images": len(t_val),
              "student_train_images": len(s_fit), "extra_train_images": len(t_fit) - len(s_fit)}
    if transfer != "none":
        pool = _transfer(student, transfer, *labels)
        report.update({"pool_images": len(pool), "pool_images_seen": len(np.intersect1d(pool, t_fit))})
        if teacher.without_pool is not None and report["pool_images_seen"]:  # left out another pool than this one
            warnings.warn(f"the teacher was trained --without-pool {teacher.without_pool}, yet saw "
                          f"{report['pool_images_seen']} of this student's {len(pool)} transfer images (--per-class "
                          f"{student.per_class} --transfer {transfer}): for a pool it never saw, train it "
                          f"--without-pool with this student's --per-class and --transfer", QkdWarning, stacklevel=2)
    return report


def transfer_indices(cfg: DataConfig, transfer: str, data_dir: str | None = None) -> np.ndarray:
    """The transfer set: train-part images of the run's classes that its student has no labels for.

    They come from the train part of the nested split (never the validation part or the test
    split), after the student's own training images; ``transfer`` is ``unlabeled`` (all of
    them) or a number N (the first N of each class).
    """
    return _transfer(cfg, transfer, *_labels(cfg.dataset, data_dir))


def _transfer(cfg: DataConfig, transfer: str, y_tr: np.ndarray, y_te: np.ndarray, n_classes: int) -> np.ndarray:
    fit, _, _ = split_indices(cfg, y_tr, y_te, n_classes)
    whole, _, _ = split_indices(dataclasses.replace(cfg, per_class=None), y_tr, y_te, n_classes)
    rest = np.setdiff1d(whole, fit)
    if not len(rest):
        raise QkdError(f"--per-class {cfg.per_class} takes every image of the train part: none is left for a "
                       f"transfer set (or a pool to hold out); lower --per-class")
    if transfer == "unlabeled":
        return rest
    return cap_per_class(y_tr, rest, int(transfer), "transfer set", f"--transfer {transfer}")


def load_transfer(cfg: DataConfig, transfer: str, data_dir: str | None = None, labels: bool = False):
    """The transfer set's images (float in [0, 1], shaped like the run's); no labels, by design,
    unless ``labels`` (the ceiling control): then ``(images, labels remapped to 0..C-1)``."""
    name, root = canonical_name(cfg.dataset), data_root(data_dir)
    x_tr, y_tr = load_split(name, root, train=True)  # the images and their labels from one read
    y_te = load_labels(name, root, train=False)
    n_all = DATASETS[name].n_classes
    idx = torch.as_tensor(_transfer(cfg, transfer, y_tr.numpy(), y_te.numpy(), n_all))
    if not labels:
        return x_tr[idx].contiguous()
    _, remap = _remap(cfg, n_all)
    return x_tr[idx].contiguous(), remap[y_tr[idx]]
