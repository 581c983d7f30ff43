"""Raw images and labels of each supported dataset, as float tensors in [0, 1] shaped (N, C, H, W).

MNIST, FashionMNIST and CIFAR10 go through torchvision's own dataset classes so that users
with internet get torchvision's download and users without it can point ``--data-dir`` at
files they already have. ``digits`` (scikit-learn) is always present, which makes it the
default for the demo and for fast tests.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import QkdError
from ..registry import Registry
from . import imagefolder, user_dataset


# digits ships as one set; this fixed split makes its test set the same for every run.
DIGITS_TEST_FRACTION = 0.2
DIGITS_TEST_SEED = 0
DOWNLOAD_TIMEOUT_S = 20

def canonical_name(name: str) -> str:
    return DATASETS.canonical(name)


def data_root(data_dir: str | os.PathLike | None = None) -> Path:
    """``--data-dir``, else ``$QKD_DATA_DIR``, else the user's cache folder."""
    if data_dir:
        return Path(data_dir).expanduser()
    if os.environ.get("QKD_DATA_DIR"):
        return Path(os.environ["QKD_DATA_DIR"]).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("qkd-pl")) / "data"


# The built-in datasets' folders under the data root: what a loaded split is remembered by (below).
FOLDERS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "cifar10": "cifar-10-batches-py", "digits": None}
_SPLITS: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}  # this process's loaded splits (a grid worker's)
SPLITS_KEPT = 4


def load_split(name: str, root: Path, train: bool, verify: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, C, H, W) float32 in [0, 1] and labels (N,) int64 of one official split.

    ``verify=False`` skips the md5 checks of CIFAR10 files (they are still read safely); it
    exists so tests can exercise the loader on a small fixture written in the format.

    A built-in dataset's split is read once per process and kept (a grid worker's next cells
    reuse it), keyed on the path, size and modification time of every file in its folder, so
    files replaced in between are read again. Callers get their own copies (the kept tensors
    stay as read).
    """
    name = canonical_name(name)
    key = _split_key(name, root, train, verify)
    if key is None:
        return DATASETS[name].load(root, train, verify)
    if key not in _SPLITS:
        if len(_SPLITS) >= SPLITS_KEPT:
            _SPLITS.pop(next(iter(_SPLITS)))
        _SPLITS[key] = DATASETS[name].load(root, train, verify)
    images, labels = _SPLITS[key]
    return images.clone(), labels.clone()


def load_labels(name: str, root: Path, train: bool, verify: bool = True) -> torch.Tensor:
    """The labels (N,) int64 of one official split: ``load_split``'s, without copying its images.

    Why: a grid cell asks for the labels alone several times (its splits, its teacher's data
    report, its transfer set), and a copy of MNIST's images to read them took 0.1 s each time.
    """
    name = canonical_name(name)
    key = _split_key(name, root, train, verify)
    if key is None:
        return DATASETS[name].load(root, train, verify)[1]
    if key not in _SPLITS:
        return load_split(name, root, train, verify)[1]  # reads the split once and keeps it
    return _SPLITS[key][1].clone()


def _split_key(name: str, root: Path, train: bool, verify: bool) -> tuple | None:
    """What a kept split is keyed on; None for a dataset of the user's own (its loader may read anything)."""
    if name not in FOLDERS or name not in DATASETS:
        return None
    files = files_signature(Path(root), name)
    if files is None:
        return None
    return (name, DATASETS[name].load, str(Path(root).resolve()), train, verify, files)


