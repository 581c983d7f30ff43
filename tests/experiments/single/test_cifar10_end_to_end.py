"""RGB end to end: teacher and students on a CIFAR10 fixture in torchvision's format.

The fixture cannot match torchvision's md5 sums, so the loader's verification is switched
off here (and only here) by patching the bundle's loader.
"""

import functools
import json

import pytest
from click.testing import CliRunner

import qkd_pl.data.bundle as bundle
from qkd_pl.cli import cli
from qkd_pl.data.sources import load_split
from tests_helpers_cifar import write_cifar_fixture


@pytest.fixture
def cifar_root(tmp_path, monkeypatch):
    write_cifar_fixture(tmp_path / "data", per_batch=30)
    monkeypatch.setattr(bundle, "load_split", functools.partial(load_split, verify=False))
    return tmp_path / "data"


@pytest.mark.parametrize("reducer", ["fc", "avgpool", "crop", "pca"])
def test_rgb_students_train_and_distil(cifar_root, tmp_path, reducer):
    common = ["--dataset", "cifar10", "--data-dir", str(cifar_root), "--epochs", "1", "--quiet", "--out", str(tmp_path)]
    r = CliRunner().invoke(cli, ["train-teacher", *common, "--name", "t"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["train-student", *common, "--qubits", "4", "--reducer", reducer,
                                 "--teacher", str(tmp_path / "t"), "--name", "s"])
    assert r.exit_code == 0, r.output
    cfg = json.loads((tmp_path / "s" / "config.json").read_text())
    assert cfg["data"]["dataset"] == "cifar10"
    if reducer == "fc":
        assert json.loads((tmp_path / "s" / "test_metrics.json").read_text())["parameters"]["classical"] == \
            3 * 32 * 32 * 16 + 16 + 4 * 10 + 10
