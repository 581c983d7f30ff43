"""`qkd train-student` trains every reducer x encoding x ansatz (and the hybrid-cnn preset) on digits."""

import itertools
import json

import pytest
from click.testing import CliRunner

from cli import cli
from qkd_pl.circuits import ANSATZES, ENCODINGS
from qkd_pl.reduction import REDUCERS

SMALL = ["--dataset", "digits", "--classes", "0-2", "--per-class", "30", "--epochs", "1", "--quiet"]


@pytest.mark.parametrize("reducer,encoding,ansatz", list(itertools.product(REDUCERS, ENCODINGS, ANSATZES)))
def test_every_combination_trains(tmp_path, reducer, encoding, ansatz):
    r = CliRunner().invoke(cli, ["train-student", *SMALL, "--qubits", "2", "--reducer", reducer, "--encoding",
                                 encoding, "--ansatz", ansatz, "--out", str(tmp_path), "--name", "s"])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "s" / "test_metrics.json").read_text())
    assert 0.0 <= m["test_accuracy"] <= 1.0 and m["parameters"]["quantum"] > 0


@pytest.mark.parametrize("device", ["default.qubit", "lightning.qubit"])
def test_both_exact_simulators_train(tmp_path, device):
    r = CliRunner().invoke(cli, ["train-student", *SMALL, "--qubits", "2", "--reducer", "pca", "--device", device,
                                 "--out", str(tmp_path), "--name", "s"])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "s" / "test_metrics.json").read_text())["trained_on"] == device


def test_hybrid_cnn_preset_trains(tmp_path):
    r = CliRunner().invoke(cli, ["train-student", *SMALL, "--student", "hybrid-cnn", "--qubits", "2",
                                 "--out", str(tmp_path), "--name", "v1"])
    assert r.exit_code == 0, r.output


def test_training_on_a_shot_based_device_is_refused_before_any_work(tmp_path):
    r = CliRunner().invoke(cli, ["train-student", *SMALL, "--device", "ibm:fake_manila", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "for evaluation" in r.stderr
    assert not any(tmp_path.iterdir())  # no run folder was started
