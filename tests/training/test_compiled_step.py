"""The whole training step compiled: a fit with compiled steps trains as the eager fit does (weights,
optimizer state, losses, to float rounding), falls back to the eager step where a compiled one
would not be the same training, and the auto rule compiles only what pays."""

import json
import math

import pennylane as qml
import pytest
import torch

from qkd_pl.circuits import accelerate
from qkd_pl.config import DataConfig, StudentConfig, TrainConfig
from qkd_pl.data import load_data
from qkd_pl.devices import resolve_backend
from qkd_pl.distill.distiller import BatchLoss
from qkd_pl.errors import QkdError, QkdWarning
from qkd_pl.losses import KD, Objective
from qkd_pl.students.quantum import QuantumStudent
from qkd_pl.training import compiled_step, loop
from qkd_pl.training.checkpoint import load_checkpoint
from qkd_pl.training.optim import make_optimizer

DATA = DataConfig("digits", classes=[0, 1, 2, 3], per_class=40)
CFG = TrainConfig(epochs=3, batch_size=20, seed=0)  # 128 rows: 6 full batches and one of 8 an epoch


@pytest.fixture(scope="module")
def data():
    return load_data(DATA)


@pytest.fixture(scope="module")
def teacher(data):
    g = torch.Generator().manual_seed(3)
    return torch.randn(len(data.y_train), data.n_classes, generator=g) * 3


def student(data, qubits=2, device="auto"):
    torch.manual_seed(0)
    backend = resolve_backend(device, qubits, None, None, training=True)
    return QuantumStudent(StudentConfig(qubits=qubits, ansatz="strong"), backend, data.image_shape, data.n_classes,
                          data.mean, data.std)


@pytest.fixture
def eager_compile(monkeypatch):
    """Inductor replaced by the traced graph itself: every step of the machinery but inductor's code."""
    monkeypatch.setattr(compiled_step, "compile_graph", lambda graph, inputs: graph)
    monkeypatch.setattr(compiled_step, "COMPILED", {})


@pytest.fixture
def spy(monkeypatch):
    """The fit's CompiledSteps, to see which steps were compiled."""
    made = []
    real = loop.compiled_steps

    def capture(*args):
        steps = real(*args)
        made.append(steps)
        return steps

    monkeypatch.setattr(loop, "compiled_steps", capture)
    return made


def fit(data, rows, cfg, loss, run_dir, mode, monkeypatch, model=None, device="auto", **kw):
    monkeypatch.setenv("QKD_COMPILE_STEP", mode)
    run_dir.mkdir(parents=True, exist_ok=True)
    model = model or student(data, device=device)
    torch.manual_seed(0)
    out = loop.fit(model, rows, (data.x_val, data.y_val), cfg, loss, run_dir, {"meta": {}}, progress=False, **kw)
    return model, out


def assert_same(a, b, out_a, out_b, tol=1e-5):
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(x.double(), y.double(), rtol=tol, atol=tol), name
    for ra, rb in zip(out_a["history"], out_b["history"]):
        assert ra["train_loss"] == pytest.approx(rb["train_loss"], rel=tol, abs=tol)
        assert ra["train_kd"] == pytest.approx(rb["train_kd"], rel=tol, abs=tol)
        assert ra["train_accuracy"] == rb["train_accuracy"] and ra["val_accuracy"] == rb["val_accuracy"]


def compiled_shapes(steps) -> int:
    return sum(s.compiled is not None for s in steps.shapes.values())


@pytest.mark.slow
@pytest.mark.parametrize("optimizer,schedule,teacher_on,wd,device", [
    ("adam", "constant", True, 1e-3, "auto"), ("adam", "onecycle", True, 0.0, "auto"),
    ("sgd", "onecycle", False, 1e-3, "auto"), ("sgd", "constant", True, 0.0, "auto"),
    ("adam", "onecycle", True, 1e-3, "qkd.fused32")])
