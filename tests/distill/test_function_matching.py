"""Function matching and the ceiling control in the Distiller: the teacher called on every batch's
view (equal to cached logits when the view is the image itself), and a transfer set taught by its
own labels."""

import sys
from pathlib import Path

import pytest
import torch

from qkd_pl import KD, Distiller, TrainConfig
from qkd_pl.distill import distiller as distiller_module
from qkd_pl.errors import QkdError

sys.path.insert(0, str(Path(__file__).parent))
from test_distiller import linear_teacher, splits, student  # noqa: E402


def spy_on_loss(monkeypatch):
    """(y, teacher logits, hard, soft) of every training batch's loss, and the rows."""
    seen = {"batches": []}
    real = distiller_module.train_loop

    def spy(model, rows, val, cfg, loss_fn, *a, **k):
        seen["rows"] = rows

        def loss_spy(logits, y, t, hard, soft):
            seen["batches"].append((y.clone(), None if t is None else t.clone(), hard, soft))
            return loss_fn(logits, y, t, hard, soft)
        return real(model, rows, val, cfg, loss_spy, *a, **k)

    monkeypatch.setattr(distiller_module, "train_loop", spy)
    return seen


def test_on_the_fly_teacher_outputs_equal_cached_ones_when_the_view_is_the_image(tmp_path):
    data = splits()
    teacher = linear_teacher(data)
    weights = {}
    for mode in ("cached", "on-the-fly"):
        s = student()
        Distiller(teacher, KD("hinton-classic", temperature=2.0, alpha=0.7), TrainConfig(epochs=3, batch_size=16),
                  teacher_outputs=mode, progress=False).fit(s, data["train"], data["val"], tmp_path / mode)
        weights[mode] = s.state_dict()
    for name, w in weights["cached"].items():
        assert torch.allclose(w, weights["on-the-fly"][name], atol=1e-5), name
    assert any(not torch.equal(w, student().state_dict()[n]) for n, w in weights["cached"].items())  # it trained


