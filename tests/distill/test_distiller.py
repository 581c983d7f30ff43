"""The Distiller on a user's own modules and data: it trains, writes the run folder, resumes to
the bit, tests once, and refuses what it cannot continue."""

import json
import sys
from pathlib import Path

import pennylane as qml
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from qkd_pl import KD, Distiller, TrainConfig
from qkd_pl.errors import QkdError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from own_qnode_student import QNodeStudent  # noqa: E402


def splits(classes=(0, 1, 2), per_class=40):
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    y = torch.tensor(y)
    keep = torch.cat([torch.nonzero(y == c).flatten()[:per_class] for c in classes])
    x, y = x[keep], torch.searchsorted(torch.tensor(classes), y[keep])
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    x, y = x[order], y[order]
    n = len(y) // 4
    return {"train": TensorDataset(x[2 * n:], y[2 * n:]), "val": (x[:n], y[:n]), "test": (x[n:2 * n], y[n:2 * n])}


def linear_teacher(data, epochs=30):
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    x, y = data["train"].tensors
    opt = torch.optim.Adam(teacher.parameters(), lr=0.05)
    for _ in range(epochs):
        opt.zero_grad()
        nn.functional.cross_entropy(teacher(x), y).backward()
        opt.step()
    return teacher


def student(seed=1, qubits=2):
    """A researcher's own student (examples/own_qnode_student.py): linear map to angles, TorchLayer, head."""
    torch.manual_seed(seed)
    return QNodeStudent(n_classes=3, qubits=qubits, layers=1)


def test_a_user_qnode_student_learns_from_a_user_teacher_and_the_run_folder_says_so(tmp_path):
    data = splits()
    teacher = linear_teacher(data)
    distiller = Distiller(teacher=teacher, loss=KD("dkd", temperature=2.0, alpha=0.5, beta=2.0),
                          train=TrainConfig(epochs=6, lr=0.05), progress=False)
    model = student()
    run = distiller.fit(model, data["train"], data["val"], tmp_path / "run")
    score = distiller.test(model, data["test"])
    assert score.accuracy > 0.6  # three classes: chance is 1/3
    assert run.parameters == {"classical": 64 * 2 + 2 + 2 * 3 + 3, "quantum": 6, "total": 145}
    files = {p.name for p in run.run_dir.iterdir()}
    assert {"config.json", "environment.json", "metrics.json", "best.pt", "last.pt", "curves.png",
            "test_metrics.json"} <= files
    config = json.loads((run.run_dir / "config.json").read_text())
    assert config["kind"] == "distiller" and config["student"]["class"] == "own_qnode_student.QNodeStudent"
    assert config["student"]["parameters"]["quantum"] == 6 and len(config["student"]["source_sha256"]) == 64
    loss = config["distiller"]["loss"]
    assert {k: loss[k] for k in ("objective", "temperature", "alpha", "beta")} == {
        "objective": "dkd", "temperature": 2.0, "alpha": 0.5, "beta": 2.0}
    assert config["teacher"]["class"] == "torch.nn.modules.container.Sequential"
    assert config["data"]["train"]["n"] == len(data["train"])
    metrics = json.loads((run.run_dir / "test_metrics.json").read_text())
    assert metrics["test_accuracy"] == score.accuracy and metrics["best_epoch"] == run.best["epoch"]
    assert run.teacher_train_accuracy > 0.8
    assert not any(p.requires_grad for p in teacher.parameters()) and not teacher.training


