"""qkd finetune: a trained student's circuit and head trained on under a fake backend's noise."""

import json

import pytest
import torch
from click.testing import CliRunner

from qkd_pl.cli import cli
from qkd_pl.training import load_checkpoint


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    out = tmp_path_factory.mktemp("ft")
    r = CliRunner().invoke(cli, ["train-student", "--dataset", "digits", "--classes", "0-3", "--qubits", "3",
                                 "--epochs", "3", "--quiet", "--out", str(out), "--name", "s"])
    assert r.exit_code == 0, r.output
    return out / "s"


@pytest.mark.slow
def test_finetune_trains_the_circuit_and_head_under_noise_and_reports_before_and_after(student):
    r = CliRunner().invoke(cli, ["finetune", str(student), "--noise", "fake_manila", "--epochs", "2", "--lr", "0.05",
                                 "--quiet"])
    assert r.exit_code == 0, r.output
    run = student / "finetune-fake_manila"
    report = json.loads((run / "finetune.json").read_text())
    assert report["device"] == "noisy:fake_manila" and report["shots"] == 1024
    exact = json.loads((student / "test_metrics.json").read_text())["test_accuracy"]
    before = json.loads((run / "evaluations" / "source-noisy.json").read_text())
    assert abs(report["exact_accuracy"] - exact) < 1e-6 and report["noisy_before"] == before["accuracy"]
    assert before["device"] == "noisy:fake_manila" and before["shots"] == 1024 and before["n"] == report["n_test"]
    drop, gain = report["drop"], report["gain"]
    assert abs(drop["mean"] - (report["exact_accuracy"] - report["noisy_before"])) < 1e-9
    assert abs(gain["mean"] - (report["noisy_after"] - report["noisy_before"])) < 1e-9
    assert drop["low"] <= drop["mean"] <= drop["high"] and gain["low"] <= gain["mean"] <= gain["high"]
    # each accuracy printed says which weights, where and on how many images
    assert (f"test accuracy on {report['n_test']} test images: the starting weights {report['exact_accuracy']:.4f} "
            f"on the exact simulator and {report['noisy_before']:.4f} on noisy:fake_manila; the fine-tuned weights "
            f"{report['noisy_after']:.4f} on noisy:fake_manila") in r.output
    assert report["drop_device_noise"]["n"] == report["drop_shots"]["n"] == report["n_test"]
    no_shots = json.loads((run / "evaluations" / "source-noisy-no-shots.json").read_text())
    assert no_shots["shots"] is None and no_shots["device"] == "noisy:fake_manila"
    source = load_checkpoint(student / "best.pt")["state_dict"]
    last = load_checkpoint(run / "last.pt")["state_dict"]
    best = load_checkpoint(run / "best.pt")
    for name in source:  # the front end stayed; the circuit and head learned (lr 0.05, two epochs)
        same = torch.equal(source[name], last[name])
        assert same == name.startswith(("standardize", "reduce", "prepare")), name
    history = json.loads((run / "metrics.json").read_text())
    assert report["val_after"] == max(report["val_before"], *(h["val_accuracy"] for h in history))
    if report["best_epoch"] == 0:  # selection kept the starting weights
        assert all(torch.equal(best["state_dict"][k], source[k]) for k in source)
    assert best["config"]["student"]["device"] == "noisy:fake_manila"
    control = load_checkpoint(student / "finetune-fake_manila-exact" / "best.pt")
    assert control["config"]["student"]["device"] == load_checkpoint(student / "best.pt")["config"]["student"]["device"]
    assert report["control_run"].endswith("finetune-fake_manila-exact")
    over = report["over_control"]
    assert abs(over["mean"] - (report["noisy_after"] - report["control_noisy_after"])) < 1e-9


