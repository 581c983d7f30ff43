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


def labels():
    return load_split("digits", data_root(), True)[1].numpy(), load_split("digits", data_root(), False)[1].numpy()


def test_nested_caps_lie_inside_the_uncapped_parts_and_keep_the_per_class_total():
    y_tr, y_te = labels()
    full_fit, full_val, full_test = split_indices(DataConfig("digits", classes=[0, 1, 2]), y_tr, y_te, 10)
    previous = (set(), set())
    for n in (10, 50, 100):  # digits has about 143 training images of each class
        fit, val, test = split_indices(DataConfig("digits", classes=[0, 1, 2], per_class=n), y_tr, y_te, 10)
        assert set(fit) <= set(full_fit) and set(val) <= set(full_val) and set(test) <= set(full_test)
        assert previous[0] <= set(fit) and previous[1] <= set(val)  # a larger cap adds images, never swaps
        n_val = int(np.ceil(n * 0.2))
        assert np.bincount(y_tr[fit]).tolist()[:3] == [n - n_val] * 3
        assert np.bincount(y_tr[val]).tolist()[:3] == [n_val] * 3
        previous = (set(fit), set(val))


def test_capped_splits_are_the_earlier_scheme_and_old_configs_read_as_capped():
    from qkd_pl.config import RunConfig

    y_tr, y_te = labels()
    cfg = DataConfig("digits", classes=[0, 1, 2], per_class=50, split="capped")
    fit, val, _ = split_indices(cfg, y_tr, y_te, 10)
    first = np.sort(np.concatenate([np.flatnonzero(y_tr == c)[:50] for c in (0, 1, 2)]))
    assert sorted(set(fit) | set(val)) == first.tolist()  # the first 50 of each class, then split
    saved = RunConfig("teacher", data=cfg).to_dict()
    del saved["data"]["split"]  # a config.json written before nested splits existed
    assert RunConfig.from_dict(saved).data.split == "capped"


def test_a_cap_too_small_for_its_validation_share_is_refused():
    import pytest

    from qkd_pl.errors import QkdError

    with pytest.raises(QkdError, match="--per-class 1 with --val-fraction 0.2 leaves no training image"):
        split_indices(DataConfig("digits", per_class=1), *labels(), 10)