def test_resume_continues_to_the_same_weights_as_an_uninterrupted_run(tmp_path):
    data = splits()
    full = student()
    Distiller(train=TrainConfig(epochs=4, lr=0.05), progress=False).fit(full, data["train"], data["val"],
                                                                         tmp_path / "a")
    part = student()
    Distiller(train=TrainConfig(epochs=2, lr=0.05), progress=False).fit(part, data["train"], data["val"],
                                                                         tmp_path / "b")
    resumed = student(seed=99)  # a fresh process would build it anew, from other random weights
    run = Distiller(train=TrainConfig(epochs=4, lr=0.05), progress=False).fit(
        resumed, data["train"], data["val"], tmp_path / "b", resume=True)
    assert [r["epoch"] for r in run.history] == [1, 2, 3, 4]
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_what_cannot_be_continued_is_refused_in_one_line(tmp_path):
    data = splits()
    distiller = Distiller(train=TrainConfig(epochs=1, lr=0.05), progress=False)
    distiller.fit(student(), data["train"], data["val"], tmp_path / "r")
    with pytest.raises(QkdError, match="already holds a run; pass resume=True"):
        distiller.fit(student(), data["train"], data["val"], tmp_path / "r")
    with pytest.raises(QkdError, match=r"another structure .*QNodeStudent, 145 parameters.*QNodeStudent \(216\)"):
        distiller.fit(student(qubits=3), data["train"], data["val"], tmp_path / "r", resume=True)
    other = TensorDataset(data["train"].tensors[0].flip(0), data["train"].tensors[1].flip(0))
    with pytest.raises(QkdError, match="other settings or data .*data.train.images_sha256"):
        distiller.fit(student(), other, data["val"], tmp_path / "r", resume=True)
    with pytest.raises(QkdError, match="other settings or data .*distiller.train.lr"):
        Distiller(train=TrainConfig(epochs=2, lr=0.01), progress=False).fit(
            student(), data["train"], data["val"], tmp_path / "r", resume=True)
    with pytest.raises(QkdError, match="transfer set is learnt through the teacher only"):
        distiller.fit(student(), data["train"], data["val"], tmp_path / "t", transfer_set=data["val"][0])
    with pytest.raises(QkdError, match="test needs the run folder of this student"):
        Distiller(progress=False).test(student(), data["test"])
    with pytest.raises(QkdError, match="holds a student of another structure"):
        distiller.test(student(qubits=3), data["test"], tmp_path / "r")


def test_a_transfer_set_enters_through_the_teacher_and_its_labels_are_never_read(tmp_path):
    data = splits()
    teacher = linear_teacher(data)
    x, y = data["train"].tensors
    transfer = TensorDataset(x[:20], torch.full((20,), 10**6))  # labels no class could have: unread

    def fit(labels):
        d = Distiller(teacher=teacher, train=TrainConfig(epochs=1, lr=0.05), transfer_labels=labels, progress=False)
        return d.fit(student(), (x[20:], y[20:]), data["val"], tmp_path / labels, transfer_set=transfer)

    soft, hard = fit("soft"), fit("hard")
    assert soft.history[0]["train_kd"] > 0 and hard.history[0]["train_loss"] != soft.history[0]["train_loss"]


def test_a_plain_callable_loss_and_an_ensemble_of_modules(tmp_path):
    data = splits()
    teachers = [linear_teacher(data, epochs=e) for e in (10, 30)]
    seen = []

    def mse_to_teacher(student_logits, teacher_logits, labels):
        seen.append(len(labels))
        return ((student_logits - teacher_logits) ** 2).mean() + nn.functional.cross_entropy(student_logits, labels)

    d = Distiller(teacher=teachers, loss=mse_to_teacher, train=TrainConfig(epochs=2, lr=0.05), progress=False)
    run = d.fit(student(), data["train"], data["val"], tmp_path / "e")
    assert sum(seen) == 2 * len(data["train"])
    assert json.loads((run.run_dir / "config.json").read_text())["distiller"]["loss"]["callable"].endswith(
        "mse_to_teacher")


