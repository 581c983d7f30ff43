"""CIFAR-10's files: the originals load silently, a declared copy with one warning and its label
everywhere its numbers go, anything else is refused in one line, and no pickle is executed."""

import hashlib
import json
import pickle
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

import qkd_pl.data.cifar10 as cifar10
from conftest import require_dataset_files
from qkd_pl.cli import cli
from qkd_pl.config import DataConfig
from qkd_pl.data import load_data
from qkd_pl.data.sources import load_split
from qkd_pl.errors import QkdError, QkdWarning
from tests_helpers_cifar import write_cifar_fixture


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch):
    monkeypatch.setattr(cifar10, "_WARNED", set())


def md5s(folder):
    return {name: hashlib.md5((folder / name).read_bytes()).hexdigest() for name in cifar10.ORIGINAL_MD5}


def redeclare(folder):
    record = json.loads((folder / "provenance.json").read_text())
    record["md5"] = md5s(folder)
    (folder / "provenance.json").write_text(json.dumps(record))


def test_files_with_the_original_md5s_load_silently(tmp_path, monkeypatch):
    write_cifar_fixture(tmp_path, declare=False)
    monkeypatch.setattr(cifar10, "ORIGINAL_MD5", md5s(tmp_path / cifar10.FOLDER))  # as if they were the originals
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = load_data(DataConfig("cifar10"), str(tmp_path))
    assert data.source is None and data.image_shape == (3, 32, 32) and len(data.y_test) == 20


def test_a_declared_copy_loads_with_one_warning_and_its_label(tmp_path):
    write_cifar_fixture(tmp_path)
    with pytest.warns(QkdWarning) as caught:
        data = load_data(DataConfig("cifar10"), str(tmp_path))
    assert len(caught) == 1 and "\n" not in str(caught[0].message)
    assert "declared copy, not the original files (CIFAR-10, PNG copy" in str(caught[0].message)
    assert data.source["label"] == "CIFAR-10, PNG copy" and data.source["provenance"]["lossless"] is True


def test_a_changed_byte_is_refused_in_one_line(tmp_path):
    write_cifar_fixture(tmp_path)
    path = tmp_path / cifar10.FOLDER / "data_batch_3"
    raw = bytearray(path.read_bytes())
    raw[-100] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(QkdError, match="match neither the original CIFAR-10 nor their provenance.json "
                                       r"\(data_batch_3: md5 \w+, declared \w+\)"):
        load_split("cifar10", tmp_path, train=True)
    r = CliRunner().invoke(cli, ["train-teacher", "--dataset", "cifar10", "--data-dir", str(tmp_path), "--out",
                                 str(tmp_path / "runs")])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.output
    assert not (tmp_path / "runs").exists()


def test_files_that_no_provenance_declares_are_refused(tmp_path):
    write_cifar_fixture(tmp_path, declare=False)
    with pytest.raises(QkdError, match="present but are not the original CIFAR-10 .* no provenance.json declares"):
        load_split("cifar10", tmp_path, train=False)


class RunsCode:
    """What a hostile file would carry: unpickling it calls a function of the writer's choice."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))  # would create the marker file if it were executed


def test_a_declared_copy_whose_pickle_would_run_code_is_refused_and_not_run(tmp_path):
    write_cifar_fixture(tmp_path)
    folder = tmp_path / cifar10.FOLDER
    marker = tmp_path / "executed"
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1], "x": RunsCode(marker)}, fh)
    redeclare(folder)  # the provenance record vouches for the hostile file, as a writer could make it
    with pytest.warns(QkdWarning), pytest.raises(QkdError, match="open is not allowed in a CIFAR-10 file.* it was not executed"):
        load_split("cifar10", tmp_path, train=False)
    assert not marker.exists()


def test_missing_files_are_named(tmp_path):
    write_cifar_fixture(tmp_path)
    (tmp_path / cifar10.FOLDER / "data_batch_5").unlink()
    with pytest.raises(QkdError, match="cifar10 files not found under .* missing: data_batch_5"):
        load_split("cifar10", tmp_path, train=True)


def test_a_run_folder_and_a_report_name_the_copy(tmp_path):
    write_cifar_fixture(tmp_path / "data", per_batch=30)
    toml = tmp_path / "g.toml"
    toml.write_text('seeds = [0]\n[data]\ndatasets = ["cifar10"]\nclasses = ["0-1"]\n[student]\nqubits = [2]\n'
                    'reducer = ["avgpool"]\nepochs = 1\n[teacher]\narch = ["none"]\n')
    with pytest.warns(QkdWarning, match="declared copy"):
        r = CliRunner().invoke(cli, ["grid", str(toml), "--out", str(tmp_path / "g"), "--data-dir",
                                     str(tmp_path / "data"), "--quiet"])
    assert r.exit_code == 0, r.output
    row = json.loads((tmp_path / "g" / "results.json").read_text())[0]
    metrics = json.loads((tmp_path / "g" / row["run_dir"] / "test_metrics.json").read_text())
    assert metrics["data_source"]["label"] == "CIFAR-10, PNG copy" and "md5" in metrics["data_source"]["provenance"]
    report = (tmp_path / "g" / "report.md").read_text()
    assert "Data: cifar10 is CIFAR-10, PNG copy, not the original files" in report
    assert "| cifar10 (CIFAR-10, PNG copy) | 0-1 |" in report


def test_the_jpeg_copy_here_is_a_declared_copy():
    root = require_dataset_files("cifar10")
    with pytest.warns(QkdWarning, match="CIFAR-10, JPEG copy: lossy pixels"):
        x, y = load_split("cifar10", root, train=False)
    assert x.shape == (10000, 3, 32, 32) and np.bincount(y.numpy()).tolist() == [1000] * 10
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.std() > 0.1