def files_signature(root: Path, name: str) -> tuple | None:
    """Every file in a built-in dataset's folder (links followed) with its size, modification and
    change times and inode: what says the files are still the ones read. () for digits (scikit-learn's
    own), None where the folder is missing (the loader says so, or downloads)."""
    folder = FOLDERS.get(name)
    if folder is None:
        return ()
    base = Path(root) / folder
    if not base.is_dir():
        return None
    files = []
    for parent, _, names in os.walk(base, followlinks=True):
        for file in names:
            path = Path(parent) / file
            st = path.stat()
            files.append((str(path.relative_to(base)), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
    return tuple(sorted(files))


def _greyscale(name: str, root: Path, train: bool, verify: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST-style files through torchvision: (N, H, W) uint8 -> (N, 1, H, W) float."""
    images, labels = _torchvision(name, root, train, verify)
    return _to_float(images.unsqueeze(1)), labels.long()


def _cifar10(root: Path, train: bool, verify: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 through ``cifar10.py`` (originals or a declared copy, read safely); when files are
    missing, torchvision's download of the originals once, unless downloads are off."""
    from . import cifar10

    try:
        return cifar10.load(root, train, verify)
    except FileNotFoundError as exc:
        if os.environ.get("QKD_OFFLINE"):
            raise _missing("cifar10", root, f"downloads are off (QKD_OFFLINE is set; missing: {exc})") from None
    import torchvision.datasets as tvd

    _download(tvd.CIFAR10, "cifar10", root, train)
    return cifar10.load(root, train, verify)


def _cifar10_source(root: Path) -> dict | None:
    """None for the original files; what they are otherwise (a declared copy)."""
    from . import cifar10

    source = cifar10.inspect(root)
    return None if source.kind == "original" else source.to_dict()


def _to_float(images: torch.Tensor) -> torch.Tensor:
    return images.to(torch.float32).div_(255.0).contiguous()


def _digits(train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    idx_train, idx_test = train_test_split(
        np.arange(len(bunch.target)), test_size=DIGITS_TEST_FRACTION,
        stratify=bunch.target, random_state=DIGITS_TEST_SEED)
    idx = np.sort(idx_train if train else idx_test)
    images = torch.as_tensor(bunch.images[idx] / 16.0, dtype=torch.float32).unsqueeze(1)
    return images, torch.as_tensor(bunch.target[idx], dtype=torch.long)


def _torchvision_class(name: str):
    import torchvision.datasets as tvd

    return {"mnist": tvd.MNIST, "fashion-mnist": tvd.FashionMNIST}[name]


def _torchvision(name: str, root: Path, train: bool, verify: bool):
    cls = _torchvision_class(name)
    try:
        ds = cls(str(root), train=train, download=False)
    except RuntimeError:
        if os.environ.get("QKD_OFFLINE"):  # an air-gapped machine (and the tests): no 20 s wait for a timeout
            raise _missing(name, root, "downloads are off (QKD_OFFLINE is set)") from None
        ds = _download(cls, name, root, train)
    return ds.data, ds.targets


def _missing(name: str, root: Path, why: str) -> QkdError:
    return QkdError(f"{name} files not found under {root} ({', '.join(expected_files(name))}) and {why}; "
                    f"{DATASETS[name].how_to_get}, then pass --data-dir ROOT or set QKD_DATA_DIR")


def _download(cls, name: str, root: Path, train: bool):
    """Try torchvision's download once, quietly; on failure say what is missing and how to fix it."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return cls(str(root), train=train, download=True)
    except Exception:  # noqa: BLE001 - any download failure means the same thing to the user
        raise _missing(name, root, "the download failed") from None
    finally:
        socket.setdefaulttimeout(previous)


@dataclass(frozen=True)
class Dataset:
    """A dataset: the names it answers to, its classes and image shape (known before any file
    is read, so a configuration is checked without loading images), and how to get its files."""

    name: str
    help: str
    aliases: tuple[str, ...]
    n_classes: int
    image_shape: tuple[int, int, int]
    load: Callable[[Path, bool, bool], tuple[torch.Tensor, torch.Tensor]]  # (root, train, verify) -> images, labels
    how_to_get: str | None = None  # None: always present
    source: Callable[[Path], dict] | None = None  # what the files are, recorded in run folders and reports
    family: bool = False  # "name:..." names a member (imagefolder:PATH), whose record ``resolve`` makes
    resolve: Callable[[str], "Dataset"] | None = None
    member: str | None = None  # a family's: what its bare name lacks ("its folder: --dataset imagefolder:PATH")
    # what --augment auto picks: small shifts and rotations keep a digit or a garment what it is; a
    # photograph survives crops and mirror images too
    augment: str = "shift-rotate"


# What an installed user can do, naming the documentation's page (a checkout also has
# ../shared/scripts/get-datasets.sh, which is not part of the package).
DATA_HOWTO = "docs/howto/data.md in the documentation"
_GET_TORCHVISION = ("on a machine with internet qkd downloads it on first use (unset QKD_OFFLINE); offline, copy "
                    f"torchvision's files of it from such a machine into ROOT ({DATA_HOWTO})")
DATASETS: Registry[Dataset] = Registry("dataset", "--dataset")
DATASETS.add(Dataset("digits", "scikit-learn's 8x8 digits, always present", ("digits",), 10, (1, 8, 8),
                     lambda root, train, verify: _digits(train)))
DATASETS.add(Dataset("mnist", "28x28 handwritten digits", ("mnist",), 10, (1, 28, 28),
                     functools.partial(_greyscale, "mnist"), _GET_TORCHVISION))
DATASETS.add(Dataset("fashion-mnist", "28x28 clothing", ("fashion-mnist", "fashionmnist", "fashion_mnist", "fashion"),
                     10, (1, 28, 28), functools.partial(_greyscale, "fashion-mnist"), _GET_TORCHVISION))
DATASETS.add(Dataset("cifar10", "32x32 RGB objects", ("cifar10", "cifar-10", "cifar"), 10, (3, 32, 32),
                     _cifar10, "download cifar-10-python.tar.gz and unpack it so that ROOT/cifar-10-batches-py/ exists, "
                               f"or let qkd download it on a machine with internet ({DATA_HOWTO})",
                     _cifar10_source, augment="crop-flip"))


def _imagefolder_dataset(name: str) -> Dataset:
    classes = imagefolder.classes_of(name)
    return Dataset(name, f"images under {imagefolder.folder_of(name)}", (), len(classes),
                   (3, imagefolder.SIZE, imagefolder.SIZE), functools.partial(imagefolder.load, name),
                   source=lambda root: {"kind": "image folder", "label": f"image folder {imagefolder.folder_of(name)}",
                                        "classes": list(classes)}, augment="crop-flip")


def _needs_a_member(family: str, root: Path, train: bool, verify: bool):
    raise QkdError(f"--dataset {family} needs {DATASETS[family].member}")


DATASETS.add(Dataset("imagefolder", f"imagefolder:PATH, your own images in PATH/train/<class>/* and "
                                    f"PATH/test/<class>/*, as RGB resized to {imagefolder.SIZE}x{imagefolder.SIZE}",
                     (), 0, (3, imagefolder.SIZE, imagefolder.SIZE), functools.partial(_needs_a_member, "imagefolder"),
                     family=True, resolve=_imagefolder_dataset, member="its folder: --dataset imagefolder:PATH"))


def _python_dataset(name: str) -> Dataset:
    """``py:module.path:function``: loaded (once per process) and checked here, since its classes and
    image shape are known only from its data."""
    name = f"{user_dataset.PREFIX}:{user_dataset.loader_of(name)}"
    data = user_dataset.load(name)
    splits = {True: (data.x_train, data.y_train), False: (data.x_test, data.y_test)}
    return Dataset(name, f"your loader {user_dataset.loader_of(name)}", (), data.n_classes, data.image_shape,
                   lambda root, train, verify: splits[train], source=lambda root: user_dataset.source(name))


DATASETS.add(Dataset(user_dataset.PREFIX, f"{user_dataset.USAGE}, your own: function() returns (train, test), each "
                                          f"a torch Dataset of (image (C, H, W) in [0, 1], int label) or a pair of "
                                          f"tensors (images, labels)",
                     (), 0, (0, 0, 0), functools.partial(_needs_a_member, user_dataset.PREFIX), family=True,
                     resolve=_python_dataset, member=f"its loader: --dataset {user_dataset.USAGE}"))
IMAGE_SHAPES = {d.name: d.image_shape for d in DATASETS.values()}


def slug(name: str) -> str:
    """A dataset's name as it may appear in a folder name (an image folder's path, a loader's import
    path may not)."""
    if name.startswith(f"{imagefolder.PREFIX}:"):
        return imagefolder.slug(name)
    return user_dataset.slug(name) if name.startswith(f"{user_dataset.PREFIX}:") else name


def expected_files(name: str) -> list[str]:
    """Where torchvision looks for each dataset's files, relative to the data root."""
    name = canonical_name(name)
    if name in ("mnist", "fashion-mnist"):
        folder = "MNIST" if name == "mnist" else "FashionMNIST"
        return [f"{folder}/raw/{split}-{kind}" for split in ("train", "t10k")
                for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")]
    if name == "cifar10":
        return ["cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}"]
    return []
