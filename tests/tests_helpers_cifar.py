"""A tiny CIFAR10 in torchvision's on-disk format, for tests of the RGB path."""

import pickle

import numpy as np


def write_cifar_fixture(root, per_batch: int = 20) -> None:
    """A tiny CIFAR10 in torchvision's on-disk format (pickled dicts of uint8 rows and labels)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [i % 10 for i in range(per_batch)]
        with open(folder / name, "wb") as fh:
            pickle.dump({"data": data, "labels": labels}, fh)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, fh)
