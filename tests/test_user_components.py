"""A user's own student, teacher and dataset, named by import path on the command line and in grids.

The user package below is written into a temporary folder and put on ``sys.path``, as a user's
module beside their command would be: a PennyLane student factory (2 qubits on default.qubit),
a tiny CNN teacher (an ``nn.Module`` class, which is a factory too) and a loader of 4 classes of
scikit-learn's digits (its train split a pair of tensors, its test split a map-style Dataset).
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from test_cli import assert_one_line_error, invoke

from qkd_pl.cli import cli
from qkd_pl.config import DataConfig, RunConfig, StudentConfig, TeacherConfig
from qkd_pl.data import load_data
from qkd_pl.data.sources import DATASETS, slug
from qkd_pl.errors import QkdError
from qkd_pl.registry import registry
from qkd_pl.students.memory import check_memory, estimate
from qkd_pl.validate import validate

ROOT = Path(__file__).resolve().parents[1]
PKG = "qkd_user_pkg"  # one name for this module's package: the registries keep what they imported
STUDENT, TEACHER, DATA = f"{PKG}.models:make_student", f"{PKG}.models:TinyCNN", f"py:{PKG}.data:load"
SMALL = ["--dataset", DATA, "--classes", "0,1", "--quiet"]

MODELS = '''
import math

import pennylane as qml
from torch import nn


def make_student(image_shape, n_classes):
    """Flattened image -> 2 angles -> a 2-qubit circuit on default.qubit -> <Z> -> a linear head."""
    dev = qml.device("default.qubit", wires=2)

    @qml.qnode(dev, interface="torch")
    def circuit(inputs, weights):
        qml.AngleEmbedding(inputs, wires=range(2))
        qml.BasicEntanglerLayers(weights, wires=range(2))
        return [qml.expval(qml.PauliZ(w)) for w in range(2)]

    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(image_shape), 2), nn.Tanh(),
                         qml.qnn.TorchLayer(circuit, {"weights": (2, 2)}), nn.Linear(2, n_classes))


class TinyCNN(nn.Module):
    def __init__(self, image_shape, n_classes):
        super().__init__()
        c, h, w = image_shape
        self.net = nn.Sequential(nn.Conv2d(c, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                                 nn.Linear(8 * h * w, n_classes))

    def forward(self, x):
        return self.net(x)


def make_linear(image_shape, n_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(image_shape), n_classes))
'''

DATA_PY = '''
import torch

CALLS = []


class Samples(torch.utils.data.Dataset):
    """A map-style dataset of (image (1, 8, 8), int label)."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i].unsqueeze(0), int(self.y[i])


def digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.images / 16.0, dtype=torch.float32)
    y = torch.tensor(bunch.target)
    keep = y < 4
    return x[keep], y[keep]


def load():
    CALLS.append(1)
    x, y = digits()
    return (x[:500], y[:500]), Samples(x[500:], y[500:])  # 8x8 images: (N, H, W) tensors, and samples
'''

BAD = '''
import torch
from torch import nn


def returns_none(image_shape, n_classes):
    return None


def one_argument(image_shape):
    return nn.Linear(1, 1)


def wrong_logits(image_shape, n_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, n_classes + 1))


a_module = nn.Linear(64, 2)


def _images(scale=1.0):
    x = torch.rand(40, 8, 8) * scale
    y = torch.arange(40) % 2
    return x, y


def load_a_number():
    return 5


def load_bytes():
    return _images(255.0), _images(255.0)


def load_float_labels():
    x, y = _images()
    return (x, y.float()), (x, y.float())


def load_mixed_shapes():
    items = [(torch.rand(1, 8, 8), 0), (torch.rand(1, 9, 8), 1)]
    return items, items


def load_other_test_shape():
    return _images(), (torch.rand(40, 9, 9), torch.arange(40) % 2)


def load_raises():
    raise FileNotFoundError("/nowhere/train.npz")
