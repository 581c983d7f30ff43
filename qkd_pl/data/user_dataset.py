"""``--dataset py:module.path:function``: a user's own dataset, from a Python function.

What the user writes::

    def load():                       # called with no arguments
        return train, test

``train`` and ``test`` are each a map-style ``torch.utils.data.Dataset`` (anything with
``len`` and ``[i]``) whose items are ``(image, label)`` pairs (an image tensor shaped (C, H, W)
or (H, W), an int label), or a pair of tensors ``(images, labels)`` shaped (N, C, H, W) or
(N, H, W) and (N,). Images are float values in [0, 1] (divide bytes by 255 first), all of one
shape; labels are integers 0..K-1 and K, the number of classes, is the largest label plus one.

The function takes no arguments: its module decides where its files are (reading
``$QKD_DATA_DIR`` itself, say), so ``--data-dir`` does not reach it, and the data a run uses is
named by the import path alone, the same whichever command or folder the run starts from. What
the data is, is recorded too: the run's ``data_source`` holds a SHA-256 of the images and labels,
which also keys the teacher-logit cache, so a loader whose data changed is not served the old
data's logits.

Once loaded the images are the tensors the built-in datasets give (float32 (N, C, H, W) in
[0, 1], int64 labels), so ``--classes``, ``--per-class``, the validation split, nested splits and
caches apply unchanged. The function is called once per process: checking a configuration loads
the data (its class count and image shape are needed then), and training reuses that load.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import QkdError, first_line
from ..registry import import_object, is_import_path
from .digest import tensor_digest

PREFIX = "py"
USAGE = f"{PREFIX}:module.path:function"


@dataclass(frozen=True)
class Loaded:
    """Both splits of a user's dataset, checked, as float32 (N, C, H, W) images and int64 labels."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    sha256: str  # of the images and labels of both splits

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])


_LOADED: dict[str, Loaded] = {}  # name -> its data, loaded once per process


def loader_of(name: str) -> str:
    """``module.path:function`` of ``py:module.path:function``."""
    return name.split(":", 1)[1].strip()


def load(name: str) -> Loaded:
    """The data of ``py:module.path:function``: imported, called and checked once per process.

    Raises:
        QkdError: in one line naming the loader: it does not import, is not a function, raises,
            or returns something other than (train, test) of images in [0, 1] and integer labels.
    """
    if name not in _LOADED:
        _LOADED[name] = _load(name)
    return _LOADED[name]


def _load(name: str) -> Loaded:
    path = loader_of(name)
    if not is_import_path(path):
        raise QkdError(f"--dataset {name}: name your loader as {USAGE} (a function of an importable module)")
    try:
        fn = import_object(path, "--dataset")
    except QkdError as exc:  # its message names the path without the py: prefix
        raise QkdError(f"--dataset {PREFIX}:{str(exc).removeprefix('--dataset ')}") from None
    if not callable(fn) or isinstance(fn, type):
        raise QkdError(f"--dataset {name}: {path} is a {type(fn).__name__}, not a function returning (train, test)")
    try:
        result = fn()
    except QkdError:
        raise
    except Exception as exc:  # a user's function may fail in any way: the message says which and why
        raise QkdError(f"--dataset {name}: {path}() raised {type(exc).__name__}: {first_line(exc)}") from exc
    if not isinstance(result, Sequence) or isinstance(result, str) or len(result) != 2:
        raise QkdError(f"--dataset {name}: {path}() returned {_what(result)}, not a pair (train, test) of datasets")
    (x_tr, y_tr), (x_te, y_te) = (_tensors(name, part, split) for part, split in zip(result, ("train", "test")))
    if x_tr.shape[1:] != x_te.shape[1:]:
        raise QkdError(f"--dataset {name}: train images are {_shape(x_tr.shape[1:])} and test images "
                       f"{_shape(x_te.shape[1:])}; give both splits images of one shape")
    loaded = Loaded(x_tr, y_tr, x_te, y_te, _sha256(x_tr, y_tr, x_te, y_te))
    if loaded.n_classes < 2:
        raise QkdError(f"--dataset {name}: every label is 0; a classifier needs two or more classes (labels 0..K-1)")
    return loaded


