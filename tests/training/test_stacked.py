"""Students stacked into one model train as each would alone: same batches, losses, weights,
optimizer state and files, to float rounding; a stacked run resumes stacked or alone."""

import dataclasses
import json

import pytest
import torch

from qkd_pl.config import DataConfig, DistillConfig, StudentConfig, TrainConfig
from qkd_pl.data import load_data
from qkd_pl.devices import resolve_backend
from qkd_pl.errors import QkdError
from qkd_pl.losses import objective_from_config
from qkd_pl.students.quantum import QuantumStudent
from qkd_pl.teachers import build_teacher
from qkd_pl.training import load_checkpoint, loop
from qkd_pl.training.stacked import Member, NotStackable, fit_stacked, stack_groups, stack_key, why_not_stackable

DATA = DataConfig("digits", classes=[0, 1, 2, 3], per_class=30)
TOL = dict(rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def data():
    return load_data(DATA)


def student(data, seed, qubits=2, device="auto"):
    torch.manual_seed(seed)
    backend = resolve_backend(device, qubits, None, None, training=True)
    return QuantumStudent(StudentConfig(qubits=qubits, ansatz="strong", device=device), backend, data.image_shape,
                          data.n_classes, data.mean, data.std)


def loss_of(distill):
    objective = objective_from_config(distill)
    return lambda logits, y, t, hard, soft: objective(logits, t, y, hard, soft)


def members(data, run_root, cfg, teacher_logits, seeds=(0, 1, 2), device="auto"):
    """A baseline, a Hinton and a DKD student (other seeds, losses and teacher rows), as a study has them."""
    settings = [(None, DistillConfig()), (teacher_logits, DistillConfig(kd_loss="hinton", temperature=2.0, alpha=0.5)),
                (teacher_logits, DistillConfig(kd_loss="dkd", temperature=4.0, alpha=0.8))]
    out = []
    for seed, (teacher, distill) in zip(seeds, settings):
        model = student(data, seed, device=device)
        rows = loop.Rows(data.x_train, data.y_train, teacher)
        out.append(Member(model, rows, (data.x_val, data.y_val), dataclasses.replace(cfg, seed=seed), loss_of(distill),
                          run_root / f"s{seed}", {"meta": {}}, torch.get_rng_state()))
        (run_root / f"s{seed}").mkdir(parents=True, exist_ok=True)
    return out


def alone(m: Member, **kw):
    torch.set_rng_state(m.rng)
    return loop.fit(m.model, m.rows, m.val, m.cfg, m.loss_fn, m.run_dir, m.checkpoint_meta, progress=False, **kw)


@pytest.fixture(scope="module")
def teacher_logits(data):
    torch.manual_seed(0)
    teacher = build_teacher("lenet5", data.image_shape, data.n_classes, data.mean, data.std)
    with torch.no_grad():
        return teacher.eval()(data.x_train) * 3


def assert_same_history(a, b) -> list[int]:
    """Two run folders' metrics.json agree epoch by epoch, to float rounding; returns the epochs."""
    ha, hb = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
    assert [r["epoch"] for r in ha] == [r["epoch"] for r in hb]
    for ra, rb in zip(ha, hb):
        for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
            assert ra[key] == pytest.approx(rb[key], rel=1e-5, abs=1e-6), key
    return [r["epoch"] for r in ha]


def assert_same_run(a, b):
    """Two run folders hold the same training, to float rounding."""
    assert_same_history(a, b)
    la, lb = (load_checkpoint(d / "last.pt") for d in (a, b))
    for k in la["state_dict"]:
        assert torch.allclose(la["state_dict"][k], lb["state_dict"][k], **TOL), k
    assert la["optimizer"]["param_groups"] == lb["optimizer"]["param_groups"]
    assert la["optimizer"]["state"].keys() == lb["optimizer"]["state"].keys()
    for i, state in lb["optimizer"]["state"].items():
        for k, v in state.items():
            assert torch.allclose(la["optimizer"]["state"][i][k], v, **TOL), (i, k)
    assert torch.equal(la["rng"], lb["rng"]) and la["best"] == lb["best"] and la["scheduler"] == lb["scheduler"]
    assert load_checkpoint(a / "best.pt")["epoch"] == load_checkpoint(b / "best.pt")["epoch"]


@pytest.mark.parametrize("cfg", [TrainConfig(epochs=3, batch_size=16, lr=1e-2),
                                 TrainConfig(epochs=3, batch_size=16, lr=1e-2, optimizer="sgd", schedule="onecycle",
                                             weight_decay=1e-3, augment="shift-rotate")],
                         ids=["adam", "sgd-onecycle-augmented"])
def test_stacked_students_train_as_each_would_alone(tmp_path, data, teacher_logits, cfg):
    stacked = members(data, tmp_path / "stacked", cfg, teacher_logits)
    lone = members(data, tmp_path / "alone", cfg, teacher_logits)
    out = fit_stacked(stacked, progress=False)
    for m, s, result in zip(lone, stacked, out):
        expected = alone(m)
        assert result["best"] == expected["best"]
        assert_same_run(s.run_dir, m.run_dir)
        for p, q in zip(s.model.parameters(), m.model.parameters()):  # the modules hold the last weights too
            assert torch.allclose(p, q, **TOL)


def test_students_on_the_complex64_simulator_stack_and_train_as_each_would_alone(tmp_path, data, teacher_logits):
    cfg = TrainConfig(epochs=3, batch_size=16, lr=1e-2)
    stacked = members(data, tmp_path / "stacked", cfg, teacher_logits, device="qkd.fused32")
    lone = members(data, tmp_path / "alone", cfg, teacher_logits, device="qkd.fused32")
    assert why_not_stackable(stacked) is None
    mixed = [stacked[0], members(data, tmp_path / "mixed", cfg, teacher_logits)[1]]  # a complex128 student
    assert why_not_stackable(mixed) == "their modules differ in kind or settings"
    assert stack_groups([stacked[0], mixed[1], stacked[1]]) == [[0, 2], [1]]  # as fit_together groups them
    out = fit_stacked(stacked, progress=False)
    for m, s, result in zip(lone, stacked, out):
        expected = alone(m)
        assert result["best"] == expected["best"]
        assert assert_same_history(s.run_dir, m.run_dir) == [1, 2, 3]
        # Every weight agrees but one kind: an angle the loss does not depend on (omega of the last
        # layer's Rot(phi, theta, omega) = RZ RY RZ, whose RZ comes last before <Z>) has a gradient of
        # float32 rounding noise, which Adam scales up to steps of the learning rate, so it drifts
        # apart in stacked and lone runs, changing nothing the student computes.
        ws, wl = (dict(r.model.named_parameters()) for r in (s, m))
        for k in ws:
            a, b = ws[k].detach().clone(), wl[k].detach().clone()
            if k == "quantum.layer.weights":
                a[-1, :, 2] = b[-1, :, 2] = 0
            assert torch.allclose(a, b, **TOL), k
        with torch.no_grad():
            assert torch.allclose(s.model(data.x_val), m.model(data.x_val), rtol=1e-4, atol=1e-5)
    # and the stacked forward ran in complex64: the traced graph it runs through holds no complex128
    dtypes = graph_dtypes(stacked[0].model)
    assert torch.complex64 in dtypes and torch.complex128 not in dtypes, dtypes


def graph_dtypes(model) -> set:
    """The dtypes of every value in the traced circuit graphs a model's quantum layers hold."""
    from qkd_pl.circuits.compiled import CompiledLayer

    layers = [v for m in model.modules() for v in vars(m).values() if isinstance(v, CompiledLayer)]
    graphs = [t.graph for layer in layers for t in layer._graphs.values() if t is not None]
    assert graphs, "no traced graph"
    return ({n.meta["val"].dtype for g in graphs for n in g.graph.nodes if isinstance(n.meta.get("val"), torch.Tensor)}
            | {b.dtype for g in graphs for b in g.buffers()})  # and the constants folded into buffers


def test_a_stacked_run_resumes_stacked_and_alone(tmp_path, data, teacher_logits):
    short, full = TrainConfig(epochs=2, batch_size=16, lr=1e-2), TrainConfig(epochs=4, batch_size=16, lr=1e-2)
    reference = members(data, tmp_path / "reference", full, teacher_logits)
    for m in reference:
        alone(m)
    first = members(data, tmp_path / "first", short, teacher_logits)
    fit_stacked(first, progress=False)
    # stacked again from last.pt, with more epochs
    again = members(data, tmp_path / "first", full, teacher_logits)
    for m in again:
        m.resume_state = loop.load_resume_state(m.run_dir)
        m.rng = m.resume_state["rng"]
    fit_stacked(again, progress=False)
    for m, r in zip(again, reference):
        assert_same_run(m.run_dir, r.run_dir)
    # one of them alone, from a stacked run's last.pt
    second = members(data, tmp_path / "second", short, teacher_logits)
    fit_stacked(second, progress=False)
    m = members(data, tmp_path / "second", full, teacher_logits)[1]
    alone(m, resume_state=loop.load_resume_state(m.run_dir))
    assert_same_run(m.run_dir, reference[1].run_dir)


def test_what_cannot_train_as_one_is_refused_with_the_reason(tmp_path, data, teacher_logits):
    cfg = TrainConfig(epochs=1, batch_size=16, lr=1e-2)
    group = members(data, tmp_path, cfg, teacher_logits)
    assert why_not_stackable(group) is None
    assert why_not_stackable(group[:1]) == "one student"
    other_lr = [group[0], dataclasses.replace(group[1], cfg=dataclasses.replace(group[1].cfg, lr=1e-3))]
    assert "settings differ" in why_not_stackable(other_lr)
    assert stack_key(other_lr[0]) != stack_key(other_lr[1])
    fewer = [group[0], dataclasses.replace(group[1], rows=loop.Rows(data.x_train[:-1], data.y_train[:-1]))]
    assert "rows differ" in why_not_stackable(fewer)
    mixed = [dataclasses.replace(m, cfg=dataclasses.replace(m.cfg, mixup=0.2)) for m in group]
    assert "mixup" in why_not_stackable(mixed)
    bigger = [group[0], dataclasses.replace(group[1], model=student(data, 1, qubits=3))]
    assert "parameters differ" in why_not_stackable(bigger)
    dropout = [dataclasses.replace(m, model=torch.nn.Sequential(m.model, torch.nn.Dropout(0.1))) for m in group]
    assert "dropout" in why_not_stackable(dropout)
    with pytest.raises(NotStackable, match="dropout"):
        fit_stacked(dropout, progress=False)
    assert not any((m.run_dir / "last.pt").exists() for m in group)  # refused before anything was written


def test_a_circuit_without_a_graph_is_not_stacked(tmp_path, data, teacher_logits, monkeypatch):
    monkeypatch.setenv("QKD_COMPILE", "off")  # every call through the QNode, which cannot take many students
    group = members(data, tmp_path, TrainConfig(epochs=1, batch_size=16, lr=1e-2), teacher_logits)
    with pytest.raises(NotStackable, match="no traced graph"):
        fit_stacked(group, progress=False)


class Branchy(torch.nn.Module):
    """Takes a Python branch on a value: vmap cannot batch it."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 4))

    def forward(self, x):
        out = self.net(x)
        return out if out.sum() > -1e9 else -out


class Dropping(torch.nn.Module):
    """Draws random numbers in its forward without a Dropout module."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 4))

    def forward(self, x):
        return torch.nn.functional.dropout(self.net(x), 0.5, self.training)


def mlp(activation):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 8), activation, torch.nn.Linear(8, 4))


