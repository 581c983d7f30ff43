"""The compact CNN teacher: its size, that its training recipe learns, and that augmentation
stays on the teacher's side (the logits a student distils from are of the images as they are)."""

import json

import torch
from click.testing import CliRunner

from qkd_pl.cli import cli
from qkd_pl.config import DataConfig
from qkd_pl.data import load_data
from qkd_pl.experiments.single.train import load_model
from qkd_pl.teachers import build_teacher
from qkd_pl.distill.teacher_cache import cache_dir, teacher_logits
from qkd_pl.training import predict_logits
from qkd_pl.training.checkpoint import read_checkpoint

RECIPE = ["--optimizer", "sgd", "--lr", "0.05", "--weight-decay", "5e-4", "--schedule", "onecycle",
          "--augment", "crop-flip", "--batch-size", "64"]


def test_size_at_cifar_shape():
    model = build_teacher("compact-cnn", (3, 32, 32), 10, torch.zeros(3), torch.ones(3))
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 64, 128, 128, 256, 256]
    assert 1.1e6 < sum(p.numel() for p in model.parameters()) < 1.2e6


def test_the_recipe_learns_and_students_distil_from_unaugmented_images(tmp_path):
    data_args = ["--classes", "0-4", "--quiet"]
    r = CliRunner().invoke(cli, ["train-teacher", "--arch", "compact-cnn", *RECIPE, *data_args, "--epochs", "6",
                                 "--out", str(tmp_path), "--name", "t"])
    assert r.exit_code == 0, r.output
    test = json.loads((tmp_path / "t" / "test_metrics.json").read_text())
    assert test["test_accuracy"] > 0.85  # 5 digit classes (chance 0.2), 6 epochs of shifted and mirrored 8x8 digits
    saved = json.loads((tmp_path / "t" / "config.json").read_text())["train"]
    assert (saved["optimizer"], saved["schedule"], saved["augment"]) == ("sgd", "onecycle", "crop-flip")

    r = CliRunner().invoke(cli, ["train-student", "--qubits", "2", *data_args, "--epochs", "1", "--out",
                                 str(tmp_path), "--name", "s", "--teacher", str(tmp_path / "t")])
    assert r.exit_code == 0, r.output
    teacher, cfg, _ = load_model(tmp_path / "t")
    data = load_data(DataConfig("digits", classes=[0, 1, 2, 3, 4]))
    sha = read_checkpoint(tmp_path / "t" / "best.pt")[1]
    cached, hit = teacher_logits(teacher, sha, cfg.data, "train", data.x_train, cache_dir())
    assert hit  # what the student used
    assert torch.allclose(cached, predict_logits(teacher, data.x_train), atol=1e-5)


def test_augment_is_an_option_of_teachers_and_students():
    for command in ("train-teacher", "train-student"):
        assert "--augment" in CliRunner().invoke(cli, [command, "--help"]).output
    r = CliRunner().invoke(cli, ["train-student", "--augment", "flip"])
    assert r.exit_code == 2 and "'flip' is not one of" in r.output