'''


@pytest.fixture(scope="module")
def user_pkg(tmp_path_factory):
    root = tmp_path_factory.mktemp("user")
    pkg = root / PKG
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "models.py").write_text(MODELS)
    (pkg / "data.py").write_text(DATA_PY)
    (pkg / "bad.py").write_text(BAD)
    (pkg / "broken.py").write_text("raise ImportError('the GPU library is missing')\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(root))
        yield root


@pytest.fixture(scope="module")
def runs(user_pkg, tmp_path_factory):
    """A user teacher on the user's dataset, then a user student distilled from it, through the CLI."""
    out = tmp_path_factory.mktemp("runs")
    r = invoke("train-teacher", "--arch", TEACHER, *SMALL, "--epochs", 3, "--lr", 0.01, "--out", out, "--name",
               "teacher")
    assert r.exit_code == 0, r.output
    r = invoke("train-student", "--student", STUDENT, "--teacher", out / "teacher", *SMALL, "--per-class", 40,
               "--epochs", 3, "--lr", 0.05, "--out", out, "--name", "student")
    assert r.exit_code == 0, r.output
    return out


def test_a_user_teacher_and_student_train_on_a_user_dataset(runs):
    teacher = json.loads((runs / "teacher" / "test_metrics.json").read_text())
    student = json.loads((runs / "student" / "test_metrics.json").read_text())
    # two classes (chance 50 %): the CNN reaches 98 % and the 2-qubit student 95-98 % over seeds 0-2
    assert teacher["test_accuracy"] > 0.9 and student["test_accuracy"] > 0.8
    assert (teacher["n_test"], student["n_test"]) == (110, 80)  # the test images of classes 0 and 1; 40 of each
    assert student["parameters"] == {"classical": 64 * 2 + 2 + 2 * 2 + 2, "quantum": 4, "total": 140}
    for result in (teacher, student):
        source = result["data_source"]
        assert source["kind"] == "python" and source["label"] == DATA and len(source["sha256"]) == 64
    assert student["teacher_train_accuracy"] > 0.9
    cfg = json.loads((runs / "student" / "config.json").read_text())
    assert cfg["student"]["arch"] == STUDENT and cfg["data"]["dataset"] == DATA
    assert json.loads((runs / "teacher" / "config.json").read_text())["teacher"]["arch"] == TEACHER


def test_evaluate_rebuilds_user_models_from_their_checkpoints(runs):
    for name in ("teacher", "student"):
        r = invoke("evaluate", runs / name)
        assert r.exit_code == 0, r.output
        trained = json.loads((runs / name / "test_metrics.json").read_text())["test_accuracy"]
        evaluated = json.loads(next((runs / name).glob("evaluation-*.json")).read_text())["test_accuracy"]
        assert evaluated == pytest.approx(trained)


@pytest.mark.slow
def test_a_fresh_process_imports_the_users_modules_again_from_its_working_folder(runs, user_pkg):
    """The run's configuration holds the import paths; a new process, started beside the user's
    package (not on PYTHONPATH), rebuilds the student and reloads the dataset from them."""
    proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "evaluate", str(runs / "student")],
                          capture_output=True, text=True, cwd=user_pkg)
    assert proc.returncode == 0, proc.stderr
    trained = json.loads((runs / "student" / "test_metrics.json").read_text())["test_accuracy"]
    assert f"test accuracy {trained:.4f} (n=80)" in proc.stdout


def test_a_grid_takes_the_same_strings(runs, tmp_path):
    """One distilled cell: the user's student on the user's dataset, from the user's teacher trained above."""
    grid = tmp_path / "grid.toml"
    grid.write_text(textwrap.dedent(f"""
        name = "user"
        seeds = [0]
        [data]
        datasets = ["{DATA}"]
        classes = ["0-1"]
        per_class = 40
        [student]
        arch = ["{STUDENT}"]
        epochs = 3
        lr = 0.05
        [teacher]
        arch = ["{TEACHER}"]
        [teacher.runs."{DATA}"]
        "{TEACHER}" = "{runs / 'teacher'}"
        [distill]
        kd_loss = "hinton-classic"
        """))
    out = tmp_path / "out"
    r = invoke("grid", grid, "--out", out, "--quiet", "--no-report")
    assert r.exit_code == 0, r.output
    rows = json.loads((out / "results.json").read_text())
    assert len(rows) == 1 and rows[0]["student"] == STUDENT and rows[0]["teacher"] == TEACHER
    assert rows[0]["test_accuracy"] > 0.8  # the same run as the CLI's student (seed 0): chance is 50 %


def test_the_dataset_is_loaded_once_and_its_splits_caps_and_source_are_the_built_in_ones(user_pkg):
    name = f"py:{PKG}.data:load"
    cfg = validate(RunConfig("student", data=DataConfig(name, classes=[1, 3], per_class=10),
                             student=StudentConfig(arch=f"{PKG}.models:make_linear")))
    data = load_data(cfg.data)
    import qkd_user_pkg.data as user_data

    assert len(user_data.CALLS) == 1  # validation loaded it; training reused that load (and so does the grid)
    assert DATASETS[name].n_classes == 4 and DATASETS[name].image_shape == (1, 8, 8)
    assert data.x_train.dtype == torch.float32 and data.x_train.shape[1:] == (1, 8, 8)
    assert data.classes == [1, 3] and len(data.y_train) + len(data.y_val) == 20 and len(data.y_test) == 20
    assert 0 <= data.x_train.min() and data.x_train.max() <= 1
    assert data.source["sha256"] and slug(name) == f"py-{PKG}.data-load"


def test_the_data_digest_follows_the_images(user_pkg, tmp_path, monkeypatch):
    """Two loaders of other images (under another name) get another digest, so teacher-logit caches and
    run records tell them apart; the same images give the same digest."""
    (tmp_path / "twin_data.py").write_text(
        "from qkd_user_pkg.data import digits\n"
        "def same():\n    x, y = digits()\n    return (x[:500], y[:500]), (x[500:], y[500:])\n"
        "def flipped():\n    x, y = digits()\n    x = x.flip(-1)\n    return (x[:500], y[:500]), (x[500:], y[500:])\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    digest = {f: DATASETS[f"py:twin_data:{f}"].source(None)["sha256"] for f in ("same", "flipped")}
    assert digest["same"] == DATASETS[f"py:{PKG}.data:load"].source(None)["sha256"] != digest["flipped"]


def test_options_say_a_users_own_may_be_named():
    """Once per option, not per row; --kd-loss too once its registry takes imports (qkd_pl/losses)."""
    options = [("train-student", "--student", "or your own as module.path:name"),
               ("train-teacher", "--arch", "or your own as module.path:name"),
               ("train-student", "--dataset", "py:module.path:function")]
    if "module.path:name" in registry("objective"):
        options.append(("train-student", "--kd-loss", "or your own as module.path:name"))
    for command, option, phrase in options:
        param = next(p for p in cli.commands[command].params if option in p.opts)
        assert param.help.count(phrase) == 1, (option, param.help)
    assert invoke("train-student", "--help").exit_code == 0
    r = invoke("train-student", "--student", "v3", "--quiet")
    assert_one_line_error(r, "'v3' is not one of", "module.path:name")


def test_a_user_student_is_not_held_to_the_circuit_options(user_pkg):
    """--qubits and the rest do not apply to a user's own student: no memory estimate of a circuit
    it does not have (24 qubits would be refused for v2 on any machine here)."""
    student = StudentConfig(arch=STUDENT, qubits=24, encoding="angle", device="lightning.qubit")
    need = estimate(student, None, (1, 8, 8), 32, DataConfig("digits"))
    assert need.steps == {"training step": 0, "evaluation": 0} and need.total < 2 * 2**30
    check_memory(student, None, (1, 8, 8), 32, DataConfig("digits"))
    assert validate(RunConfig("student", data=DataConfig(DATA), student=StudentConfig(arch=STUDENT))).student.arch \
        == STUDENT


def test_circuit_options_that_would_vary_nothing_are_refused_for_a_user_student(user_pkg, tmp_path):
    """A tune or grid axis over --qubits would train the same module again and again."""
    student = StudentConfig(arch=STUDENT, qubits=24, encoding="angle", device="lightning.qubit")
    with pytest.raises(QkdError, match=r"circuit options do not reach \(qubits=24, encoding='angle', "
                                       r"device='lightning.qubit'\)"):
        validate(RunConfig("student", data=DataConfig(DATA), student=student))
    assert_one_line_error(invoke("bench", "--student", STUDENT), "no --device reaches")


def test_validation_leaves_the_random_state_as_it_was(user_pkg):
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    validate(RunConfig("teacher", data=DataConfig(DATA, classes=[0, 2]), teacher=TeacherConfig(TEACHER)))
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("args,needles", [
    (["train-student", "--student", f"{PKG}.broken:make"],
     [f"--student {PKG}.broken:make: module {PKG}.broken does not import (ImportError: the GPU library is missing)"]),
    (["train-student", "--student", f"{PKG}.models:make_studnet"], [f"--student {PKG}.models:make_studnet",
                                                                    "has no 'make_studnet'"]),
    (["train-student", "--student", f"{PKG}.bad:returns_none"],
     [f"--student {PKG}.bad:returns_none: returns_none((1, 8, 8), 10) returned None, not a torch.nn.Module"]),
    (["train-teacher", "--arch", f"{PKG}.bad:returns_none"], [f"--arch {PKG}.bad:returns_none", "returned None"]),
    (["train-teacher", "--arch", f"{PKG}.bad:a_module"], [f"--arch {PKG}.bad:a_module is a torch.nn.Module instance",
                                                         "name a factory"]),
    (["train-student", "--student", f"{PKG}.bad:one_argument"],
     [f"--student {PKG}.bad:one_argument takes (image_shape); it is called as one_argument(image_shape, n_classes)"]),
    (["train-student", "--student", f"{PKG}.bad:wrong_logits"],
     [f"--student {PKG}.bad:wrong_logits: its module maps a batch of 2 images shaped (1, 8, 8) to a tensor shaped "
      f"(2, 11); it must give (2, 10) logits"]),
    (["train-student", "--student", STUDENT, "--classical-control"], [f"--student {STUDENT} is your own module"]),
    (["train-student", "--dataset", f"py:{PKG}.bad:load_a_number"],
     [f"--dataset py:{PKG}.bad:load_a_number: {PKG}.bad:load_a_number() returned an int, not a pair (train, test)"]),
    (["train-student", "--dataset", f"py:{PKG}.bad:load_bytes"],
     [f"--dataset py:{PKG}.bad:load_bytes: the train split has images outside [0, 1]", "bytes / 255"]),
    (["train-student", "--dataset", f"py:{PKG}.bad:load_float_labels"],
     [f"--dataset py:{PKG}.bad:load_float_labels: the train split has float32 labels, not integers"]),
    (["train-student", "--dataset", f"py:{PKG}.bad:load_mixed_shapes"], ["images of mixed shapes (1x8x8 at item 0, "
                                                                         "1x9x8 at item 1)"]),
    (["train-student", "--dataset", f"py:{PKG}.bad:load_other_test_shape"], ["train images are 1x8x8 and test "
                                                                             "images 1x9x9"]),
    (["train-student", "--dataset", f"py:{PKG}.bad:load_raises"],
     [f"--dataset py:{PKG}.bad:load_raises: {PKG}.bad:load_raises() raised FileNotFoundError: /nowhere/train.npz"]),
    (["train-student", "--dataset", f"py:{PKG}.nothing:load"], [f"--dataset py:{PKG}.nothing:load: module "
                                                                f"{PKG}.nothing does not import"]),
    (["train-student", "--dataset", "py"], ["--dataset py needs its loader: --dataset py:module.path:function"]),
    (["train-student", "--kd-loss", f"{PKG}.nothing:Loss", "--teacher", "t"], [f"{PKG}.nothing:Loss"]),
])
def test_a_bad_user_component_is_refused_before_any_work(user_pkg, tmp_path, args, needles):
    r = invoke(*args, "--quiet", "--out", tmp_path / "runs")
    assert_one_line_error(r, *needles)
    assert not (tmp_path / "runs").exists()  # refused before any run folder


def test_the_python_entry_points_refuse_the_same_way(user_pkg):
    with pytest.raises(QkdError, match=rf"--arch {PKG}\.bad:returns_none: returns_none\(\(1, 8, 8\), 10\) returned "
                                       rf"None"):
        validate(RunConfig("teacher", data=DataConfig("digits"), teacher=TeacherConfig(f"{PKG}.bad:returns_none")))
    with pytest.raises(QkdError, match=rf"unknown --student 'v3'; choose one of: v2, hybrid-cnn; or your own"):
        registry("student")["v3"]


def test_a_tune_study_takes_the_same_strings(user_pkg, tmp_path):
    study = tmp_path / "study.toml"
    study.write_text(f"""
name = "user-tune"
trials = 2
seeds = [100]
final_seeds = [0]
[data]
dataset = "{DATA}"
classes = [0, 1]
per_class = 30
[student]
arch = "{STUDENT}"
[train]
epochs = 2
[space]
"train.lr" = {{low = 0.01, high = 0.1, log = true}}
""")
    r = invoke("tune", study, "--out", tmp_path / "o", "--quiet")
    assert r.exit_code == 0, r.output
    finals = list((tmp_path / "o").rglob("test_metrics.json"))
    assert finals and all(json.loads(f.read_text())["parameters"]["quantum"] == 4 for f in finals)
    assert json.loads(finals[0].with_name("config.json").read_text())["student"]["arch"] == STUDENT
