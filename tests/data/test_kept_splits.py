"""A grid worker reads a dataset's files once: splits are kept per process, keyed on the files."""

import dataclasses
import os

import torch

from qkd_pl.data import sources


def fake_mnist(tmp_path, monkeypatch):
    """MNIST's registry record with a loader that counts its reads of ROOT/MNIST."""
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)
    (tmp_path / "MNIST" / "raw" / "train-images").write_bytes(b"1")
    reads = []

    def load(root, train, verify):
        reads.append(train)
        value = float((root / "MNIST" / "raw" / "train-images").read_bytes()[0])
        return torch.full((3, 1, 2, 2), value), torch.arange(3)

    record = dataclasses.replace(sources.DATASETS["mnist"], load=load)
    monkeypatch.setitem(sources.DATASETS._records, "mnist", record)
    monkeypatch.setattr(sources, "_SPLITS", {})
    return reads


def test_a_split_is_read_once_and_each_caller_gets_its_own_copy(tmp_path, monkeypatch):
    reads = fake_mnist(tmp_path, monkeypatch)
    x, y = sources.load_split("mnist", tmp_path, train=True)
    x.zero_()  # a caller writing into its tensors changes nothing kept
    again, _ = sources.load_split("mnist", tmp_path, train=True)
    assert reads == [True] and torch.all(again == 49.0)
    sources.load_split("mnist", tmp_path, train=False)
    assert reads == [True, False]  # the other split is another key


def test_files_changed_since_are_read_again(tmp_path, monkeypatch):
    reads = fake_mnist(tmp_path, monkeypatch)
    assert torch.all(sources.load_split("mnist", tmp_path, train=True)[0] == 49.0)
    path = tmp_path / "MNIST" / "raw" / "train-images"
    path.write_bytes(b"2")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert torch.all(sources.load_split("mnist", tmp_path, train=True)[0] == 50.0) and len(reads) == 2
    other = tmp_path / "copy"
    (other / "MNIST" / "raw").mkdir(parents=True)
    (other / "MNIST" / "raw" / "train-images").write_bytes(b"3")
    assert torch.all(sources.load_split("mnist", other, train=True)[0] == 51.0)  # another root, another key


def test_a_users_own_dataset_is_not_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "_SPLITS", {})
    assert sources._split_key("py:mine:load", tmp_path, True, True) is None
    sources.load_split("digits", tmp_path, train=True)
    assert len(sources._SPLITS) == 1  # the built-in digits are


def test_files_behind_a_linked_folder_are_keyed_too(tmp_path, monkeypatch):
    reads = fake_mnist(tmp_path / "real", monkeypatch)
    root = tmp_path / "root"
    (root / "MNIST").mkdir(parents=True)
    (root / "MNIST" / "raw").symlink_to(tmp_path / "real" / "MNIST" / "raw")
    key = sources._split_key("mnist", root, True, True)
    assert [f[0] for f in key[-1]] == ["raw/train-images"]
    sources.load_split("mnist", root, train=True)
    (tmp_path / "real" / "MNIST" / "raw" / "train-images").write_bytes(b"22")  # replaced behind the link
    sources.load_split("mnist", root, train=True)
    assert len(reads) == 2


def test_labels_alone_come_from_the_kept_split_without_copying_its_images(tmp_path, monkeypatch):
    reads = fake_mnist(tmp_path, monkeypatch)
    copies = []
    real_clone = torch.Tensor.clone
    monkeypatch.setattr(torch.Tensor, "clone", lambda t, *a, **k: copies.append(t.shape) or real_clone(t, *a, **k))
    y = sources.load_labels("mnist", tmp_path, train=True)  # the first read keeps the split
    copies.clear()
    y.zero_()  # a caller's labels are its own
    again = sources.load_labels("mnist", tmp_path, train=True)
    assert reads == [True] and again.tolist() == [0, 1, 2]
    assert copies == [torch.Size([3])]  # the labels copied, the images not


def test_splits_are_kept_by_configuration_and_labels_and_handed_out_as_copies(monkeypatch):
    import numpy as np

    from qkd_pl.config import DataConfig
    from qkd_pl.data import bundle

    monkeypatch.setattr(bundle, "_SPLIT_INDICES", {})
    made = []
    real = bundle._split_indices
    monkeypatch.setattr(bundle, "_split_indices", lambda *a: made.append(a[0]) or real(*a))
    y_tr, y_te = np.repeat(np.arange(10), 30), np.repeat(np.arange(10), 25)
    fit, val, test = bundle.split_indices(DataConfig("mnist", per_class=20), y_tr, y_te, 10)
    fit[:] = -1  # a caller writing into its indices changes nothing kept
    again = bundle.split_indices(DataConfig("fashion-mnist", per_class=20), y_tr, y_te, 10)
    assert len(made) == 1 and (again[0] >= 0).all()  # the same labels and settings: the same split
    assert [len(p) for p in again] == [160, 40, 200]
    bundle.split_indices(DataConfig("mnist", per_class=20, split_seed=1), y_tr, y_te, 10)
    other = y_tr.copy()
    other[0], other[30] = 1, 0  # two images' labels swapped
    bundle.split_indices(DataConfig("mnist", per_class=20), other, y_te, 10)
    assert len(made) == 3  # another seed, other labels: made again


def test_a_split_that_warns_warns_every_time_from_where_it_was_raised(monkeypatch):
    import warnings

    import numpy as np

    from qkd_pl.config import DataConfig
    from qkd_pl.data import bundle

    monkeypatch.setattr(bundle, "_SPLIT_INDICES", {})
    y_tr, y_te = np.repeat(np.arange(10), 30), np.repeat(np.arange(10), 5)
    for _ in range(2):
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            bundle.split_indices(DataConfig("mnist", per_class=100), y_tr, y_te, 10)
        assert ["more than some classes have" in str(w.message) for w in said] == [True, True]  # train, test
        assert {w.filename for w in said} == {bundle.__file__}  # where the split warned, as before
    assert bundle._SPLIT_INDICES == {}


def test_a_split_that_warns_then_fails_still_says_both(monkeypatch):
    import numpy as np
    import pytest

    from qkd_pl.config import DataConfig
    from qkd_pl.data import bundle
    from qkd_pl.errors import QkdError, QkdWarning

    monkeypatch.setattr(bundle, "_SPLIT_INDICES", {})
    y_tr, y_te = np.repeat(np.arange(10), 30), np.repeat(np.arange(10), 30)
    teacher = DataConfig("mnist", without_pool="100:5")  # a pool beyond every class's 30 images
    with pytest.warns(QkdWarning, match="more than some classes have"), pytest.raises(QkdError, match="takes every"):
        bundle.split_indices(teacher, y_tr, y_te, 10)


def test_class_lists_too_long_to_print_are_keyed_whole(monkeypatch):
    import numpy as np

    from qkd_pl.config import DataConfig
    from qkd_pl.data import bundle

    monkeypatch.setattr(bundle, "_SPLIT_INDICES", {})
    y = np.repeat(np.arange(10), 20)
    one, other = np.array([0, 1, 2, 3, 5, 7, 8, 9]), np.array([0, 1, 2, 4, 6, 7, 8, 9])
    with np.printoptions(threshold=5, edgeitems=3):  # as numpy prints an array of over 1,000 classes
        assert repr(one) == repr(other)
        a = bundle.split_indices(DataConfig("x", classes=one), y, y, 10)
        b = bundle.split_indices(DataConfig("x", classes=other), y, y, 10)
    assert len(bundle._SPLIT_INDICES) == 2 and set(y[a[0]]) == set(one) and set(y[b[0]]) == set(other)
