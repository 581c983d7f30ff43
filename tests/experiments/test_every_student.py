"""`qkd train-student` trains every reducer x encoding x ansatz on digits, MNIST and FashionMNIST,
on default.qubit and lightning.qubit, and on digits on qkd.fused (auto's pick; its agreement with
the others is tested circuit by circuit in tests/circuits and tests/devices), plus the
hybrid-cnn preset, with tiny data so the matrix stays cheap."""

import itertools
import json

import pytest
from click.testing import CliRunner

from cli import cli
from conftest import require_dataset_files
from qkd_pl.circuits import ANSATZES, ENCODINGS
from qkd_pl.reduction import REDUCERS

COMBOS = list(itertools.product(REDUCERS, ENCODINGS, ANSATZES))
DEVICES = ["default.qubit", "lightning.qubit"]


def train(tmp_path, dataset, *extra):
    if dataset != "digits":
        require_dataset_files(dataset)
    args = ["train-student", "--dataset", dataset, "--classes", "0-1", "--per-class", "10", "--epochs", "1",
            "--qubits", "2", "--quiet", "--out", str(tmp_path), "--name", "s", *extra]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    return json.loads((tmp_path / "s" / "test_metrics.json").read_text())


@pytest.mark.parametrize("device,dataset", [(d, s) for d in DEVICES for s in ("digits", "mnist", "fashion-mnist")]
                         + [("qkd.fused", "digits")])
@pytest.mark.parametrize("reducer,encoding,ansatz", COMBOS)
def test_every_combination_trains(tmp_path, dataset, device, reducer, encoding, ansatz):
    m = train(tmp_path, dataset, "--reducer", reducer, "--encoding", encoding, "--ansatz", ansatz,
              "--device", device)
    assert 0.0 <= m["test_accuracy"] <= 1.0 and m["parameters"]["quantum"] > 0 and m["trained_on"] == device


def test_hybrid_cnn_preset_trains(tmp_path):
    for device in ("default.qubit", "qkd.fused"):
        m = train(tmp_path / device, "digits", "--student", "hybrid-cnn", "--device", device)
        assert m["parameters"]["quantum"] == 0 and m["trained_on"] == device


def test_hybrid_cnn_on_an_adjoint_device_is_refused_with_the_reason(tmp_path):
    r = CliRunner().invoke(cli, ["train-student", "--student", "hybrid-cnn", "--device", "lightning.qubit",
                                 "--out", str(tmp_path)])
    assert r.exit_code == 2 and "adjoint" in r.stderr and "default.qubit" in r.stderr
    assert not any(tmp_path.iterdir())


def test_training_on_a_shot_based_device_is_refused_before_any_work(tmp_path):
    r = CliRunner().invoke(cli, ["train-student", "--device", "ibm:fake_manila", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "for evaluation" in r.stderr
    assert not any(tmp_path.iterdir())  # no run folder was started
