"""The Distiller on a user's own modules and data: it trains, writes the run folder, resumes to
the bit, tests once, and refuses what it cannot continue."""

import json

import pennylane as qml
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from qkd_pl import KD, Distiller, TrainConfig
from qkd_pl.errors import QkdError


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


class CircuitStudent(nn.Module):
    """A researcher's own student: a linear map to angles, a TorchLayer, a linear head."""

    def __init__(self, n_classes=3, qubits=2, device="qkd.fused"):
        super().__init__()
        dev = qml.device(device, wires=qubits)

        @qml.qnode(dev, interface="torch")
        def circuit(inputs, weights):
            qml.AngleEmbedding(inputs, wires=range(qubits))
            qml.StronglyEntanglingLayers(weights, wires=range(qubits))
            return [qml.expval(qml.PauliZ(i)) for i in range(qubits)]

        self.reduce = nn.Linear(64, qubits)
        self.circuit = qml.qnn.TorchLayer(circuit, {"weights": (1, qubits, 3)})
        self.head = nn.Linear(qubits, n_classes)

    def forward(self, x):
        return self.head(self.circuit(torch.pi * torch.tanh(self.reduce(x.flatten(1)))))


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


def student(seed=1, **kw):
    torch.manual_seed(seed)
    return CircuitStudent(**kw)


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
    assert config["kind"] == "distiller" and config["student"]["class"].endswith("CircuitStudent")
    assert config["student"]["parameters"]["quantum"] == 6 and len(config["student"]["source_sha256"]) == 64
    assert config["distiller"]["loss"] == {"objective": "dkd", "temperature": 2.0, "alpha": 0.5, "beta": 2.0}
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
    with pytest.raises(QkdError, match=r"another structure .*CircuitStudent, 145 parameters.*CircuitStudent \(216\)"):
        distiller.fit(student(qubits=3), data["train"], data["val"], tmp_path / "r", resume=True)
    other = TensorDataset(data["train"].tensors[0].flip(0), data["train"].tensors[1].flip(0))
    with pytest.raises(QkdError, match="other settings or data .*data.train.images_sha256"):
        distiller.fit(student(), other, data["val"], tmp_path / "r", resume=True)
    with pytest.raises(QkdError, match="other settings or data .*distiller.train.lr"):
        Distiller(train=TrainConfig(epochs=2, lr=0.01), progress=False).fit(
            student(), data["train"], data["val"], tmp_path / "r", resume=True)
    with pytest.raises(QkdError, match="transfer set is learnt through the teacher only"):
        distiller.fit(student(), data["train"], data["val"], tmp_path / "t", transfer_set=data["val"][0])
    with pytest.raises(QkdError, match="test needs a run folder"):
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
