"""--dataset imagefolder:PATH: a user's own images, with the built-in datasets' splits, caps,
normalization, teachers and students; bad folders refused in one line before any work."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from qkd_pl.cli import cli
from qkd_pl.config import DataConfig, RunConfig, StudentConfig
from qkd_pl.data import load_data
from qkd_pl.errors import QkdError
from qkd_pl.validate import validate


def write_folder(root, classes=("cats", "dogs", "owls"), n_train=12, n_test=4):
    """Images of several sizes and modes; each class has its own mean brightness, so it can be learned."""
    rng = np.random.default_rng(0)
    for part, n in (("train", n_train), ("test", n_test)):
        for c, name in enumerate(classes):
            folder = root / part / name
            folder.mkdir(parents=True)
            for i in range(n):
                size = (20 + 7 * (i % 3), 24 + 5 * (i % 2))
                pixels = np.clip(rng.normal(40 + 80 * c, 20, size=(size[1], size[0], 3)), 0, 255).astype(np.uint8)
                image = Image.fromarray(pixels)
                (image.convert("L") if i % 4 == 0 else image).save(folder / f"{i}.{'png' if i % 2 else 'jpg'}")
    return root


def test_an_image_folder_is_a_dataset(tmp_path):
    name = f"imagefolder:{write_folder(tmp_path / 'pets')}"
    cfg = validate(RunConfig("student", data=DataConfig(name, per_class=10), student=StudentConfig()))
    data = load_data(cfg.data)
    assert data.image_shape == (3, 32, 32) and data.n_classes == 3 and data.classes == [0, 1, 2]
    assert len(data.y_train) + len(data.y_val) == 30 and len(data.y_test) == 12  # the cap: 10 of 12 per class
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    assert data.source["label"] == f"image folder {tmp_path / 'pets'}" and data.source["classes"] == ["cats", "dogs",
                                                                                                        "owls"]


def test_a_teacher_and_a_distilled_student_train_on_it(tmp_path):
    name = f"imagefolder:{write_folder(tmp_path / 'pets', n_train=20, n_test=6)}"
    common = ["--dataset", name, "--quiet", "--out", str(tmp_path / "runs")]
    r = CliRunner().invoke(cli, ["train-teacher", *common, "--epochs", "15", "--name", "t"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["train-student", *common, "--epochs", "10", "--qubits", "2", "--reducer", "avgpool",
                                 "--teacher", str(tmp_path / "runs" / "t"), "--name", "s"])
    assert r.exit_code == 0, r.output
    teacher = json.loads((tmp_path / "runs" / "t" / "test_metrics.json").read_text())
    student = json.loads((tmp_path / "runs" / "s" / "test_metrics.json").read_text())
    assert teacher["test_accuracy"] >= 0.9  # three brightness levels: easy for LeNet5
    assert student["n_test"] == 18 and student["data_source"]["classes"] == ["cats", "dogs", "owls"]


def test_default_run_names_are_folder_safe(tmp_path):
    name = f"imagefolder:{write_folder(tmp_path / 'pets')}"
    r = CliRunner().invoke(cli, ["train-student", "--dataset", name, "--epochs", "1", "--qubits", "2", "--quiet",
                                 "--out", str(tmp_path / "runs")])
    assert r.exit_code == 0, r.output
    (folder,) = (tmp_path / "runs").iterdir()
    assert folder.name.startswith("baseline-imagefolder-pets-") and "/" not in folder.name


@pytest.mark.parametrize("damage,needle", [
    (lambda root: __import__("shutil").rmtree(root / "test"), "test is not a folder"),
    (lambda root: [__import__("shutil").rmtree(root / part / c) for part in ("train", "test") for c in ("dogs", "owls")],
     "has 1 class folder(s) with images; a classifier needs two or more"),
    (lambda root: __import__("shutil").rmtree(root / "test" / "owls"), "only in one of them: owls"),
    (lambda root: (root / "train" / "dogs" / "3.png").write_bytes(b"not an image"), "cannot read image"),
])
def test_bad_folders_are_refused_in_one_line(tmp_path, damage, needle):
    root = write_folder(tmp_path / "pets")
    damage(root)
    r = CliRunner().invoke(cli, ["train-student", "--dataset", f"imagefolder:{root}", "--out", str(tmp_path / "runs")])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.output, r.output
    assert needle in r.stderr and not (tmp_path / "runs").exists()


def test_the_family_needs_its_folder():
    with pytest.raises(QkdError, match="needs its folder: --dataset imagefolder:PATH"):
        validate(RunConfig("teacher", data=DataConfig("imagefolder"), teacher=__import__("qkd_pl").config.TeacherConfig()))