def test_finetune_refuses_what_has_no_circuit_to_tune(tmp_path):
    r = CliRunner().invoke(cli, ["train-student", "--dataset", "digits", "--classes", "0-1", "--qubits", "2",
                                 "--epochs", "1", "--quiet", "--classical-control", "--out", str(tmp_path), "--name", "c"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["finetune", str(tmp_path / "c"), "--noise", "fake_manila"])
    assert r.exit_code == 2 and "v2 quantum student" in r.stderr and "\n" not in r.stderr.strip()
    r = CliRunner().invoke(cli, ["finetune", str(tmp_path / "c"), "--noise", "ibm_brisbane"])
    assert r.exit_code == 2 and "\n" not in r.stderr.strip()


def test_unknown_noise_backend_is_refused_before_any_work(student):
    r = CliRunner().invoke(cli, ["finetune", str(student), "--noise", "fake_nowhere"])
    assert r.exit_code == 2 and "unknown IBM fake backend 'fake_nowhere'" in r.stderr
    assert not (student / "finetune-fake_nowhere").exists()


@pytest.mark.slow
def test_finetune_on_a_subset_is_tested_on_the_sources_images_and_leaves_the_rest_of_the_test_split_alone(student):
    r = CliRunner().invoke(cli, ["finetune", str(student), "--noise", "fake_manila", "--epochs", "1", "--per-class",
                                 "20", "--test-images", "100", "--no-control", "--name", "subset", "--quiet"])
    assert r.exit_code == 0, r.output
    run = student / "subset"
    report = json.loads((run / "finetune.json").read_text())
    assert report["n_test"] == 100 and report["drop"]["n"] == report["gain"]["n"] == 100
    correct = {}
    for name in ("source-exact", "source-noisy", "finetuned-noisy", "source-noisy-no-shots", "source-aer-noiseless"):
        correct[name] = json.loads((run / "evaluations" / f"{name}.json").read_text())["correct"]
        assert len(correct[name]) == 100, name
    assert not (run / "test_metrics.json").exists()  # no look at the other test images
    selection = json.loads((run / "selection.json").read_text())
    assert selection["start_val_accuracy"] == report["val_before"]
    cfg = load_checkpoint(run / "best.pt")["config"]
    # fewer training images, the source's test split (a capped one would differ from image 64 on)
    assert cfg["data"]["per_class"] == 20 and cfg["data"]["full_test"] and cfg["student"]["device"] == "noisy:fake_manila"
    assert len(json.loads((run / "metrics.json").read_text())) == 1
    if report["best_epoch"] == 0:  # the starting weights kept: after is before, image for image, up to shot noise
        assert sum(a != b for a, b in zip(correct["finetuned-noisy"], correct["source-noisy"])) <= 10


def test_finetune_refuses_a_subset_of_a_source_whose_test_split_is_capped(tmp_path):
    r = CliRunner().invoke(cli, ["train-student", "--dataset", "digits", "--classes", "0-1", "--qubits", "2",
                                 "--epochs", "1", "--per-class", "30", "--quiet", "--out", str(tmp_path), "--name", "c"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["finetune", str(tmp_path / "c"), "--noise", "fake_manila", "--per-class", "10"])
    assert r.exit_code == 2 and "test split is capped too" in r.stderr and "\n" not in r.stderr.strip()
    assert not (tmp_path / "c" / "finetune-fake_manila").exists()


@pytest.mark.slow
def test_a_finetuning_does_not_resume_from_a_retrained_source(tmp_path):
    def train(epochs):
        r = CliRunner().invoke(cli, ["train-student", "--dataset", "digits", "--classes", "0-1", "--qubits", "2",
                                     "--epochs", str(epochs), "--quiet", "--out", str(tmp_path), "--name", "s",
                                     "--overwrite"])
        assert r.exit_code == 0, r.output

    def finetune(*extra):
        return CliRunner().invoke(cli, ["finetune", str(tmp_path / "s"), "--noise", "fake_manila", "--epochs", "1",
                                        "--no-control", "--test-images", "20", "--quiet", "--out", str(tmp_path / "ft"),
                                        *extra])

    train(1)
    r = finetune()
    assert r.exit_code == 0, r.output
    train(2)  # other weights at the same path (the fine-tuning lives elsewhere, and stays)
    assert (tmp_path / "ft" / "finetune-fake_manila" / "start.json").exists()
    r = finetune("--resume")
    assert r.exit_code == 2 and "began from other weights" in r.stderr and "\n" not in r.stderr.strip()
    assert finetune("--overwrite").exit_code == 0