def plain_members(data, tmp_path, models, loss_fn=None):
    cfg = TrainConfig(epochs=1, batch_size=16, lr=1e-2)
    loss_fn = loss_fn or loss_of(DistillConfig())
    out = []
    for j, model in enumerate(models):
        (tmp_path / f"m{j}").mkdir(parents=True, exist_ok=True)
        out.append(Member(model, loop.Rows(data.x_train, data.y_train), (data.x_val, data.y_val),
                          dataclasses.replace(cfg, seed=j), loss_fn, tmp_path / f"m{j}", {"meta": {}},
                          torch.get_rng_state()))
    return out


class Capped(torch.nn.Module):
    def __init__(self, cap):
        super().__init__()
        self.cap = cap
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 4))

    def forward(self, x):
        return self.net(x).clamp(-self.cap, self.cap)


def test_students_of_other_structures_behind_the_same_shapes_are_not_stacked(tmp_path, data):
    for models in ([mlp(torch.nn.ReLU()), mlp(torch.nn.Tanh())], [Capped(2.0), Capped(1000.0)]):
        group = plain_members(data, tmp_path, models)
        assert why_not_stackable(group) == "their modules differ in kind or settings"
        assert stack_key(group[0]) == stack_key(group[1])  # one shape,
        assert stack_groups(group) == [[0], [1]]  # two kinds: fit_together steps each kind on its own
    same = plain_members(data, tmp_path, [Capped(2.0), Capped(2.0)])
    assert why_not_stackable(same) is None