def test_compiled_fit_trains_as_the_eager_fit(data, teacher, tmp_path, monkeypatch, eager_compile, spy,
                                              optimizer, schedule, teacher_on, wd, device):
    cfg = TrainConfig(epochs=5, batch_size=20, seed=0, optimizer=optimizer, schedule=schedule, lr=0.02,
                      weight_decay=wd)
    rows = loop.Rows(data.x_train, data.y_train, teacher if teacher_on else None)
    loss = BatchLoss(KD("hinton", temperature=2.0, alpha=0.5), with_teacher=teacher_on)
    eager, out_e = fit(data, rows, cfg, loss, tmp_path / "eager", "off", monkeypatch, device=device)
    compiled, out_c = fit(data, rows, cfg, loss, tmp_path / "compiled", "on", monkeypatch, device=device)
    assert len(data.y_train) % 20  # an epoch ends with a smaller batch: its own shape, compiled too from its 4th step
    assert spy[0] is None and compiled_shapes(spy[1]) == 2 and spy[1].runs > 0
    assert_same(eager, compiled, out_e, out_c)
    saved = [load_checkpoint(tmp_path / d / "last.pt")["optimizer"]["state"] for d in ("eager", "compiled")]
    for a, b in zip(saved[0].values(), saved[1].values()):
        for k in a:
            assert torch.allclose(torch.as_tensor(a[k]).double(), torch.as_tensor(b[k]).double(), atol=1e-5), k


@pytest.mark.slow
def test_inductor_compiles_the_step_and_agrees(data, teacher, tmp_path, monkeypatch, spy):
    """The real compiler (seconds to a minute on a cold cache): same training as the eager fit."""
    monkeypatch.setenv("QKD_CACHE_DIR", str(tmp_path / "cache"))
    cfg = TrainConfig(epochs=2, batch_size=16, seed=0)
    rows = loop.Rows(data.x_train, data.y_train, teacher)
    loss = BatchLoss(KD("dkd", temperature=4.0, alpha=0.8), with_teacher=True)
    eager, out_e = fit(data, rows, cfg, loss, tmp_path / "eager", "off", monkeypatch)
    compiled, out_c = fit(data, rows, cfg, loss, tmp_path / "compiled", "on", monkeypatch)
    assert compiled_shapes(spy[1]) >= 1, [s.refused for s in spy[1].shapes.values()]
    assert spy[1].runs > 0
    assert_same(eager, compiled, out_e, out_c)


@pytest.mark.slow
def test_a_compiled_run_resumes_as_an_uninterrupted_one(data, teacher, tmp_path, monkeypatch, eager_compile, spy):
    rows = loop.Rows(data.x_train, data.y_train, teacher)
    loss = BatchLoss(KD("hinton"), with_teacher=True)
    whole, out_w = fit(data, rows, CFG, loss, tmp_path / "whole", "on", monkeypatch)
    import dataclasses
    fit(data, rows, dataclasses.replace(CFG, epochs=2), loss, tmp_path / "cut", "on", monkeypatch)
    state = load_checkpoint(tmp_path / "cut" / "last.pt")
    resumed, out_r = fit(data, rows, CFG, loss, tmp_path / "cut", "on", monkeypatch, resume_state=state)
    assert all(steps.runs > 0 for steps in spy)  # compiled steps before the cut and after the resume
    assert_same(whole, resumed, out_w, out_r)


