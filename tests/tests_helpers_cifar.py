"""A tiny CIFAR10 in torchvision's on-disk format, for tests of the RGB path."""

import hashlib
import json
import pickle

import numpy as np

from qkd_pl.data.cifar10 import FOLDER, ORIGINAL_MD5


def write_cifar_fixture(root, per_batch: int = 20, declare: bool = True) -> None:
    """A tiny CIFAR10 in torchvision's on-disk format (pickled dicts of uint8 rows and labels).

    ``declare``: also write the provenance.json of a declared copy (as get-datasets.sh does for
    the JPEG copy), so the loader accepts the files with its warning instead of refusing them.
    """
    folder = root / FOLDER
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [i % 10 for i in range(per_batch)]
        with open(folder / name, "wb") as fh:
            pickle.dump({"data": data, "labels": labels}, fh)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, fh)
    if declare:
        md5 = {name: hashlib.md5((folder / name).read_bytes()).hexdigest() for name in ORIGINAL_MD5}
        (folder / "provenance.json").write_text(json.dumps({"image_formats": ["PNG"], "lossless": True,
                                                            "order": {"train": "fixture"}, "md5": md5}))
