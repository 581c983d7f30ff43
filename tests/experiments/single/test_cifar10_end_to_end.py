"""RGB end to end: teacher and students on a CIFAR10 fixture in torchvision's format, declared
by a provenance.json as the JPEG copy is (tests/data/test_cifar10.py covers the loading cases)."""

import json

import pytest
from click.testing import CliRunner

from qkd_pl.cli import cli
from tests_helpers_cifar import write_cifar_fixture


@pytest.fixture
def cifar_root(tmp_path, monkeypatch):
    write_cifar_fixture(tmp_path / "data", per_batch=30)  # a declared copy: loaded with its warning
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