def test_a_step_that_differs_from_the_eager_one_is_not_used(data, teacher, tmp_path, monkeypatch, spy):
    def off_by_a_little(graph, inputs):
        return lambda *args: tuple(t + 1e-3 if t.is_floating_point() else t for t in graph(*args))

    monkeypatch.setattr(compiled_step, "compile_graph", off_by_a_little)
    monkeypatch.setattr(compiled_step, "COMPILED", {})
    rows = loop.Rows(data.x_train, data.y_train, teacher)
    loss = BatchLoss(KD("hinton"), with_teacher=True)
    eager, out_e = fit(data, rows, CFG, loss, tmp_path / "eager", "off", monkeypatch)
    with pytest.warns(QkdWarning, match="differs from the eager step"):
        compiled, out_c = fit(data, rows, CFG, loss, tmp_path / "compiled", "on", monkeypatch)
    assert compiled_shapes(spy[1]) == 0
    assert_same(eager, compiled, out_e, out_c, tol=0)  # every step eager: bit for bit


@pytest.mark.parametrize("device", ["auto", "qkd.fused32"])
def test_an_update_the_optimizer_would_not_make_is_refused(data, teacher, tmp_path, monkeypatch, spy, device):
    """The compiled Adam step 40% too large, with the loss, logits and gradients right: refused, also
    where the circuit's complex64 rounding loosens the comparison of gradients."""
    def too_large(out, args, n, k):
        out[:n] = [old + 1.4 * (new - old) for old, new in zip(args[:n], out[:n])]

    tampered(monkeypatch, spy, too_large)
    assert_refused(data, teacher, tmp_path, monkeypatch, spy, "its update differs from the optimizer's", device)


def tampered(monkeypatch, spy, change) -> None:
    """Inductor replaced by the traced graph with ``change(outputs, inputs, n_params, n_state)`` applied."""
    def compile_graph(graph, inputs):
        def call(*args):
            out = list(graph(*args))
            n = len(spy[-1].params)
            change(out, args, n, len(out) - 4 - 2 * n)
            return tuple(out)
        return call

    monkeypatch.setattr(compiled_step, "compile_graph", compile_graph)
    monkeypatch.setattr(compiled_step, "COMPILED", {})


def assert_refused(data, teacher, tmp_path, monkeypatch, spy, match, device="auto") -> None:
    rows = loop.Rows(data.x_train, data.y_train, teacher)
    with pytest.warns(QkdWarning, match=match):
        fit(data, rows, CFG, BatchLoss(KD("hinton"), with_teacher=True), tmp_path / "run", "on", monkeypatch,
            device=device)
    assert compiled_shapes(spy[0]) == 0 and spy[0].runs == 0


def test_frozen_modules_stay_frozen_and_the_rest_compiles(data, teacher, tmp_path, monkeypatch, eager_compile, spy):
    rows = loop.Rows(data.x_train, data.y_train, teacher)
    loss = BatchLoss(KD("hinton"), with_teacher=True)
    models = []
    for mode in ("off", "on"):
        model = student(data)
        model.reduce.requires_grad_(False)  # fine-tuning's frozen modules: in the optimizer, never stepped
        before = model.reduce.linear.weight.detach().clone()
        models.append(fit(data, rows, CFG, loss, tmp_path / mode, mode, monkeypatch, model=model))
        assert torch.equal(model.reduce.linear.weight, before)
    assert spy[1].runs > 0
    assert_same(models[0][0], models[1][0], models[0][1], models[1][1])


class Branching(Objective):
    """A teacher term that tests a value in Python: one trace cannot serve every batch."""

    name = "branching"

    def teacher_term(self, s, t, target):
        return (s - t).pow(2).sum() if s.mean() > 0 else (s - t).abs().sum()


def test_a_loss_that_branches_on_a_value_stays_eager(data, teacher, tmp_path, monkeypatch, eager_compile, spy):
    rows = loop.Rows(data.x_train, data.y_train, teacher)
    loss = BatchLoss(Branching(), with_teacher=True)
    fit(data, rows, CFG, loss, tmp_path / "run", "on", monkeypatch)
    (shape, *_) = spy[0].shapes.values()
    assert shape.compiled is None and "tracing the step failed" in shape.refused