def _tensors(name: str, part: Any, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One split as (N, C, H, W) float32 images in [0, 1] and (N,) int64 labels, or a one-line refusal."""
    where = f"--dataset {name}: the {split} split"
    if isinstance(part, Sequence) and len(part) == 2 and all(isinstance(t, torch.Tensor) for t in part):
        images, labels = part  # a pair of tensors (x, y)
        if images.dim() not in (3, 4) or labels.dim() != 1 or len(images) != len(labels):
            raise QkdError(f"{where} is tensors shaped {_shape(images.shape)} and {_shape(labels.shape)}; give "
                           f"images (N, C, H, W) or (N, H, W) and labels (N,)")
        _check_labels(where, labels)
    else:
        images, labels = _samples(where, part)
    if len(images) == 0:
        raise QkdError(f"{where} has no images")
    if images.dim() == 3:
        images = images.unsqueeze(1)  # (N, H, W): one channel
    images = images.detach().to("cpu", torch.float32).contiguous()
    outside = ~((images >= 0) & (images <= 1))  # NaN is outside too
    if outside.any():
        first = int(outside.flatten(1).any(1).nonzero()[0])
        raise QkdError(f"{where} has images outside [0, 1] (image {first}: values from {images[first].min():g} to "
                       f"{images[first].max():g}); scale them to [0, 1], e.g. bytes / 255")
    return images, labels.detach().to("cpu", torch.long).contiguous()


def _samples(where: str, part: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """A map-style dataset of (image, label) items, stacked."""
    if isinstance(part, torch.utils.data.TensorDataset) and len(part.tensors) == 2:
        return _tensors_of(where, *part.tensors)
    if not (hasattr(part, "__len__") and hasattr(part, "__getitem__")) or isinstance(part, (str, torch.Tensor)):
        raise QkdError(f"{where} is {_what(part)}; give a map-style torch Dataset of (image, label) or a pair of "
                       f"tensors (images, labels)")
    images, labels = [], []
    for i in range(len(part)):
        item = part[i]
        if not isinstance(item, Sequence) or len(item) != 2:
            raise QkdError(f"{where}: item {i} is {_what(item)}, not a pair (image, label)")
        image, label = item
        if not isinstance(image, torch.Tensor) or image.dim() not in (2, 3):
            raise QkdError(f"{where}: item {i}'s image is {_what(image)}; give a tensor shaped (C, H, W) or (H, W)")
        if images and image.shape != images[0].shape:
            raise QkdError(f"{where} has images of mixed shapes ({_shape(images[0].shape)} at item 0, "
                           f"{_shape(image.shape)} at item {i}); give images of one shape")
        if isinstance(label, torch.Tensor) and label.numel() == 1 and _integral(label):
            label = label.reshape(()).item()
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)):
            raise QkdError(f"{where}: item {i}'s label is {_what(label)}, not an integer class (0..K-1)")
        images.append(image)
        labels.append(int(label))
    labels_t = torch.tensor(labels, dtype=torch.long)
    _check_labels(where, labels_t)
    return torch.stack(images), labels_t


def _tensors_of(where: str, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if images.dim() not in (3, 4) or labels.dim() != 1:
        raise QkdError(f"{where} holds tensors shaped {_shape(images.shape)} and {_shape(labels.shape)}; give images "
                       f"(N, C, H, W) or (N, H, W) and labels (N,)")
    _check_labels(where, labels)
    return images, labels


def _integral(t: torch.Tensor) -> bool:
    return not (t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool)


def _check_labels(where: str, labels: torch.Tensor) -> None:
    if not _integral(labels):
        raise QkdError(f"{where} has {str(labels.dtype).removeprefix('torch.')} labels, not integers; give integer "
                       f"classes 0..K-1")
    if len(labels) and labels.min() < 0:
        raise QkdError(f"{where} has label {int(labels.min())}; give classes 0..K-1")


def _sha256(*tensors: torch.Tensor) -> str:
    return hashlib.sha256("|".join(tensor_digest(t) for t in tensors).encode()).hexdigest()


def _shape(shape) -> str:
    return "x".join(map(str, shape)) or "a scalar"


def _what(obj: Any) -> str:
    if isinstance(obj, torch.Tensor):
        return f"a {str(obj.dtype).removeprefix('torch.')} tensor shaped {_shape(obj.shape)}"
    name = type(obj).__name__
    return "None" if obj is None else f"{'an' if name[0] in 'aeiouAEIOU' else 'a'} {name}"


def slug(name: str) -> str:
    """A folder-name-safe tag for run and grid cell names: py-<module.path>-<function>."""
    module, _, function = loader_of(name).partition(":")
    return f"{PREFIX}-{module}-{function.replace('.', '-')}"


def source(name: str) -> dict:
    """What a run's data was (``DataBundle.source``): the loader and a SHA-256 of its images and labels."""
    data = load(name)
    return {"kind": "python", "label": name, "loader": loader_of(name), "sha256": data.sha256,
            "train_images": len(data.y_train), "test_images": len(data.y_test)}
