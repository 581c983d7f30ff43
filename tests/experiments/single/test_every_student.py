"""`qkd train-student` trains every reducer x encoding x ansatz on digits on qkd.fused (auto's
pick) and on lightning.qubit (the reference), and the two runs must give the same numbers: the
same training loss every epoch (to 1e-6 relative; one is backprop through fused torch
operations, the other adjoint differentiation in C++), and for amplitude students the same
validation losses and test accuracy (see the test for why not for the others). A few MNIST
and FashionMNIST runs check the 28 px shapes, the hybrid-cnn preset its own path."""

import itertools
import json

import pytest
from click.testing import CliRunner

from qkd_pl.cli import cli
from conftest import require_dataset_files
from qkd_pl.circuits import ANSATZES, ENCODINGS
from qkd_pl.reduction import REDUCERS

COMBOS = list(itertools.product(REDUCERS, ENCODINGS, ANSATZES))


def train(tmp_path, dataset, *extra):
    if dataset != "digits":
        require_dataset_files(dataset)
    args = ["train-student", "--dataset", dataset, "--classes", "0-1", "--per-class", "10", "--epochs", "2",
            "--qubits", "2", "--quiet", "--out", str(tmp_path), "--name", "s", *extra]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    return (json.loads((tmp_path / "s" / "test_metrics.json").read_text()),
            json.loads((tmp_path / "s" / "metrics.json").read_text()))


@pytest.mark.slow
@pytest.mark.parametrize("reducer,encoding,ansatz", COMBOS)
def test_every_combination_trains_to_the_same_numbers_on_qkd_fused_and_lightning(tmp_path, reducer, encoding, ansatz):
    options = ["--reducer", reducer, "--encoding", encoding, "--ansatz", ansatz]
    fused, fused_curve = train(tmp_path / "fused", "digits", *options, "--device", "qkd.fused")
    ref, ref_curve = train(tmp_path / "lightning", "digits", *options, "--device", "lightning.qubit")
    assert fused["trained_on"] == "qkd.fused" and ref["trained_on"] == "lightning.qubit"
    assert fused["parameters"] == ref["parameters"] and fused["parameters"]["quantum"] > 0
    assert [r["train_loss"] for r in fused_curve] == pytest.approx([r["train_loss"] for r in ref_curve], rel=1e-6)
    if encoding == "amplitude":
        assert [r["val_loss"] for r in fused_curve] == pytest.approx([r["val_loss"] for r in ref_curve], rel=1e-6)
        assert fused["test_accuracy"] == ref["test_accuracy"]
    # Not for angle and qubit students: they standardize the reduction's outputs over the batch,
    # which makes the training loss flat along the reduction's bias (and the weights of constant
    # pixels); the float32 gradients there are rounding noise, which Adam turns into steps of
    # about lr (its first step is lr * sign(g) whatever |g| is), so those weights, and through the
    # running statistics the validation and test numbers, differ between any two devices (or
    # thread counts) from the first step on, while the training losses agree to 1e-6.


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
@pytest.mark.parametrize("reducer,encoding,ansatz", [("fc", "amplitude", "strong"), ("avgpool", "angle", "ring"),
                                                     ("pca", "qubit", "paper")])
def test_28_pixel_datasets_train(tmp_path, dataset, reducer, encoding, ansatz):
    m, curve = train(tmp_path, dataset, "--reducer", reducer, "--encoding", encoding, "--ansatz", ansatz)
    features = {"amplitude": 4, "angle": 2, "qubit": 2}[encoding]
    assert m["parameters"]["classical"] == (28 * 28 * features + features if reducer == "fc" else 0) + 2 * 2 + 2
    assert len(curve) == 2 and m["n_test"] == 20


def test_hybrid_cnn_preset_trains(tmp_path):
    for device in ("default.qubit", "qkd.fused"):
        m, _ = train(tmp_path / device, "digits", "--student", "hybrid-cnn", "--device", device)
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