def test_structures_that_cannot_be_compared_train_apart_rather_than_crash(tmp_path, data, monkeypatch):
    from qkd_pl.training import stacked

    group = plain_members(data, tmp_path, [Capped(2.0), Capped(2.0)])
    # a circuit closing over tensors of several values: == between two such structures raises
    monkeypatch.setattr(stacked, "structure", lambda model: [("circuit", (torch.ones(3),))])
    assert stack_groups(group) == [[0], [1]]
    assert why_not_stackable(group) == "their modules differ in kind or settings"


@pytest.mark.parametrize("models,why", [
    (lambda: [Branchy(), Branchy()], "batched forward fails"),
    (lambda: [Dropping(), Dropping()], "batched forward fails"),
    (lambda: [Dropping().eval(), Dropping().eval()], "batched forward fails"),  # checked as they will train
], ids=["data-dependent-branch", "functional-dropout", "functional-dropout-handed-over-in-eval-mode"])
def test_students_the_batched_forward_cannot_reproduce_are_refused(tmp_path, data, models, why):
    group = plain_members(data, tmp_path, models())
    assert why_not_stackable(group) is None  # nothing in their shapes or settings tells
    with pytest.raises(NotStackable, match=why):
        fit_stacked(group, progress=False)
    assert not any((m.run_dir / "last.pt").exists() for m in group)


