"""The transfer set: which images it holds, that only a distilled student sees it, and how it
enters the loss (the teacher's soft outputs, or its top class as a label)."""

import hashlib
import json

import numpy as np
import pytest
import torch

from qkd_pl.config import DataConfig, DistillConfig, RunConfig, StudentConfig, TeacherConfig, TrainConfig
from qkd_pl.data.bundle import load_transfer, split_of, transfer_indices
from qkd_pl.data.sources import data_root, load_split
from qkd_pl.errors import QkdError
from qkd_pl.experiments import train_student, train_teacher
from qkd_pl.experiments.single import train as train_module
from qkd_pl.distill import distiller as distiller_module
from qkd_pl.validate import validate

DATA = DataConfig("digits", classes=[0, 1, 2], per_class=20)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    cfg = RunConfig("teacher", data=DataConfig("digits", classes=[0, 1, 2]), train=TrainConfig(epochs=2, lr=1e-3),
                    teacher=TeacherConfig("lenet5"))
    return train_teacher(cfg, tmp_path_factory.mktemp("t"), progress=False).run_dir


def student(teacher=None, **distill) -> RunConfig:
    return RunConfig("student", data=DATA, train=TrainConfig(epochs=1), student=StudentConfig(qubits=2),
                     distill=DistillConfig(teacher=str(teacher) if teacher else None, **distill))


def test_the_transfer_set_is_the_rest_of_the_train_part():
    fit, val, test = split_of(DATA)
    whole_fit, whole_val, _ = split_of(DataConfig("digits", classes=[0, 1, 2]))
    rest = transfer_indices(DATA, "unlabeled")
    assert set(rest) == set(whole_fit) - set(fit) and set(rest).isdisjoint(whole_val)
    some = transfer_indices(DATA, "5")
    _, y = load_split("digits", data_root(), True)
    assert set(some) <= set(rest) and np.bincount(y.numpy()[some]).tolist() == [5, 5, 5]


@pytest.mark.parametrize("cfg,needle", [
    (student(transfer="unlabeled"), "needs --teacher: transfer images have no labels"),
    (RunConfig("student", data=DataConfig("digits"), student=StudentConfig(),
               distill=DistillConfig(teacher="t", transfer="10")), "needs --per-class N and --split nested"),
    (RunConfig("student", data=DataConfig("digits", per_class=20, split="capped"), student=StudentConfig(),
               distill=DistillConfig(teacher="t", transfer="10")), "needs --per-class N and --split nested"),
    (student(transfer="many"), "--transfer 'many': write none, unlabeled, or a number"),
    (student(transfer="0"), "--transfer '0'"),
])
def test_impossible_transfer_sets_are_refused(cfg, needle):
    with pytest.raises(QkdError, match=needle):
        validate(cfg)


def spy_on_fit(monkeypatch):
    """Each call of the training loop: its rows, and the masks every batch's loss received."""
    calls = []
    real = distiller_module.train_loop

    def spy(model, rows, val, cfg, loss_fn, *a, **k):
        masks = []

        def loss_spy(logits, y, t, hard, soft):
            masks.append((hard.clone() if hard is not None else None, soft.clone() if soft is not None else None))
            return loss_fn(logits, y, t, hard, soft)

        calls.append({"rows": rows, "masks": masks})
        return real(model, rows, val, cfg, loss_spy, *a, **k)

    monkeypatch.setattr(distiller_module, "train_loop", spy)
    return calls


def test_a_baseline_never_loads_or_sees_a_transfer_set(tmp_path, monkeypatch):
    calls = spy_on_fit(monkeypatch)
    monkeypatch.setattr(train_module, "load_transfer", lambda *a: pytest.fail("a baseline loaded a transfer set"))
    train_student(student(), tmp_path, progress=False)
    rows = calls[0]["rows"]
    assert rows.teacher is None and rows.n_labelled is None and len(rows) == 3 * 16


@pytest.mark.parametrize("labels", ["soft", "hard"])
def test_a_distilled_student_trains_on_its_images_and_the_teachers_view_of_the_transfer_set(
        teacher, tmp_path, monkeypatch, labels):
    calls = spy_on_fit(monkeypatch)
    result = train_student(student(teacher, transfer="unlabeled", transfer_labels=labels), tmp_path, progress=False)
    rows = calls[0]["rows"]
    n_labelled = 3 * 16  # 20 per class, 16 of them in the train part
    x_transfer, logits = rows.x[n_labelled:], rows.teacher[n_labelled:]
    n_rest = len(transfer_indices(DATA, "unlabeled"))
    assert rows.n_labelled == n_labelled and len(x_transfer) == len(logits) == n_rest > 0
    teacher_model, _, _ = train_module.load_model(teacher)
    assert torch.allclose(logits, teacher_model(x_transfer), atol=1e-5)
    assert torch.equal(rows.y[n_labelled:], logits.argmax(1))  # a transfer row's label is the teacher's top class
    losses = calls[0]["masks"]
    metrics = json.loads((result.run_dir / "test_metrics.json").read_text())
    assert metrics["transfer_images"] == n_rest
    hard = torch.cat([h for h, _ in losses])
    soft = torch.cat([s for _, s in losses])
    n_labelled = 3 * 16  # 20 per class, 16 of them in the train part
    assert len(hard) == n_labelled + n_rest  # one epoch: every labelled and every transfer image once
    if labels == "soft":
        assert hard.sum() == n_labelled and soft.all()
    else:
        assert hard.all() and soft.sum() == n_labelled
    history = json.loads((result.run_dir / "metrics.json").read_text())
    assert 0 <= history[0]["train_accuracy"] <= 1  # of the labelled images


