"""Shared fixtures: small real data and helpers for CLI runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from qkd_pl.data.sources import data_root


def require_dataset_files(name: str) -> Path:
    """The data root holding ``name``'s files; skip locally if absent, fail in CI (where .ci/run fetched them)."""
    marker = {"mnist": "MNIST/raw/t10k-labels-idx1-ubyte", "fashion-mnist": "FashionMNIST/raw/t10k-labels-idx1-ubyte",
              "cifar10": "cifar-10-batches-py/test_batch"}[name]
    root = data_root()
    if not (root / marker).exists():
        msg = f"{name} not under {root}; run ../shared/scripts/get-datasets.sh and set QKD_DATA_DIR"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return root


@pytest.fixture(autouse=True, scope="session")
def _private_cache_and_no_downloads(tmp_path_factory):
    """Teacher-logit caches go to a temporary folder, not the user's cache, and no test reaches
    the network: missing files are missing whether or not the machine has internet (the
    download path itself is tested with a fake dataset class). Subprocesses inherit both."""
    os.environ["QKD_CACHE_DIR"] = str(tmp_path_factory.mktemp("qkd-cache"))
    os.environ["QKD_OFFLINE"] = "1"


@pytest.fixture
def one_gpu(monkeypatch):
    """A machine where torch reports one CUDA device (nothing is run on it)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
