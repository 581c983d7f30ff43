"""Ensemble teachers through the CLI, and teacher logits computed once per checkpoint and data."""

import json

import pytest
import torch
from click.testing import CliRunner

from qkd_pl.cli import cli
from qkd_pl.config import DataConfig
from qkd_pl.teachers import build_teacher
from qkd_pl.distill.teacher_cache import teacher_logits
from qkd_pl.training import predict_logits

DATA = ["--classes", "0-3", "--per-class", "30", "--quiet"]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    out = tmp_path_factory.mktemp("teachers")
    for arch in ("lenet5", "mobilenet_v3_small"):
        r = invoke("train-teacher", "--arch", arch, *DATA, "--epochs", 1, "--out", out, "--name", arch)
        assert r.exit_code == 0, r.output
    return out


def test_an_ensemble_is_assembled_tested_and_distilled_from(teachers, tmp_path):
    r = invoke("train-teacher", "--arch", "ensemble", "--members", f"{teachers / 'lenet5'},{teachers / 'mobilenet_v3_small'}",
               *DATA, "--out", tmp_path, "--name", "ens")
    assert r.exit_code == 0, r.output
    test = json.loads((tmp_path / "ens" / "test_metrics.json").read_text())
    assert test["best_epoch"] == 0
    r = invoke("train-student", *DATA, "--epochs", 1, "--qubits", 2, "--out", tmp_path, "--name", "s",
               "--teacher", tmp_path / "ens")
    assert r.exit_code == 0, r.output
    from qkd_pl.experiments.single.train import load_model

    model, cfg, _ = load_model(tmp_path / "ens")  # rebuilt from its checkpoint alone
    assert cfg.teacher.arch == "ensemble" and len(model.members) == 2
    # its test accuracy is that of the averaged member logits, not of either member
    from qkd_pl.data import load_data
    from qkd_pl.training import predict_logits

    data = load_data(cfg.data)
    members = [load_model(teachers / name)[0] for name in ("lenet5", "mobilenet_v3_small")]
    averaged = sum(predict_logits(m, data.x_test) for m in members) / 2
    assert test["test_accuracy"] == pytest.approx((averaged.argmax(1) == data.y_test).float().mean().item())


def test_ensemble_mistakes_are_refused(teachers, tmp_path):
    r = invoke("train-teacher", "--arch", "ensemble", "--members", teachers / "lenet5", *DATA, "--out", tmp_path)
    assert r.exit_code == 2 and "two or more" in r.stderr
    r = invoke("train-teacher", "--members", teachers / "lenet5", *DATA, "--out", tmp_path)
    assert r.exit_code == 2 and "--members goes with --arch ensemble" in r.stderr
    r = invoke("train-teacher", "--classes", "0-5", "--per-class", "30", "--epochs", 1, "--quiet", "--out", tmp_path,
               "--name", "other")
    assert r.exit_code == 0
    r = invoke("train-teacher", "--arch", "ensemble", "--members", f"{teachers / 'lenet5'},{tmp_path / 'other'}",
               *DATA, "--out", tmp_path)
    assert r.exit_code == 2 and "other data" in r.stderr


def test_students_record_their_teacher_and_reuse_its_cached_logits(teachers, tmp_path):
    outputs = []
    for seed in (0, 1):
        r = invoke("train-student", *DATA[:-1], "--epochs", 1, "--qubits", 2, "--seed", seed, "--out", tmp_path,
                   "--name", f"s{seed}", "--teacher", teachers / "lenet5")
        assert r.exit_code == 0, r.output
        outputs.append(r.output)
    assert "logits computed once" in outputs[0] and "cached logits" in outputs[1]
    test = json.loads((tmp_path / "s1" / "test_metrics.json").read_text())
    assert test["teacher_checkpoint"].endswith("best.pt") and len(test["teacher_sha256"]) == 64


def test_the_cache_key_is_the_checkpoint_data_and_split(tmp_path):
    teacher = build_teacher("lenet5", (1, 8, 8), 3, torch.zeros(1), torch.ones(1)).eval()
    x = torch.rand(10, 1, 8, 8)
    data = DataConfig("digits", classes=[0, 1, 2])
    first, hit = teacher_logits(teacher, "a" * 64, data, "train", x, tmp_path)
    assert not hit and torch.equal(first, predict_logits(teacher, x))
    again, hit = teacher_logits(teacher, "a" * 64, data, "train", x, tmp_path)
    assert hit and torch.equal(again, first)
    for sha, cfg, split in (("b" * 64, data, "train"), ("a" * 64, DataConfig("digits"), "train"),
                            ("a" * 64, data, "val")):
        assert not teacher_logits(teacher, sha, cfg, split, x, tmp_path)[1]
    for f in tmp_path.glob("*.pt"):  # a damaged cache file is recomputed, not trusted
        f.write_bytes(b"garbage")
    assert not teacher_logits(teacher, "a" * 64, data, "train", x, tmp_path)[1]
