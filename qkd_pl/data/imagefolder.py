"""``--dataset imagefolder:PATH``: a user's own images as a dataset.

``PATH/train/<class>/*`` and ``PATH/test/<class>/*``, as torchvision's ``ImageFolder`` reads
them, every image converted to RGB and resized to ``SIZE`` x ``SIZE`` pixels (the size of
CIFAR-10, so the same teachers and reductions apply). The folder is checked when the
configuration is, before any image is decoded: a missing part, fewer than two classes or
classes that differ between the parts are refused in one line; an image that cannot be read
is refused, naming it, when the images are loaded (still before anything is trained). The
validation split, per-class caps and normalization are the built-in datasets' own.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from ..errors import QkdError

PREFIX = "imagefolder"
SIZE = 32


def folder_of(name: str) -> Path:
    return Path(name.split(":", 1)[1]).expanduser()


def classes_of(name: str) -> tuple[str, ...]:
    """The class folder names, checked: both parts present, the same two or more classes in each."""
    root = folder_of(name)
    parts = {}
    for part in ("train", "test"):
        folder = root / part
        if not folder.is_dir():
            raise QkdError(f"--dataset {name}: {folder} is not a folder; an image-folder dataset needs "
                           f"{root}/train/<class>/* and {root}/test/<class>/*")
        parts[part] = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir() and any(p.iterdir())))
    if len(parts["train"]) < 2:
        raise QkdError(f"--dataset {name}: {root}/train has {len(parts['train'])} class folder(s) with images; a "
                       f"classifier needs two or more")
    if parts["train"] != parts["test"]:
        only = sorted(set(parts["train"]) ^ set(parts["test"]))
        raise QkdError(f"--dataset {name}: train and test have other classes (only in one of them: "
                       f"{', '.join(only)}); give both parts the same class folders")
    return parts["train"]


def load(name: str, root: Path, train: bool, verify: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, SIZE, SIZE) float in [0, 1] and labels (class folders in sorted order).

    ``root`` (the data root) is not used: the path is part of the dataset's name.
    """
    from torchvision import datasets, transforms

    classes_of(name)  # the checks, in case the folder changed since the configuration was validated
    folder = folder_of(name) / ("train" if train else "test")
    to_tensor = transforms.Compose([transforms.Resize((SIZE, SIZE)), transforms.ToTensor()])
    try:
        ds = datasets.ImageFolder(str(folder), transform=to_tensor)
    except (FileNotFoundError, RuntimeError) as exc:
        raise QkdError(f"--dataset {name}: {folder}: {exc}") from None
    images, labels = [], []
    for path, label in ds.samples:
        try:
            images.append(to_tensor(ds.loader(path)))
        except Exception as exc:  # noqa: BLE001 - PIL raises several kinds for a bad file
            raise QkdError(f"--dataset {name}: cannot read image {path} ({type(exc).__name__}); remove or "
                           f"replace it") from None
        labels.append(label)
    return torch.stack(images), torch.tensor(labels, dtype=torch.long)


def slug(name: str) -> str:
    """A folder-name-safe tag for run and grid cell names: imagefolder-<folder>-<hash of the path>."""
    path = str(folder_of(name))
    return f"{PREFIX}-{Path(path).name or 'root'}-{hashlib.sha1(path.encode()).hexdigest()[:6]}"