def drawing_from(step_number):
    """A loss that starts drawing random numbers at its ``step_number``-th call."""
    base, calls = loss_of(DistillConfig()), []

    def loss(logits, y, t, hard, soft):
        calls.append(1)
        noise = 0.01 * torch.randn_like(logits) if len(calls) >= step_number else 0
        return base(logits + noise, y, t, hard, soft)
    return loss


@pytest.mark.parametrize("step_number", [1, 5])  # the first call, or a later one of the first epoch
def test_a_loss_that_draws_in_the_first_epoch_is_refused_before_anything_is_written(tmp_path, data, step_number):
    group = plain_members(data, tmp_path, [mlp(torch.nn.ReLU()), mlp(torch.nn.ReLU())], drawing_from(step_number))
    with pytest.raises(NotStackable, match="draws random numbers"):
        fit_stacked(group, progress=False)
    assert not any((m.run_dir / "last.pt").exists() for m in group)


def test_a_loss_that_starts_drawing_later_stops_the_fit_and_keeps_the_epochs_before(tmp_path, data):
    calls_an_epoch = 2 * -(-len(data.y_train) // 16)  # two students' losses a step
    group = plain_members(data, tmp_path, [mlp(torch.nn.ReLU()), mlp(torch.nn.ReLU())],
                          drawing_from(calls_an_epoch + 1))
    group = [dataclasses.replace(m, cfg=dataclasses.replace(m.cfg, epochs=3)) for m in group]
    with pytest.raises(QkdError, match="from epoch 2.* holds the 1 epochs before.*one by one"):
        fit_stacked(group, progress=False)
    assert all(load_checkpoint(m.run_dir / "last.pt")["epoch"] == 1 for m in group)


def test_stacked_parameters_take_their_batched_gradients_layout_and_keep_their_values(data):
    from qkd_pl.training.stacked import Stack

    students = [student(data, seed) for seed in range(3)]
    stack = Stack(students)
    x = data.x_train[:16]
    stack.check([x])
    before = {k: v.detach().clone() for k, v in stack.params.items()}
    logits_before = stack(x.expand(3, *x.shape)).detach()
    many = stack.many

    def drawing(*args):  # a forward that draws: the probe must not move the students' stream
        torch.rand(1)
        return many(*args)

    stack.many = drawing
    rng = torch.get_rng_state()
    relaid = stack.match_gradient_layout(x)
    assert torch.equal(rng, torch.get_rng_state())
    stack.many = many
    assert "reduce.linear.weight" in relaid  # vmap's linear gradient is (models, in, out) seen as (models, out, in)
    for name, p in stack.params.items():
        assert p.is_leaf and p.requires_grad and torch.equal(p, before[name]), name
    # the product reads the weights in the other order: its sums may round otherwise in the last bit
    assert torch.allclose(stack(x.expand(3, *x.shape)).detach(), logits_before, **TOL)
    logits = stack(x.expand(3, *x.shape))
    grads = torch.autograd.grad(logits.square().sum(), list(stack.params.values()))
    for (name, p), g in zip(stack.params.items(), grads):
        if name in relaid:  # computed where it is stored: no transposing copy into .grad
            assert g.stride() == p.stride(), name
    stack.unstack_into_models()
    for j, model in enumerate(students):
        for name, t in model.named_parameters():
            assert torch.equal(t, before[name][j]), name


def test_fit_stacked_lays_parameters_out_as_their_gradients_and_resumes_in_that_layout(tmp_path, data, teacher_logits,
                                                                                      monkeypatch):
    from qkd_pl.training import stacked

    relaid = []
    real = stacked.Stack.match_gradient_layout
    monkeypatch.setattr(stacked.Stack, "match_gradient_layout", lambda self, x: relaid.append(real(self, x)) or relaid[-1])
    cfg = TrainConfig(epochs=1, batch_size=16, lr=1e-2)
    first = members(data, tmp_path, cfg, teacher_logits)
    fit_stacked(first, progress=False)
    assert relaid and "reduce.linear.weight" in relaid[0]
    saved = loop.load_resume_state(first[0].run_dir)["optimizer"]["state"]
    assert all(v.is_contiguous() for s in saved.values() for v in s.values())  # as a lone run's last.pt
    # a stacked resume: each optimizer state tensor in its stacked parameter's layout
    again = members(data, tmp_path, TrainConfig(epochs=2, batch_size=16, lr=1e-2), teacher_logits)
    for m in again:
        m.resume_state = loop.load_resume_state(m.run_dir)
    stack = stacked.Stack([m.model for m in again])
    stack.match_gradient_layout(data.x_train[:16])
    params = list(stack.params.values())
    optimizer, scheduler = stacked.make_optimizer(params, again[0].cfg, steps_per_epoch=8)
    stacked._restore(optimizer, params, scheduler, [m.resume_state for m in again], again[0].run_dir)
    for i, p in enumerate(params):
        for k, v in optimizer.state[p].items():
            if k != "step":
                assert v.stride() == p.stride(), k
                assert torch.equal(v[1], again[1].resume_state["optimizer"]["state"][i][k]), k


def test_a_batched_backward_that_fails_means_one_by_one_not_a_crash(tmp_path, data, teacher_logits, monkeypatch):
    from qkd_pl.training import stacked

    def failing(*args, **kwargs):
        raise RuntimeError("vmap: no batching rule for this backward")

    monkeypatch.setattr(stacked.torch.autograd, "grad", failing)
    with pytest.raises(NotStackable, match="batched forward or backward fails .*no batching rule"):
        fit_stacked(members(data, tmp_path, TrainConfig(epochs=1, batch_size=16, lr=1e-2), teacher_logits),
                    progress=False)
