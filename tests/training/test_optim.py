"""make_optimizer: the optimizer and schedule a TrainConfig names, and one-cycle runs that resume."""

import pytest
import torch

from qkd_pl.config import DataConfig, TrainConfig
from qkd_pl.data import load_data
from qkd_pl.errors import QkdError
from qkd_pl.training import loop  # noqa: F401
from tests_helpers_training import fit
from qkd_pl.training.loop import load_resume_state
from qkd_pl.training.optim import make_optimizer


def test_adam_by_default_and_nesterov_sgd_with_weight_decay():
    model = torch.nn.Linear(3, 2)
    opt, sched = make_optimizer(model, TrainConfig(), 10)
    assert isinstance(opt, torch.optim.Adam) and sched is None
    opt, _ = make_optimizer(model, TrainConfig(optimizer="sgd", weight_decay=5e-4, lr=0.1), 10)
    group = opt.param_groups[0]
    assert isinstance(opt, torch.optim.SGD) and group["nesterov"] and group["momentum"] == 0.9
    assert group["weight_decay"] == 5e-4


def test_one_cycle_rises_to_the_peak_over_a_quarter_and_falls_to_almost_zero():
    model = torch.nn.Linear(3, 2)
    opt, sched = make_optimizer(model, TrainConfig(epochs=4, lr=0.2, schedule="onecycle", optimizer="sgd"), 25)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    peak = max(range(100), key=lrs.__getitem__)
    assert lrs[peak] == pytest.approx(0.2) and 23 <= peak <= 25
    assert lrs[0] == pytest.approx(0.2 / 25) and lrs[-1] < 0.01 * 0.2
    assert all(a <= b for a, b in zip(lrs[:peak], lrs[1:peak + 1]))
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1:]))


DATA = DataConfig("digits", classes=[0, 1, 2], per_class=30)


def linear(data):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, data.n_classes))


def test_a_one_cycle_run_resumes_exactly_and_refuses_other_epochs(tmp_path, monkeypatch):
    data = load_data(DATA)
    cfg = TrainConfig(epochs=4, lr=0.1, optimizer="sgd", schedule="onecycle", batch_size=16)
    full = linear(data)
    fit(full, data, cfg, tmp_path / "a", {"meta": {}}, progress=False)

    written = []  # killed after epoch 2's checkpoints: metrics.json is the last file an epoch writes

    def write_then_die(path, obj):
        written.append(path)
        if len(written) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "atomic_write_json", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        fit(linear(data), data, cfg, tmp_path / "b", {"meta": {}}, progress=False)
    monkeypatch.undo()
    state = load_resume_state(tmp_path / "b")
    assert state["epoch"] == 2
    with pytest.raises(QkdError, match="one-cycle schedule planned for another number of epochs"):
        fit(linear(data), data, TrainConfig(**{**cfg.__dict__, "epochs": 6}), tmp_path / "b", {"meta": {}},
            resume_state=state, progress=False)
    resumed = linear(data)
    fit(resumed, data, cfg, tmp_path / "b", {"meta": {}}, resume_state=state, progress=False)
    for k, v in full.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k
