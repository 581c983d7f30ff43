import numpy as np
import pytest
import torch

from conftest import require_dataset_files
from tests_helpers_cifar import write_cifar_fixture
from qkd_pl.data.sources import canonical_name, data_root, load_split
from qkd_pl.errors import QkdError


def test_digits_is_always_there_with_a_fixed_disjoint_test_split():
    x_tr, y_tr = load_split("digits", data_root(), train=True)
    x_te, y_te = load_split("digits", data_root(), train=False)
    assert x_tr.shape[1:] == (1, 8, 8) and len(x_tr) + len(x_te) == 1797
    assert 0.0 <= x_tr.min() and x_tr.max() <= 1.0
    assert set(y_te.tolist()) == set(range(10))
    # No test image is also a training image (rows compared as bytes).
    train_rows = {row.numpy().tobytes() for row in x_tr.flatten(1)}
    overlap = sum(row.numpy().tobytes() in train_rows for row in x_te.flatten(1))
    assert overlap <= 2  # digits contains a couple of exact duplicate images; a split leak would be hundreds


def test_dataset_names_and_aliases():
    assert canonical_name("FashionMNIST") == "fashion-mnist"
    with pytest.raises(QkdError, match="unknown --dataset 'svhn'; choose one of: digits"):
        canonical_name("svhn")


def test_data_root_order(monkeypatch, tmp_path):
    monkeypatch.setenv("QKD_DATA_DIR", str(tmp_path / "env"))
    assert data_root(tmp_path / "flag") == tmp_path / "flag"
    assert data_root() == tmp_path / "env"
    monkeypatch.delenv("QKD_DATA_DIR")
    assert "qkd-pl" in str(data_root())


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_real_mnist_style_sets_load(name):
    root = require_dataset_files(name)
    x, y = load_split(name, root, train=True)
    assert x.shape == (60000, 1, 28, 28) and x.dtype == torch.float32
    assert np.bincount(y.numpy()).min() > 5000
    x, y = load_split(name, root, train=False)
    assert x.shape == (10000, 1, 28, 28)


def test_missing_files_give_one_line_naming_them(tmp_path):
    with pytest.raises(QkdError) as err:  # conftest sets QKD_OFFLINE: no download is tried
        load_split("mnist", tmp_path, train=True)
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path) in msg and "t10k-images-idx3-ubyte" in msg and "--data-dir" in msg
    assert "QKD_OFFLINE" in msg


class FakeMNIST:
    """torchvision's MNIST as the loader sees it: no files here, and a download that fails or succeeds."""

    downloads_work = False

    def __init__(self, root, train, download):
        if not download:
            raise RuntimeError("Dataset not found. You can use download=True to download it")
        if not self.downloads_work:
            raise OSError("no route to host")
        self.data, self.targets = torch.zeros(3, 28, 28, dtype=torch.uint8), torch.tensor([0, 1, 2])


def test_the_download_is_tried_once_when_allowed_and_its_failure_named(tmp_path, monkeypatch):
    import qkd_pl.data.sources as sources

    monkeypatch.delenv("QKD_OFFLINE")
    monkeypatch.setattr(sources, "_torchvision_class", lambda name: FakeMNIST)
    with pytest.raises(QkdError, match="the download failed; on a machine with internet qkd downloads it on first use"):
        load_split("mnist", tmp_path, train=True)
    monkeypatch.setattr(FakeMNIST, "downloads_work", True)
    x, y = load_split("mnist", tmp_path, train=True)
    assert x.shape == (3, 1, 28, 28) and y.tolist() == [0, 1, 2]


def test_cifar10_loads_as_rgb(tmp_path):
    write_cifar_fixture(tmp_path, declare=False)
    x, y = load_split("cifar10", tmp_path, train=True, verify=False)
    assert x.shape == (100, 3, 32, 32) and y.tolist()[:3] == [0, 1, 2]
    x, _ = load_split("cifar10", tmp_path, train=False, verify=False)
    assert x.shape == (20, 3, 32, 32)