def test_the_ceiling_trains_on_the_pool_with_its_true_labels_and_no_teacher(tmp_path, monkeypatch):
    calls = spy_on_fit(monkeypatch)
    result = train_student(student(transfer="5", transfer_labels="true"), tmp_path, progress=False)
    rows = calls[0]["rows"]
    n_labelled = 3 * 16
    pool = transfer_indices(DATA, "5")
    _, y = load_split("digits", data_root(), True)
    assert rows.teacher is None and len(rows) == n_labelled + len(pool)
    assert torch.equal(rows.y[n_labelled:], y[torch.as_tensor(pool)])  # classes 0-2 keep their labels
    metrics = json.loads((result.run_dir / "test_metrics.json").read_text())
    assert metrics["transfer_images"] == 15 and "teacher_sha256" not in metrics


@pytest.mark.slow
def test_a_teacher_trained_without_the_pool_is_recorded_as_never_having_seen_it(tmp_path):
    cfg = RunConfig("teacher", data=DataConfig("digits", classes=[0, 1, 2], without_pool="20:5"),
                    train=TrainConfig(epochs=1, lr=1e-3), teacher=TeacherConfig("lenet5"))
    unseen = train_teacher(cfg, tmp_path, progress=False).run_dir
    result = train_student(student(unseen, transfer="5"), tmp_path, progress=False)
    seen = json.loads((result.run_dir / "test_metrics.json").read_text())["teacher_data"]
    assert seen["pool_images"] == 15 and seen["pool_images_seen"] == 0
    with pytest.warns(UserWarning, match="--without-pool 20:5, yet saw 6 of this student's 21 transfer images"):
        other = train_student(student(unseen, transfer="7"), tmp_path, progress=False)  # its pool: 5 of 7 per class
    assert json.loads((other.run_dir / "test_metrics.json").read_text())["teacher_data"]["pool_images_seen"] == 6


def test_a_pool_that_leaves_no_image_is_refused_before_the_run_folder(tmp_path):
    cfg = RunConfig("student", data=DataConfig("digits", classes=[0, 1, 2], per_class=200), train=TrainConfig(epochs=1),
                    student=StudentConfig(qubits=2), distill=DistillConfig(transfer="5", transfer_labels="true"))
    with pytest.raises(QkdError, match="none is left for a transfer set"):
        train_student(cfg, tmp_path, name="w", progress=False)
    assert not (tmp_path / "w").exists()


def image_digests(x: torch.Tensor) -> set[str]:
    return {hashlib.sha256(row.contiguous().numpy().tobytes()).hexdigest() for row in x}


@pytest.mark.parametrize("without_pool", [None, "20:5"])
def test_the_pool_is_among_the_teachers_training_rows_only_when_it_was_not_left_out(tmp_path, monkeypatch,
                                                                               without_pool):
    calls = spy_on_fit(monkeypatch)
    cfg = RunConfig("teacher", data=DataConfig("digits", classes=[0, 1, 2], without_pool=without_pool),
                    train=TrainConfig(epochs=1, lr=1e-3), teacher=TeacherConfig("lenet5"))
    train_teacher(cfg, tmp_path, progress=False)
    trained = image_digests(calls[0]["rows"].x)  # what the teacher's training loop was handed, as images
    pool = image_digests(load_transfer(DATA, "5"))  # the student's pool, as the student loads it
    assert len(pool) == 15
    if without_pool is None:
        assert pool <= trained
    else:
        assert pool.isdisjoint(trained) and len(trained) > 3 * 16


def test_on_the_fly_teacher_outputs_equal_cached_ones_through_a_transfer_set_when_nothing_is_augmented(
        teacher, tmp_path):
    accuracies, weights = {}, {}
    for mode in ("cached", "on-the-fly"):
        result = train_student(student(teacher, transfer="5", teacher_outputs=mode), tmp_path, name=mode,
                               progress=False)
        accuracies[mode] = result.test.accuracy
        weights[mode] = torch.load(result.run_dir / "best.pt", weights_only=True)["state_dict"]
    assert accuracies["cached"] == accuracies["on-the-fly"]
    for name, w in weights["cached"].items():
        assert torch.allclose(w, weights["on-the-fly"][name], atol=1e-5), name
