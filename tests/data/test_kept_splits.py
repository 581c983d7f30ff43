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
