"""The loop selects on validation, writes its state every epoch, and resumes exactly."""

import json

import pytest
import torch

from qkd_pl.config import DataConfig, TrainConfig
from qkd_pl.data import load_data
from qkd_pl.teachers import build_teacher
from qkd_pl.training import load_checkpoint
from tests_helpers_training import fit
from qkd_pl.training.loop import load_resume_state

DATA = DataConfig("digits", classes=[0, 1, 2], per_class=30)


def new_model(data, dropout: bool = False):
    torch.manual_seed(0)
    if dropout:  # random draws during training: resume must restore the RNG too
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.Dropout(0.5),
                                   torch.nn.Linear(32, data.n_classes))
    return build_teacher("lenet5", data.image_shape, data.n_classes, data.mean, data.std)


def test_history_best_checkpoint_and_files(tmp_path):
    data = load_data(DATA)
    out = fit(new_model(data), data, TrainConfig(epochs=3, lr=1e-3), tmp_path, {"meta": {}}, progress=False)
    hist = out["history"]
    assert [r["epoch"] for r in hist] == [1, 2, 3]
    best = max(hist, key=lambda r: r["val_accuracy"])
    assert out["best"] == {"val_accuracy": best["val_accuracy"], "epoch": best["epoch"]}
    assert load_checkpoint(tmp_path / "best.pt")["epoch"] == best["epoch"]
    assert json.loads((tmp_path / "metrics.json").read_text()) == hist


@pytest.mark.parametrize("dropout", [False, True])
def test_resume_gives_the_same_model_as_an_uninterrupted_run(tmp_path, dropout):
    data = load_data(DATA)
    full = new_model(data, dropout)
    fit(full, data, TrainConfig(epochs=4, lr=1e-3), tmp_path / "a", {"meta": {}}, progress=False)

    part = new_model(data, dropout)
    fit(part, data, TrainConfig(epochs=2, lr=1e-3), tmp_path / "b", {"meta": {}}, progress=False)
    torch.manual_seed(123)  # a fresh process: the global RNG is wherever it happens to be
    resumed = new_model(data, dropout)  # a fresh process would rebuild the model like this
    out = fit(resumed, data, TrainConfig(epochs=4, lr=1e-3), tmp_path / "b", {"meta": {}},
              resume_state=load_resume_state(tmp_path / "b"), progress=False)
    assert [r["epoch"] for r in out["history"]] == [1, 2, 3, 4]
    for k, v in full.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k  # bit-identical on CPU


def test_distillation_changes_training(tmp_path):
    data = load_data(DATA)
    plain = fit(new_model(data), data, TrainConfig(epochs=1), tmp_path / "p", {"meta": {}}, progress=False)
    logits = torch.randn(len(data.y_train), data.n_classes) * 5
    from qkd_pl.config import DistillConfig

    kd = fit(new_model(data), data, TrainConfig(epochs=1), tmp_path / "k", {"meta": {}},
             teacher_logits=logits, distill=DistillConfig(teacher="x", kd_loss="hinton"), progress=False)
    assert plain["history"][0]["train_kd"] == 0.0 and kd["history"][0]["train_kd"] > 0.0
    assert kd["history"][0]["train_loss"] > kd["history"][0]["train_ce"]


class ExplodesAt(torch.nn.Module):
    """A model whose output turns to NaN (or inf) from its n-th training batch on."""

    def __init__(self, data, n: int, value: float):
        super().__init__()
        self.inner, self.n, self.value, self.calls = new_model(data), n, value, 0

    def forward(self, x):
        if self.training:
            self.calls += 1
        out = self.inner(x)
        return out * self.value if self.training and self.calls >= self.n else out


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_non_finite_loss_stops_the_run_naming_epoch_and_batch_and_keeps_the_last_good_epoch(tmp_path, value):
    from qkd_pl.errors import QkdError

    data = load_data(DATA)
    per_epoch = -(-len(data.y_train) // 8)
    model = ExplodesAt(data, per_epoch + 3, value)  # the 3rd batch of epoch 2
    with pytest.raises(QkdError, match=r"loss became (nan|inf) at epoch 2, batch 3;.*last good epoch \(1\)"):
        fit(model, data, TrainConfig(epochs=3, batch_size=8, lr=1e-3), tmp_path, {"meta": {}}, progress=False)
    last = load_checkpoint(tmp_path / "last.pt")
    assert last["epoch"] == 1 and all(torch.isfinite(v).all() for v in last["state_dict"].values())
    assert len(json.loads((tmp_path / "metrics.json").read_text())) == 1