@pytest.mark.parametrize("why,change", [
    ("masked rows (a transfer set)", lambda rows, cfg: (loop.Rows(rows.x, rows.y, rows.teacher, hard=rows.y >= 0, soft=rows.y >= 0),
                                       cfg)),
    ("mixup", lambda rows, cfg: (rows, TrainConfig(epochs=1, batch_size=16, mixup=0.2))),
    ("a teacher called on every batch", lambda rows, cfg: (loop.Rows(rows.x, rows.y, teacher_fn=lambda x: x), cfg)),
])
def test_what_is_not_compiled_says_why(data, teacher, monkeypatch, why, change):
    monkeypatch.setenv("QKD_COMPILE_STEP", "on")
    rows, cfg = change(loop.Rows(data.x_train, data.y_train, teacher), CFG)
    model = student(data)
    optimizer, _ = make_optimizer(model, cfg, 10)
    assert compiled_step.why_not_compiled(model, rows, cfg, BatchLoss(KD("hinton"), True), optimizer) == why


def test_plain_function_losses_and_classical_models_stay_eager(data, monkeypatch):
    monkeypatch.setenv("QKD_COMPILE_STEP", "on")
    rows = loop.Rows(data.x_train, data.y_train)
    model = student(data)
    optimizer, _ = make_optimizer(model, CFG, 10)
    plain = lambda logits, y, t, hard, soft: (torch.nn.functional.cross_entropy(logits, y), {"ce": 0.0, "kd": 0.0})
    assert "tensor form" in compiled_step.why_not_compiled(model, rows, CFG, plain, optimizer)
    classical = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 4))
    optimizer, _ = make_optimizer(classical, CFG, 10)
    assert "no circuit" in compiled_step.why_not_compiled(classical, rows, CFG, BatchLoss(KD("hinton"), False),
                                                          optimizer)
    monkeypatch.setenv("QKD_COMPILE_STEP", "sometimes")
    with pytest.raises(QkdError, match="QKD_COMPILE_STEP='sometimes'.*auto, on, off"):
        compiled_step.why_not_compiled(model, rows, CFG, BatchLoss(KD("hinton"), False), optimizer)


