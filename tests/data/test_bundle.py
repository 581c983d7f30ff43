import numpy as np
import torch

from qkd_pl.config import DataConfig
from qkd_pl.data import load_data
from qkd_pl.data.bundle import split_indices
from qkd_pl.data.sources import data_root, load_split


def test_subset_cap_and_remap():
    b = load_data(DataConfig("digits", classes=[3, 5, 7], per_class=40, val_fraction=0.25))
    assert b.classes == [3, 5, 7] and b.n_classes == 3
    assert sorted(set(b.y_train.tolist())) == [0, 1, 2]
    assert np.bincount(b.y_train.numpy()).tolist() == [30, 30, 30]
    assert np.bincount(b.y_val.numpy()).tolist() == [10, 10, 10]
    _, y_te = load_split("digits", data_root(), False)
    available = [int((y_te == c).sum()) for c in (3, 5, 7)]  # digits' test split has fewer than 40 of each
    assert np.bincount(b.y_test.numpy()).tolist() == [min(40, n) for n in available]


def test_train_validation_test_are_disjoint_and_val_is_seeded():
    cfg = DataConfig("digits", val_fraction=0.2, split_seed=1)
    _, y_tr = load_split("digits", data_root(), True)
    _, y_te = load_split("digits", data_root(), False)
    fit, val, test = split_indices(cfg, y_tr.numpy(), y_te.numpy(), 10)
    assert set(fit).isdisjoint(val) and len(fit) + len(val) == len(y_tr)
    assert len(test) == len(y_te)
    _, val_other, _ = split_indices(DataConfig("digits", split_seed=2), y_tr.numpy(), y_te.numpy(), 10)
    assert set(val) != set(val_other)


def test_normalization_comes_from_the_training_part_only():
    b = load_data(DataConfig("digits"))
    assert torch.allclose(b.mean, b.x_train.mean(dim=(0, 2, 3)))
    assert not torch.allclose(b.mean, torch.cat([b.x_train, b.x_val]).mean(dim=(0, 2, 3)), atol=1e-7)