class Pairs(Dataset):
    """A map-style dataset of (image, label) pairs, as torchvision's are."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


def test_map_style_datasets_equal_the_same_tensors(tmp_path):
    data = splits()
    x, y = data["train"].tensors
    a = Distiller(train=TrainConfig(epochs=2, lr=0.05), progress=False).fit(
        student(), Pairs(x, y), Pairs(*data["val"]), tmp_path / "a")
    b = Distiller(train=TrainConfig(epochs=2, lr=0.05), progress=False).fit(
        student(), (x, y), data["val"], tmp_path / "b")
    assert [r["val_accuracy"] for r in a.history] == [r["val_accuracy"] for r in b.history]
    assert [r["train_loss"] for r in a.history] == [r["train_loss"] for r in b.history]


def test_a_module_teachers_logits_follow_its_weights_and_a_changed_teacher_is_not_resumed(tmp_path):
    data = splits()
    teacher = linear_teacher(data)
    d = Distiller(teacher=teacher, train=TrainConfig(epochs=1, lr=0.05), progress=False)
    first = d.fit(student(), data["train"], data["val"], tmp_path / "a")
    with torch.no_grad():
        teacher[1].weight.neg_()  # the same object, other weights: no logits of the old ones may be served
    second = Distiller(teacher=teacher, train=TrainConfig(epochs=1, lr=0.05), progress=False).fit(
        student(), data["train"], data["val"], tmp_path / "b")
    assert first.teacher_train_accuracy > 0.8 > second.teacher_train_accuracy
    with pytest.raises(QkdError, match="other settings or data .*teacher.sha256"):
        Distiller(teacher=teacher, train=TrainConfig(epochs=2, lr=0.05), progress=False).fit(
            student(), data["train"], data["val"], tmp_path / "a", resume=True)


def test_test_scores_each_student_on_its_own_run(tmp_path):
    data = splits()
    d = Distiller(train=TrainConfig(epochs=1, lr=0.05), progress=False)
    one, two = student(seed=1), student(seed=2)
    d.fit(one, data["train"], data["val"], tmp_path / "one")
    d.fit(two, data["train"], data["val"], tmp_path / "two")
    weights_of_one = {k: v.clone() for k, v in one.state_dict().items()}
    d.test(one, data["test"])
    assert (tmp_path / "one" / "test_metrics.json").is_file() and not (tmp_path / "two" / "test_metrics.json").exists()
    assert all(torch.equal(v, one.state_dict()[k]) for k, v in weights_of_one.items())


def test_overwrite_empties_a_run_folder_and_nothing_else(tmp_path):
    data = splits()
    d = Distiller(train=TrainConfig(epochs=1, lr=0.05), progress=False)
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(QkdError, match="not empty and holds no qkd-pl run; choose another run_dir$"):
        d.fit(student(), data["train"], data["val"], mine, overwrite=True)
    assert (mine / "thesis.tex").read_text() == "years of work"
    d.fit(student(), data["train"], data["val"], tmp_path / "run")
    (tmp_path / "run" / "stale.txt").write_text("from the first run")
    d.fit(student(), data["train"], data["val"], tmp_path / "run", overwrite=True)
    assert not (tmp_path / "run" / "stale.txt").exists()


def test_bad_input_is_refused_before_the_run_folder_exists(tmp_path):
    data = splits()
    x, y = data["train"].tensors
    d = Distiller(train=TrainConfig(epochs=1), progress=False)
    cases = [
        (lambda: d.fit(student(), (x, y + 5), data["val"], tmp_path / "r"), "at least 8 classes"),
        (lambda: d.fit(student(), data["train"], (x[:0], y[:0]), tmp_path / "r"), "val_set is empty"),
        (lambda: d.fit(nn.Flatten(), data["train"], data["val"], tmp_path / "r"), "no trainable parameters"),
        (lambda: d.fit(student(), (x[:, :, :4], y), data["val"], tmp_path / "r"), "val_set's images are"),
        (lambda: d.fit(student(), (x[..., :4], y), (data["val"][0][..., :4], data["val"][1]), tmp_path / "r"),
         "fails on two training images of shape \\(1, 8, 4\\)"),
        (lambda: Distiller(train=TrainConfig(batch_size=0)), "train.batch_size"),
        (lambda: Distiller(train=TrainConfig(optimizer="adamm")), "train.optimizer"),
        (lambda: Distiller(loss=lambda s, t, y: s.sum()), "a loss function reads teacher logits"),
    ]
    for call, needle in cases:
        with pytest.raises(QkdError, match=needle):
            call()
        assert not (tmp_path / "r").exists(), needle


def test_resuming_with_fewer_epochs_than_trained_is_refused(tmp_path):
    data = splits()
    Distiller(train=TrainConfig(epochs=2, lr=0.05), progress=False).fit(student(), data["train"], data["val"], tmp_path)
    with pytest.raises(QkdError, match="trained 2 epochs already; resume it with epochs of at least 2"):
        Distiller(train=TrainConfig(epochs=1, lr=0.05), progress=False).fit(
            student(), data["train"], data["val"], tmp_path, resume=True)


def test_a_teacher_run_folder_is_cached_by_its_checkpoint(tmp_path, monkeypatch, capsys):
    from qkd_pl.config import DataConfig, RunConfig, TeacherConfig
    from qkd_pl.experiments import train_teacher

    monkeypatch.setenv("QKD_CACHE_DIR", str(tmp_path / "cache"))
    teacher = train_teacher(RunConfig("teacher", data=DataConfig("digits", classes=[0, 1, 2]),
                                      train=TrainConfig(epochs=2, lr=3e-3), teacher=TeacherConfig("lenet5")),
                            tmp_path, progress=False)
    data = splits()
    runs = [Distiller(teacher=teacher.run_dir, train=TrainConfig(epochs=1, lr=0.05)).fit(
        student(), data["train"], data["val"], tmp_path / f"s{i}") for i in range(2)]
    out = capsys.readouterr().out
    assert "logits computed once" in out and "cached logits" in out
    assert runs[0].teacher_train_accuracy == runs[1].teacher_train_accuracy > 0.5
    config = json.loads((runs[0].run_dir / "config.json").read_text())
    assert config["teacher"]["path"].endswith("best.pt") and len(config["teacher"]["sha256"]) == 64


def test_commands_and_teachers_that_cannot_rebuild_a_distiller_run_say_so(tmp_path):
    from click.testing import CliRunner

    from qkd_pl.cli.app import cli

    data = splits()
    Distiller(train=TrainConfig(epochs=1, lr=0.05), progress=False).fit(student(), data["train"], data["val"], tmp_path)
    for command in (["evaluate", str(tmp_path)], ["finetune", str(tmp_path), "--noise", "fake_manila"]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 2 and "trained by the Python API's Distiller" in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    with pytest.raises(QkdError, match="pass the module as the teacher"):
        Distiller(teacher=tmp_path)


class CallsItsQNode(nn.Module):
    """A student that calls its QNode itself, with its own weights: no TorchLayer to find."""

    def __init__(self):
        super().__init__()

        @qml.qnode(qml.device("default.qubit", wires=2), interface="torch")
        def circuit(inputs, weights):
            qml.AngleEmbedding(inputs, wires=range(2))
            qml.StronglyEntanglingLayers(weights, wires=range(2))
            return [qml.expval(qml.PauliZ(i)) for i in range(2)]

        self.circuit = circuit
        self.reduce = nn.Linear(64, 2)
        self.weights = nn.Parameter(torch.rand(1, 2, 3))
        self.head = nn.Linear(2, 3)

    def forward(self, x):
        z = self.circuit(self.reduce(x.flatten(1)), self.weights)
        return self.head(torch.stack(z, dim=-1).float())


def test_the_weights_a_student_hands_its_own_qnode_count_as_quantum(tmp_path):
    data = splits()
    torch.manual_seed(0)
    run = Distiller(train=TrainConfig(epochs=1, lr=0.05), progress=False).fit(
        CallsItsQNode(), data["train"], data["val"], tmp_path)
    assert run.parameters == {"classical": 130 + 9, "quantum": 6, "total": 145}
    assert json.loads((tmp_path / "config.json").read_text())["student"]["parameters"]["quantum"] == 6