def test_auto_compiles_from_the_break_even_count_of_planned_steps(data, teacher, tmp_path, monkeypatch,
                                                                   eager_compile, spy):
    """The same command decides the same way on every run: from its plan, not from timings."""
    rows = loop.Rows(data.x_train, data.y_train, teacher)
    loss = BatchLoss(KD("hinton"), with_teacher=True)
    cfg = TrainConfig(epochs=4, batch_size=20, seed=0)  # the last, smaller batch is asked on its 4th step
    full = cfg.epochs * (len(rows) // cfg.batch_size)  # 24 planned full batches
    monkeypatch.setattr(compiled_step, "break_even_steps", lambda qubits, batch: full if batch == 20 else full + 1)
    for run in ("a", "b"):
        fit(data, rows, cfg, loss, tmp_path / run, "auto", monkeypatch)
    for steps in spy:
        (full_batch, last) = steps.shapes.values()
        assert full_batch.compiled is not None and steps.runs > 0
        assert last.refused == "it would not pay for its compilation"
    runs = [json.loads((tmp_path / run / "metrics.json").read_text()) for run in ("a", "b")]
    timing = ("seconds", "train_samples_per_s")
    assert [{k: v for k, v in row.items() if k not in timing} for row in runs[0]] == \
        [{k: v for k, v in row.items() if k not in timing} for row in runs[1]]  # to the bit


def test_the_break_even_count_follows_the_measured_constants():
    b = compiled_step.break_even_steps
    assert b(4, 32) == math.ceil(compiled_step.COLD_SECONDS / (compiled_step.EAGER_B32[4] * 0.6))
    assert b(8, 32) < b(4, 32) and b(8, 256) < b(8, 32)  # more work per step: sooner
    assert b(10, 32) > b(8, 32)  # a compiled step saves least at 10 qubits (0.12 measured)
    assert b(12, 32) < b(10, 32)  # beyond what was measured, the eager step doubles per qubit
    assert [compiled_step.saved_fraction(q, 32) for q in (2, 7, 8, 10)] == [0.6, 0.6, 0.5, 0.1]


def test_the_compile_cache_lives_in_the_user_cache(monkeypatch, tmp_path):
    from qkd_pl.circuits.compiled import cache_folder

    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setenv("QKD_CACHE_DIR", str(tmp_path))
    assert cache_folder() == tmp_path / "inductor" / f"torch-{torch.__version__}"
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_folder() == tmp_path / "mine"  # a folder the user chose stays theirs


def angle_circuit(inputs, weights):
    qml.AngleEmbedding(inputs, wires=range(3))
    qml.StronglyEntanglingLayers(weights, wires=range(3))
    return [qml.expval(qml.PauliZ(i)) for i in range(3)]


def users_student() -> torch.nn.Module:
    """A researcher's own model around a plain TorchLayer on qkd.fused (the Distiller accelerates it so)."""
    qnode = qml.QNode(angle_circuit, qml.device("qkd.fused", wires=3), interface="torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3),
                                qml.qnn.TorchLayer(qnode, {"weights": (2, 3, 3)}), torch.nn.Linear(3, 4))
    assert accelerate(model) == 1
    return model


@pytest.mark.slow
def test_a_users_torch_layer_student_compiles_too(data, teacher, tmp_path, monkeypatch, eager_compile, spy):
    rows = loop.Rows(data.x_train, data.y_train, teacher)
    loss = BatchLoss(KD("dkd"), with_teacher=True)
    eager, out_e = fit(data, rows, CFG, loss, tmp_path / "eager", "off", monkeypatch, model=users_student())
    compiled, out_c = fit(data, rows, CFG, loss, tmp_path / "compiled", "on", monkeypatch, model=users_student())
    assert spy[1].runs > 0
    assert_same(eager, compiled, out_e, out_c)


def test_a_gradient_off_by_a_little_is_refused(data, teacher, tmp_path, monkeypatch, spy):
    """Only the gradients the check reads are changed (by 1e-4 of themselves): the loss and logits agree."""
    def grads_off(out, args, n, k):
        out[n + k + 4:] = [g * (1 + 1e-4) for g in out[n + k + 4:]]

    tampered(monkeypatch, spy, grads_off)
    assert_refused(data, teacher, tmp_path, monkeypatch, spy, "differs from the eager step in the gradient of")


def test_a_setting_changed_mid_fit_sends_the_step_back_to_eager(data, teacher, tmp_path, monkeypatch,
                                                                 eager_compile, spy):
    rows = loop.Rows(data.x_train, data.y_train, teacher)
    runs = []
    for mode in ("off", "on"):
        objective = KD("hinton", temperature=2.0)

        def hotter(row, objective=objective):  # a callback that changes the loss after epoch 1
            objective.temperature = 8.0

        runs.append(fit(data, rows, CFG, BatchLoss(objective, True), tmp_path / mode, mode, monkeypatch,
                        on_epoch=hotter))
    (full, *_) = spy[1].shapes.values()
    assert full.refused == "a loss or optimizer setting changed after it was compiled" and spy[1].runs > 0
    assert_same(runs[0][0], runs[1][0], runs[0][1], runs[1][1])


def test_fits_of_one_shape_in_one_process_compile_once(data, teacher, tmp_path, monkeypatch, spy):
    made = []
    monkeypatch.setattr(compiled_step, "compile_graph", lambda graph, inputs: made.append(1) or graph)
    monkeypatch.setattr(compiled_step, "COMPILED", {})
    rows = loop.Rows(data.x_train, data.y_train, teacher)
    for run in ("a", "b"):
        fit(data, rows, CFG, BatchLoss(KD("hinton"), True), tmp_path / run, "on", monkeypatch)
    assert len(made) == 1 and all(steps.runs > 0 for steps in spy)
