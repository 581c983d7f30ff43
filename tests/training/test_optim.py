"""make_optimizer: the optimizer and schedule a TrainConfig names, and one-cycle runs that resume."""

import copy

import pytest
import torch

from qkd_pl.config import DataConfig, TrainConfig
from qkd_pl.data import load_data
from qkd_pl.errors import QkdError
from qkd_pl.training import loop  # noqa: F401
from tests_helpers_training import fit
from qkd_pl.training.loop import load_resume_state
from qkd_pl.training.optim import Adam, make_optimizer


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


def _steps(opt, param, grads, sched=None):
    for g in grads:
        param.grad = g.clone()
        opt.step()
        if sched is not None:
            sched.step()


@pytest.mark.parametrize("weight_decay", [0.0, 1e-3])
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])  # a stacked FC weight is laid out as its gradient
def test_our_adam_is_torchs_to_the_bit_and_their_checkpoints_interchange(weight_decay, layout):
    torch.manual_seed(0)
    start = torch.randn(3, 40, 24)
    if layout == "transposed":
        start = start.transpose(1, 2).contiguous().transpose(1, 2)
    grads = [torch.randn(start.shape) * 10 ** (i % 4 - 2) for i in range(30)]
    cfg = TrainConfig(epochs=3, lr=1e-2, schedule="onecycle", weight_decay=weight_decay)
    ours, theirs = start.clone().requires_grad_(), start.clone().requires_grad_()
    opt, sched = make_optimizer([ours], cfg, steps_per_epoch=10)
    ref = torch.optim.Adam([theirs], lr=cfg.lr, weight_decay=weight_decay)
    ref_sched = torch.optim.lr_scheduler.OneCycleLR(ref, max_lr=cfg.lr, total_steps=30, pct_start=0.25,
                                                    anneal_strategy="linear", cycle_momentum=False,
                                                    div_factor=25.0, final_div_factor=1e4)
    assert isinstance(opt, Adam) and opt._plain()
    _steps(opt, ours, grads[:15], sched)
    _steps(ref, theirs, grads[:15], ref_sched)
    assert torch.equal(ours, theirs) and ours.stride() == start.stride()
    for k in ("step", "exp_avg", "exp_avg_sq"):
        assert torch.equal(opt.state[ours][k], ref.state[theirs][k]), k
    assert opt.state_dict()["param_groups"] == ref.state_dict()["param_groups"]
    # each continues from the other's state_dict
    swapped_ours, swapped_theirs = theirs.detach().clone().requires_grad_(), ours.detach().clone().requires_grad_()
    a, b = Adam([swapped_ours], lr=cfg.lr), torch.optim.Adam([swapped_theirs], lr=cfg.lr)
    a.load_state_dict(copy.deepcopy(ref.state_dict()))  # a state_dict holds the optimizer's own tensors
    b.load_state_dict(copy.deepcopy(opt.state_dict()))
    for o in (opt, ref, a, b):
        for group in o.param_groups:
            group["lr"] = 3e-3
    for o, p in ((opt, ours), (ref, theirs), (a, swapped_ours), (b, swapped_theirs)):
        _steps(o, p, grads[15:])
    assert torch.equal(ours, theirs) and torch.equal(ours, swapped_ours) and torch.equal(ours, swapped_theirs)


@pytest.mark.parametrize("variant", [{"amsgrad": True}, {"maximize": True}, {"foreach": True},
                                     {"lr": torch.tensor(1e-2)}, {"decoupled_weight_decay": True, "weight_decay": 0.1}],
                         ids=["amsgrad", "maximize", "foreach", "tensor-lr", "decoupled"])
def test_adam_variants_take_torchs_own_step_and_hooks_run_once(variant):
    torch.manual_seed(1)
    start, grads = torch.randn(50), [torch.randn(50) for _ in range(10)]
    ours, theirs = start.clone().requires_grad_(), start.clone().requires_grad_()
    variant = {"lr": 1e-2, **variant}
    opt, ref = Adam([ours], **variant), torch.optim.Adam([theirs], **variant)  # torch's class is hooked now
    assert not opt._plain()
    calls = []
    opt.register_step_pre_hook(lambda *a: calls.append("pre"))
    opt.register_step_post_hook(lambda *a: calls.append("post"))
    _steps(opt, ours, grads)
    _steps(ref, theirs, grads)
    assert torch.equal(ours, theirs)
    assert calls == ["pre", "post"] * len(grads)


def test_a_differentiable_adam_steps_as_torchs_with_its_graph():
    """torch's differentiable step runs with gradients on: our no_grad step must not take that away."""
    out = []
    for cls in (Adam, torch.optim.Adam):
        torch.manual_seed(0)
        leaf = torch.randn(5, requires_grad=True)
        p = leaf * 1  # differentiable Adam steps a tensor inside a graph
        opt = cls([p], lr=1e-2, differentiable=True)
        for i in range(3):
            p.grad = torch.full((5,), 0.1 * (i + 1))
            opt.step()
        out.append(p)
    assert torch.equal(out[0], out[1]) and out[0].grad_fn is not None


def test_a_closure_takes_torchs_step_and_its_loss_is_returned():
    torch.manual_seed(2)
    x, y = torch.randn(16, 3), torch.randn(16)
    models = [torch.nn.Linear(3, 1) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    opts = [Adam(models[0].parameters(), 1e-2), torch.optim.Adam(models[1].parameters(), 1e-2)]  # lr by position
    for _ in range(5):
        losses = []
        for model, opt in zip(models, opts):
            def closure(model=model, opt=opt):
                opt.zero_grad()
                loss = ((model(x).squeeze(1) - y) ** 2).mean()
                loss.backward()
                return loss
            losses.append(opt.step(closure))
        assert torch.equal(losses[0], losses[1])
    for p, q in zip(*(m.parameters() for m in models)):
        assert torch.equal(p, q)


def test_a_copied_or_unpickled_adam_steps_on_as_the_original():
    import pickle

    torch.manual_seed(3)
    p = torch.randn(20, 7, requires_grad=True)
    opt = Adam([p], lr=1e-2)
    _steps(opt, p, [torch.randn(20, 7)])
    copied = copy.deepcopy({"p": p, "opt": opt})
    unpickled = pickle.loads(pickle.dumps({"p": p, "opt": opt}))
    grads = [torch.randn(20, 7) for _ in range(3)]
    _steps(opt, p, grads)
    for other in (copied, unpickled):
        _steps(other["opt"], other["p"], grads)
        assert torch.equal(other["p"], p)
