"""CIFAR-10's files: the originals, a declared copy, or a refusal; never an executed pickle.

torchvision checks CIFAR-10's files against the original md5 sums and calls anything else
"not found or corrupted", which is wrong twice over for a copy rebuilt from other sources
(such as the JPEG copy ``get-datasets.sh`` writes here): the files are there, and they are not
the originals. So the files are inspected here first:

- all of them match the original md5s: the originals;
- all of them match the md5s a ``provenance.json`` beside them records: a declared copy, loaded
  with one warning line and labelled ("CIFAR-10, JPEG copy") in every run folder and report;
- anything else: refused in one line, saying which file differs from what.

The files are pickles, and a provenance record is written by whoever wrote the files, so they
are read by an unpickler that admits only what the format needs (dicts, lists, strings,
numbers and numpy arrays): a pickle that would import anything else is refused, not run.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import QkdError, QkdWarning

FOLDER = "cifar-10-batches-py"
TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST = ("test_batch",)
META = "batches.meta"
# torchvision.datasets.CIFAR10's train_list, test_list and meta: the files as published.
ORIGINAL_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f", "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751", "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb", "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
PROVENANCE = "provenance.json"


@dataclass(frozen=True)
class Source:
    """What a folder of CIFAR-10 files is: ``kind`` "original", "declared copy" or "unverified"
    (test fixtures only); ``label`` is how reports name it; ``provenance`` the copy's record."""

    kind: str
    label: str
    provenance: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "label": self.label, "provenance": self.provenance}


def inspect(root: Path, verify: bool = True) -> Source:
    """Tell the originals from a declared copy from anything else (which is refused).

    Args:
        root: the data root holding ``cifar-10-batches-py/``.
        verify: False for test fixtures in the format (no md5 check; still read safely).

    Raises:
        QkdError: files missing (naming them), or present but neither the originals nor a
            declared copy (naming the first file that differs).
    """
    folder = Path(root) / FOLDER
    missing = [name for name in ORIGINAL_MD5 if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(", ".join(missing))
    if not verify:
        return Source("unverified", "CIFAR-10 (unverified files)")
    sums = {name: _md5(folder / name) for name in ORIGINAL_MD5}
    if sums == ORIGINAL_MD5:
        return Source("original", "CIFAR-10")
    record = _provenance(folder)
    if record is None:
        name = next(n for n in ORIGINAL_MD5 if sums[n] != ORIGINAL_MD5[n])
        raise QkdError(f"cifar10 files under {folder} are present but are not the original CIFAR-10 ({name}: md5 "
                       f"{sums[name]}, the original's is {ORIGINAL_MD5[name]}) and no {PROVENANCE} declares them; "
                       f"replace them with the originals, or rebuild the copy (docs/howto/data.md in the documentation)")
    declared = record.get("md5", {})
    differ = [n for n in ORIGINAL_MD5 if declared.get(n) != sums[n]]
    if differ:
        name = differ[0]
        raise QkdError(f"cifar10 files under {folder} match neither the original CIFAR-10 nor their {PROVENANCE} "
                       f"({name}: md5 {sums[name]}, declared {declared.get(name)}); the files were changed after "
                       f"the copy was written: rebuild it (docs/howto/data.md in the documentation)")
    formats = record.get("image_formats") or []
    label = f"CIFAR-10, {'/'.join(formats)} copy" if formats else "CIFAR-10, declared copy"
    source = Source("declared copy", label, record)
    if str(folder) not in _WARNED:
        _WARNED.add(str(folder))
        lossy = "lossy pixels" if record.get("lossless") is False else "pixels as declared"
        warnings.warn(QkdWarning(f"cifar10: {folder} holds a declared copy, not the original files ({label}: {lossy}, "
                                 f"order {record.get('order', {}).get('train', 'as declared')}; {PROVENANCE}); "
                                 f"its numbers compare with published CIFAR-10 results only approximately"),
                      stacklevel=2)
    return source


def load(root: Path, train: bool, verify: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, 32, 32) float in [0, 1] and labels of one split, after ``inspect``."""
    inspect(root, verify)
    folder = Path(root) / FOLDER
    batches = [read_pickle(folder / name) for name in (TRAIN if train else TEST)]
    try:
        data = np.concatenate([np.asarray(b["data"], dtype=np.uint8) for b in batches])
        labels = np.concatenate([np.asarray(b["labels"], dtype=np.int64) for b in batches])
    except (KeyError, TypeError, ValueError) as exc:
        raise QkdError(f"cifar10 files under {folder} are not in CIFAR-10's format ({type(exc).__name__}: "
                       f"{exc}); rebuild them (docs/howto/data.md in the documentation)") from None
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()).to(torch.float32).div_(255.0)
    return images, torch.from_numpy(labels)


class _NumpyOnly(pickle.Unpickler):
    """Admits the globals a pickled numpy array needs and nothing else."""

    ALLOWED = {("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR-10 file")
        return {"_reconstruct": _np_reconstruct(), "ndarray": np.ndarray, "dtype": np.dtype}[name]


def _np_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


def read_pickle(path: Path) -> Any:
    """One CIFAR-10 file, read by the restricted unpickler (Python 2 pickles decode as latin-1)."""
    try:
        with open(path, "rb") as fh:
            return _NumpyOnly(fh, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise QkdError(f"{path} is not a CIFAR-10 file qkd-pl reads safely ({exc}); it was not executed; rebuild "
                       f"the files (docs/howto/data.md in the documentation)") from None


_WARNED: set[str] = set()
_MD5: dict[tuple[str, int, int], str] = {}


def _md5(path: Path) -> str:
    """The file's md5, computed once per (path, size, modification time) in a process."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _MD5:
        h = hashlib.md5()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _MD5[key] = h.hexdigest()
    return _MD5[key]


def _provenance(folder: Path) -> dict[str, Any] | None:
    path = folder / PROVENANCE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        raise QkdError(f"{path} is not readable JSON; rebuild the copy (docs/howto/data.md in the documentation)") from None
    return record if isinstance(record, dict) else None
