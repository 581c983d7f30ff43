"""A dataset of your own, as torch ``Dataset``s, for the command line and the Python API.

``load()`` returns (train, test): map-style datasets of (image, label), images float in [0, 1]
shaped (C, H, W). Here: sklearn's 8x8 digits, standing in for files of your own.

    qkd train-student --dataset py:my_data:load --classes 0-3 --epochs 3     # from this folder
    python my_data.py                                                        # the Python API
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from torch.utils.data import Dataset


class Digits(Dataset):
    """(image, label) pairs, read one by one as a dataset of files would be."""

    def __init__(self, part: str):
        x, y = load_digits(return_X_y=True)
        n = len(y) * 4 // 5
        rows = slice(0, n) if part == "train" else slice(n, None)
        self.x = torch.tensor(x[rows], dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
        self.y = [int(v) for v in y[rows]]

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.x[i], self.y[i]


def load() -> tuple[Dataset, Dataset]:
    return Digits("train"), Digits("test")


def main(out: str = "runs/example-own-dataset", epochs: int = 5, progress: bool = True) -> float:
    """The same data through the Distiller: a validation part carved from train, the test part once."""
    from torch import nn
    from torch.utils.data import random_split

    from qkd_pl import Distiller, TrainConfig

    train, test = load()
    train, val = random_split(train, [0.8, 0.2], generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    student = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))  # any module; see own_qnode_student.py for a circuit
    distiller = Distiller(train=TrainConfig(epochs=epochs, lr=0.01), progress=progress)
    distiller.fit(student, train, val, out, overwrite=True)
    return distiller.test(student, test).accuracy


if __name__ == "__main__":
    print(f"test accuracy {main():.3f}")