def test_the_teacher_sees_exactly_the_augmented_and_mixed_view_the_student_trains_on(tmp_path):
    data = splits()
    teacher = linear_teacher(data)
    seen_by = {"teacher": [], "student": []}
    teacher.register_forward_pre_hook(lambda m, args: seen_by["teacher"].append(args[0].clone()))
    s = student()
    s.register_forward_pre_hook(lambda m, args: seen_by["student"].append(args[0].clone()) if m.training else None)
    train = TrainConfig(epochs=2, batch_size=16, augment="shift-rotate", mixup=0.4)
    Distiller(teacher, train=train, teacher_outputs="on-the-fly", progress=False).fit(
        s, data["train"], data["val"], tmp_path / "fm")
    n_batches = 2 * -(-len(data["train"]) // 16)
    student_views = seen_by["student"][-n_batches:]
    assert len(student_views) == n_batches
    for t_view, s_view in zip(seen_by["teacher"][-n_batches:], student_views):
        assert torch.equal(t_view, s_view)
    x = data["train"].tensors[0]
    assert not any(torch.equal(v, x[:len(v)]) for v in student_views)  # views, not the images


def test_a_transfer_rows_pseudo_label_is_the_teachers_top_class_on_that_batchs_view(tmp_path, monkeypatch):
    data = splits()
    seen = spy_on_loss(monkeypatch)
    pool = data["test"][0]
    Distiller(linear_teacher(data), train=TrainConfig(epochs=1, batch_size=16, augment="shift-rotate"),
              transfer_labels="hard", teacher_outputs="on-the-fly", progress=False).fit(
        student(), data["train"], data["val"], tmp_path / "r", transfer_set=pool)
    transfer_rows = 0
    for y, t, hard, soft in seen["batches"]:
        pseudo = ~soft  # hard mode: every row has a label, only the labelled ones a soft target
        assert hard.all() and torch.equal(y[pseudo], t[pseudo].argmax(1))
        transfer_rows += int(pseudo.sum())
    assert transfer_rows == len(pool)


def test_the_ceiling_learns_its_transfer_set_from_its_own_labels_without_a_teacher(tmp_path, monkeypatch):
    data = splits()
    seen = spy_on_loss(monkeypatch)
    x_pool, y_pool = data["test"]
    run = Distiller(train=TrainConfig(epochs=2, batch_size=16), transfer_labels="true", progress=False).fit(
        student(), data["train"], data["val"], tmp_path / "c", transfer_set=(x_pool, y_pool))
    rows = seen["rows"]
    n = len(data["train"])
    assert rows.teacher is None and rows.n_labelled is None and len(rows) == n + len(y_pool)
    assert torch.equal(rows.y[n:], y_pool) and torch.equal(rows.x[n:], x_pool)
    assert all(t is None and hard is None for _, t, hard, _ in seen["batches"])  # every row: cross-entropy
    config = (run.run_dir / "config.json").read_text()
    assert '"transfer_labels": "true"' in config and '"labels_sha256"' in config


@pytest.mark.parametrize("make,needle", [
    (lambda d: Distiller(teacher_outputs="on-the-fly"), "calls the teacher on every batch"),
    (lambda d: Distiller(linear_teacher(d, 1), train=TrainConfig(mixup=0.2)), "teacher_outputs='on-the-fly'"),
    (lambda d: Distiller(linear_teacher(d, 1), teacher_outputs="live"), "choose cached or on-the-fly"),
    (lambda d: Distiller(transfer_labels="labels"), "choose soft, hard or true"),
    (lambda d: Distiller(linear_teacher(d, 1), transfer_labels="true"), "ceiling control.*no teacher"),
    (lambda d: Distiller(train=TrainConfig(augment="auto")), "name it: crop-flip"),
])
def test_settings_that_cannot_work_are_refused(make, needle):
    with pytest.raises(QkdError, match=needle):
        make(splits())


def test_a_transfer_set_without_a_teacher_needs_its_labels_for_the_ceiling(tmp_path):
    data = splits()
    with pytest.raises(QkdError, match="transfer_labels='true'"):
        Distiller(progress=False).fit(student(), data["train"], data["val"], tmp_path / "a",
                                      transfer_set=data["test"][0])
    with pytest.raises(QkdError):
        Distiller(transfer_labels="true", progress=False).fit(student(), data["train"], data["val"], tmp_path / "b",
                                                              transfer_set=data["test"][0])
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_pseudo_labels_of_mixed_images_and_foreign_ceiling_labels_are_refused_before_the_run_folder(tmp_path):
    data = splits()
    x_pool, y_pool = data["test"]
    with pytest.raises(QkdError, match="no one top class"):
        Distiller(linear_teacher(data, 1), train=TrainConfig(mixup=0.2), transfer_labels="hard",
                  teacher_outputs="on-the-fly", progress=False).fit(student(), data["train"], data["val"],
                                                                    tmp_path / "a", transfer_set=x_pool)
    with pytest.raises(QkdError, match="at least 58 classes"):
        Distiller(transfer_labels="true", progress=False).fit(student(), data["train"], data["val"], tmp_path / "b",
                                                              transfer_set=(x_pool, y_pool + 55))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_mixup_mixes_the_loss_of_each_rows_own_label_and_its_partners(tmp_path, monkeypatch):
    from qkd_pl.training import loop

    data = splits()
    draws = []
    real = loop.mixup

    def spy(x, alpha, generator):
        out = real(x, alpha, generator)
        draws.append(out)
        return out
    monkeypatch.setattr(loop, "mixup", spy)
    seen = spy_on_loss(monkeypatch)
    s = student()
    Distiller(train=TrainConfig(epochs=1, batch_size=len(data["train"]), mixup=0.4), progress=False).fit(
        s, data["train"], data["val"], tmp_path / "m")
    (mixed, partner, lam), = draws
    (y_own, _, _, _), (y_other, _, _, _) = seen["batches"]  # one batch: the loss with each label
    assert torch.equal(y_other, y_own[partner]) and 0 < lam < 1


def test_a_class_only_the_ceilings_pool_holds_is_one_of_the_runs_classes(tmp_path):
    data = splits()
    x, y = data["train"].tensors
    x_val, y_val = data["val"]
    x_pool, y_pool = data["test"]
    train = torch.utils.data.TensorDataset(x[y < 2], y[y < 2])
    run = Distiller(train=TrainConfig(epochs=1, batch_size=16), transfer_labels="true", progress=False).fit(
        student(), train, (x_val[y_val < 2], y_val[y_val < 2]), tmp_path / "c", transfer_set=(x_pool, y_pool))
    meta = torch.load(run.run_dir / "best.pt", weights_only=True)["meta"]
    assert int(y_pool.max()) == 2 and meta["classes"] == [0, 1, 2]
