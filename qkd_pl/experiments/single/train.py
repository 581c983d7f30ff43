"""Train a teacher or a student into a run folder, and evaluate a saved run on any device.

These functions are what the CLI calls; they take the same dataclasses the CLI builds, so
a script can run exactly what a command line runs.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ...config import RunConfig, config_differences
from ...data import DataBundle, load_data
from ...data.bundle import load_transfer, teacher_data_report
from ...data.digest import tensor_digest
from ...devices import Backend, resolve_backend
from ...devices.torch_device import resolve_torch_device, student_torch_device
from ...errors import QkdError, QkdInterrupted
from ...students import build_student, count_parameters
from ...teachers import ENSEMBLE, Ensemble, build_teacher
from ...teachers.cache import teacher_logits as cached_teacher_logits
from ...training import accuracy, atomic_write_json, fit, load_checkpoint, save_checkpoint
from ...training.checkpoint import read_run_checkpoint
from ...training.loop import load_resume_state
from ...validate import validate
from .plots import plot_history
from .remote_eval import batched_devices, remote_accuracy
from .runs import RunResult, open_run_dir, run_dir_for


def build_model(cfg: RunConfig, image_shape, n_classes: int, mean, std, backend: Backend | None,
                members: list[dict] | None = None) -> nn.Module:
    """``members``: an ensemble's member configurations (from its checkpoint's meta)."""
    if cfg.kind == "teacher" and cfg.teacher.arch == ENSEMBLE:
        return Ensemble([build_model(RunConfig.from_dict(m), image_shape, n_classes, mean, std, None)
                         for m in members or []])
    if cfg.kind == "teacher":
        return build_teacher(cfg.teacher.arch, image_shape, n_classes, mean, std)
    return build_student(cfg.student, backend, image_shape, n_classes, mean, std)


def checkpoint_path(path: str | Path) -> Path:
    """A run folder means its best checkpoint; a file is taken as given."""
    path = Path(path)
    if path.is_dir():
        return path / "best.pt"
    if not path.exists():
        raise QkdError(f"{path} does not exist; give a run folder or a .pt checkpoint")
    return path


def load_model(path: str | Path, backend: Backend | None = None) -> tuple[nn.Module, RunConfig, dict[str, Any]]:
    """Rebuild a saved model from its checkpoint alone (config and shapes are stored inside)."""
    path = checkpoint_path(path)
    return model_from_checkpoint(read_run_checkpoint(path)[0], path, backend)


def model_from_checkpoint(ckpt: dict[str, Any], path: Path, backend: Backend | None = None
                          ) -> tuple[nn.Module, RunConfig, dict[str, Any]]:
    """The model, configuration and metadata of a checkpoint already read from ``path``."""
    cfg = RunConfig.from_dict(ckpt["config"])
    meta = ckpt["meta"]
    if cfg.kind == "student" and backend is None:
        backend = resolve_backend(cfg.student.device, cfg.student.qubits)
    n = len(meta["classes"])
    model = build_model(cfg, tuple(meta["image_shape"]), n, torch.zeros(meta["image_shape"][0]),
                        torch.ones(meta["image_shape"][0]), backend, meta.get("members"))
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError:
        raise QkdError(f"{path}: the weights do not fit the model its configuration describes") from None
    return model, cfg, meta


def train_teacher(cfg: RunConfig, out: str | Path, name: str | None = None, resume: bool = False,
                  data_dir: str | None = None, progress: bool = True, overwrite: bool = False,
                  torch_device: str = "auto") -> RunResult:
    """Train a classical teacher (or assemble an ensemble of trained ones) into a run folder.

    The best-on-validation weights are kept in ``best.pt``; the test split is used once, at
    the end, for ``test_metrics.json``.

    Args:
        cfg: the run's configuration (``kind="teacher"``).
        out: the parent folder of run folders.
        name: the run folder's name; default ``teacher-<dataset>-<hash of cfg>``.
        resume: continue the folder's last checkpoint (same configuration; epochs may grow).
        data_dir: where the datasets live.
        progress: progress bars and per-epoch lines.
        overwrite: replace a finished run in the folder.
        torch_device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.

    Returns:
        The run folder, the test metrics, the selected epoch, the parameter counts and the time.

    Example:
        >>> t = train_teacher(RunConfig("teacher", data=DataConfig("digits"), teacher=TeacherConfig("lenet5")),
        ...                   "runs", progress=False)
        >>> t.test.accuracy > 0.9
        True
    """
    cfg = validate(cfg)
    device = resolve_torch_device(torch_device)
    if cfg.teacher.arch == ENSEMBLE:
        return assemble_ensemble(cfg, out, name, resume, data_dir, progress, overwrite, torch_device)
    run_dir_for(out, name, cfg, resume, overwrite)  # refuse a folder holding another run before any work
    data = load_data(cfg.data, data_dir).to(device)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg, data.image_shape, data.n_classes, data.mean, data.std, None).to(device)
    run_dir, resuming = open_run_dir(out, name, cfg, resume, overwrite)
    _say(progress, f"teacher {cfg.teacher.arch} on {cfg.data.dataset} ({device}): {data.summary()}")
    return _train_and_test(cfg, model, data, run_dir, resuming, None, progress)


def assemble_ensemble(cfg: RunConfig, out: str | Path, name: str | None = None, resume: bool = False,
                      data_dir: str | None = None, progress: bool = True, overwrite: bool = False,
                      torch_device: str = "auto") -> RunResult:
    """An ensemble "run": its trained members, frozen and averaged, validated and tested once.

    Its data configuration is its members' (they must share one); nothing is trained.
    """
    cfg = validate(cfg)
    paths = cfg.teacher.members
    loaded = [load_model(p) for p in paths]
    for p, (_, mcfg, _) in zip(paths, loaded):
        if mcfg.kind != "teacher" or mcfg.teacher.arch == ENSEMBLE:
            raise QkdError(f"ensemble member {p} is not a trained single teacher (it is a {mcfg.kind} "
                           f"{mcfg.teacher.arch if mcfg.teacher else ''} run)")
        diffs = config_differences(loaded[0][1].to_dict()["data"], mcfg.to_dict()["data"], "data.")
        if diffs:
            raise QkdError(f"ensemble members {paths[0]} and {p} were trained on other data ({'; '.join(diffs)})")
    cfg = dataclasses.replace(cfg, data=loaded[0][1].data)
    run_dir_for(out, name, cfg, resume, overwrite)
    device = resolve_torch_device(torch_device)
    data = load_data(cfg.data, data_dir).to(device)
    model = Ensemble([m for m, _, _ in loaded]).eval().to(device)
    run_dir, _ = open_run_dir(out, name, cfg, resume, overwrite)
    t0 = time.perf_counter()
    meta = {"image_shape": list(data.image_shape), "classes": data.classes, "trained_on": f"{device.type} (torch)",
            "members": [c.to_dict() for _, c, _ in loaded]}
    save_checkpoint(run_dir / "best.pt", {"config": cfg.to_dict(), "meta": meta, "epoch": 0,
                                          "state_dict": model.state_dict()})
    val = accuracy(model, data.x_val, data.y_val)
    atomic_write_json(run_dir / "metrics.json", [])
    return _write_test(cfg, model, data, run_dir, {"epoch": 0, "val_accuracy": val.accuracy}, None,
                       time.perf_counter() - t0, progress)


@dataclass(frozen=True)
class Evaluation:
    """One evaluation of a saved run on its test split (``evaluation-<device>.json``)."""

    test_accuracy: float
    test_loss: float
    n_test: int
    trained_on: str | None
    evaluated_on: str
    shots: int | None
    noise: str | None
    limit: int | None
    checkpoint: str
    seconds: float
    per_circuit: bool = False
    batch_size: int | None = None  # shot-based devices: images per batch (per job when batched)
    jobs_submitted: int | None = None  # batched device: primitive jobs this evaluation submitted ...
    jobs_retrieved: int | None = None  # ... and retrieved by id from an earlier, interrupted one
    transpilations: int | None = None
    depth: int | None = None  # of the transpiled circuit
    two_qubit_gates: int | None = None
    ledger: str | None = None  # the job ids, as submitted


@dataclass(frozen=True)
class LoadedTeacher:
    """A frozen teacher as a student run uses it: the network, where it came from, and the
    SHA-256 of the checkpoint's bytes (the key of its cached logits), all from one read."""

    model: nn.Module
    path: Path
    sha256: str
    data: dict[str, Any]  # which images it was trained on (teacher_data_report)


@dataclass(frozen=True)
class StudentPlan:
    """A student run, checked and resolved before any data is loaded or anything is written."""

    cfg: RunConfig
    backend: Backend
    teacher: LoadedTeacher | None
    device: torch.device  # the student's (the CPU, where its circuit runs)
    teacher_device: torch.device  # where the teacher computes its logits


def plan_student(cfg: RunConfig, torch_device: str = "auto", data_dir: str | None = None,
                 frozen_inputs: bool = False) -> StudentPlan:
    """Validate a student configuration, resolve its device, and load its teacher once.

    Args:
        cfg: a student run's configuration.
        torch_device: ``auto`` or ``cpu`` for the student; the teacher's logits are computed on
            CUDA when ``auto`` finds it (``cuda`` itself is refused: see devices/torch_device.py).
        data_dir: where the datasets live (the teacher's images are checked against the student's).
        frozen_inputs: the classical front end will be frozen (fine-tuning), for the memory check.

    Returns:
        The plan ``train_student`` executes: the validated configuration, the resolved
        backend, and the teacher (or None for a baseline).

    Raises:
        QkdError: the configuration is invalid, the device cannot train it, or the teacher is
            missing, unreadable, not a teacher, or trained on images it must not have seen (or
            without images the student trains on).
    """
    cfg = validate(cfg, frozen_inputs)
    s = cfg.student
    backend = resolve_backend(s.device, s.qubits, s.shots, s.noise, training=True)
    device = student_torch_device(torch_device)
    teacher = _load_teacher(cfg, data_dir) if cfg.distill and cfg.distill.teacher else None
    return StudentPlan(cfg, backend, teacher, device, resolve_torch_device(torch_device))


@dataclass(frozen=True)
class StartFrom:
    """Fine-tuning: the weights a student starts from, and the modules that stay as they are."""

    checkpoint: Path
    frozen: tuple[str, ...] = ()


def train_student(cfg: RunConfig, out: str | Path, name: str | None = None, resume: bool = False,
                  data_dir: str | None = None, progress: bool = True, overwrite: bool = False,
                  torch_device: str = "auto", on_epoch: Callable[[dict[str, float]], None] | None = None,
                  test: bool = True, start_from: StartFrom | None = None) -> RunResult:
    """Train a quantum student (a baseline, or distilled from ``cfg.distill.teacher``) into a run folder.

    Args:
        cfg: the run's configuration (``kind="student"``).
        out: the parent folder of run folders.
        name: the run folder's name; default ``student-<dataset>-<hash of cfg>``.
        resume: continue the folder's last checkpoint (same configuration).
        data_dir: where the datasets live (default ``$QKD_DATA_DIR``, else the user cache).
        progress: progress bars and per-epoch lines.
        overwrite: replace a finished run in the folder.
        torch_device: ``auto`` or ``cpu`` (see ``plan_student``).
        on_epoch: called with each epoch's row of ``metrics.json`` (a tuner prunes from here by
            raising).
        test: False for model selection: no test evaluation; ``selection.json`` holds the best
            validation accuracy instead of ``test_metrics.json``, and the result's ``test`` is None.
        start_from: fine-tuning: start from these weights (a student of the same architecture),
            keep its ``frozen`` modules fixed, and keep them as ``best.pt`` (epoch 0) unless an
            epoch beats their validation accuracy.

    Returns:
        The run folder, the test metrics, the selected epoch, the parameter counts and the time.

    Example:
        >>> r = train_student(RunConfig("student", data=DataConfig("digits", classes=[0, 1]),
        ...                             student=StudentConfig(qubits=2)), "runs", progress=False)
        >>> r.test.accuracy > 0.9
        True
    """
    plan = plan_student(cfg, torch_device, data_dir, start_from is not None and bool(start_from.frozen))  # refuse first
    cfg, backend, teacher = plan.cfg, plan.backend, plan.teacher
    run_dir_for(out, name, cfg, resume, overwrite)
    data = load_data(cfg.data, data_dir)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg, data.image_shape, data.n_classes, data.mean, data.std, backend)
    if hasattr(model, "fit_reduction"):
        model.fit_reduction(data.x_train)
    if start_from is not None:
        _start_from(model, start_from)
    run_dir, resuming = open_run_dir(out, name, cfg, resume, overwrite)
    _say(progress, f"student on {cfg.data.dataset}: {data.summary()}")
    _say(progress, f"device {backend.describe()}")
    teacher_logits, transfer, extra = None, None, {}
    if teacher is not None:
        # The teacher is frozen and the training images are not augmented, so its logits are
        # the same every epoch and for every student of this teacher: computed once, cached.
        def logits_of(split: str, x: torch.Tensor) -> tuple[torch.Tensor, bool]:
            out, hit = cached_teacher_logits(teacher.model.to(plan.teacher_device), teacher.sha256, cfg.data, split,
                                             x.to(plan.teacher_device), source=data.source)
            return out.to(plan.device), hit

        teacher_logits, hit = logits_of("train", data.x_train)
        if cfg.distill.transfer != "none":
            x_transfer = load_transfer(cfg.data, cfg.distill.transfer, data_dir)
            transfer = (x_transfer, logits_of(f"transfer-{cfg.distill.transfer}", x_transfer)[0])
            extra["transfer_images"] = len(x_transfer)
            _say(progress, f"transfer set: {len(x_transfer)} unlabelled images, learnt from the teacher's "
                           f"{'outputs' if cfg.distill.transfer_labels == 'soft' else 'top class (pseudo-labels)'}")
        teacher_acc = (teacher_logits.argmax(1) == data.y_train).float().mean().item()
        extra.update({"teacher_checkpoint": str(teacher.path), "teacher_sha256": teacher.sha256,
                      "teacher_train_accuracy": teacher_acc, "teacher_data": teacher.data})
        _say(progress, f"teacher {cfg.distill.teacher} ({'cached logits' if hit else 'logits computed once'}): "
                       f"train accuracy {teacher_acc:.4f}, T={cfg.distill.temperature}, alpha={cfg.distill.alpha}; "
                       f"trained on {teacher.data['train_images']} images, the student's "
                       f"{teacher.data['student_train_images']} among them")
    if start_from is not None:
        extra["started_from"] = str(start_from.checkpoint)
    return _train_and_test(cfg, model, data, run_dir, resuming, backend, progress, teacher_logits=teacher_logits,
                           transfer=transfer, extra=extra, on_epoch=on_epoch, test=test,
                           keep_start=start_from is not None)


def _start_from(model: nn.Module, start: StartFrom) -> None:
    state = load_checkpoint(start.checkpoint)["state_dict"]
    try:
        model.load_state_dict(state)
    except RuntimeError:
        raise QkdError(f"{start.checkpoint}: its weights do not fit this student") from None
    for name in start.frozen:
        for p in getattr(model, name).parameters():
            p.requires_grad_(False)


def _load_teacher(cfg: RunConfig, data_dir: str | None) -> LoadedTeacher:
    path = checkpoint_path(cfg.distill.teacher)
    ckpt, sha = read_run_checkpoint(path)
    teacher, tcfg, _ = model_from_checkpoint(ckpt, path)
    if tcfg.kind != "teacher":
        raise QkdError(f"--teacher {cfg.distill.teacher} is a {tcfg.kind} run, not a teacher; train one with "
                       f"qkd train-teacher")
    try:
        seen = teacher_data_report(tcfg.data, cfg.data, data_dir)
    except QkdError as exc:
        raise QkdError(f"--teacher {cfg.distill.teacher}: {exc}") from None
    for p in teacher.parameters():
        p.requires_grad_(False)
    return LoadedTeacher(teacher.eval(), path, sha, seen)


def _train_and_test(cfg: RunConfig, model: nn.Module, data: DataBundle, run_dir: Path, resuming: bool,
                    backend: Backend | None, progress: bool, *, teacher_logits: torch.Tensor | None = None,
                    transfer: tuple[torch.Tensor, torch.Tensor] | None = None, extra: dict | None = None,
                    on_epoch: Callable[[dict[str, float]], None] | None = None, test: bool = True,
                    keep_start: bool = False) -> RunResult:
    t0 = time.perf_counter()
    device = _where(model, backend)
    meta = {"image_shape": list(data.image_shape), "classes": data.classes, "trained_on": device}
    resume_state = load_resume_state(run_dir) if resuming else None
    if resume_state is not None:
        _say(progress, f"resuming {run_dir} after epoch {resume_state['epoch']}")
    start_best = None
    if keep_start:  # the starting weights are epoch 0, the score to beat
        if resume_state is None:
            start_best = {"val_accuracy": accuracy(model, data.x_val, data.y_val).accuracy, "epoch": 0}
            save_checkpoint(run_dir / "best.pt", {"config": cfg.to_dict(), "meta": meta, "epoch": 0,
                                                  "state_dict": model.state_dict()})
            atomic_write_json(run_dir / "start.json", start_best)
            _say(progress, f"starting weights: validation accuracy {start_best['val_accuracy']:.4f} on {device}")
        extra = {**(extra or {}), "start_val_accuracy": json.loads((run_dir / "start.json").read_text())["val_accuracy"]}
    try:
        result = fit(model, data, cfg.train, run_dir, {"config": cfg.to_dict(), "meta": meta},
                     teacher_logits=teacher_logits, distill=cfg.distill, resume_state=resume_state, progress=progress,
                     transfer=transfer, on_epoch=on_epoch, start_best=start_best)
    except KeyboardInterrupt:
        done = len(json.loads((run_dir / "metrics.json").read_text())) if (run_dir / "metrics.json").exists() else 0
        raise QkdInterrupted(f"stopped during epoch {done + 1}; {run_dir} keeps the {done} finished epoch(s): "
                             f"run the same command with --resume to continue") from None
    best = load_checkpoint(run_dir / "best.pt")
    model.load_state_dict(best["state_dict"])
    plot_history(result["history"], run_dir / "curves.png", title=run_dir.name)
    if not test:  # model selection (qkd tune): the test split stays unseen
        seconds = time.perf_counter() - t0
        atomic_write_json(run_dir / "selection.json", {"best_epoch": result["best"]["epoch"],
                                                       "best_val_accuracy": result["best"]["val_accuracy"],
                                                       "seconds": seconds, **(extra or {})})
        return RunResult(run_dir, None, result["best"], count_parameters(model), seconds, device)
    return _write_test(cfg, model, data, run_dir, result["best"], backend, time.perf_counter() - t0, progress,
                       extra)


def _write_test(cfg: RunConfig, model: nn.Module, data: DataBundle, run_dir: Path, best: dict[str, Any],
                backend: Backend | None, seconds: float, progress: bool, extra: dict | None = None) -> RunResult:
    """The one look at the test split, written to test_metrics.json."""
    device = _where(model, backend)
    test = accuracy(model, data.x_test, data.y_test)
    params = count_parameters(model)
    atomic_write_json(run_dir / "test_metrics.json", {
        "test_accuracy": test.accuracy, "test_loss": test.loss, "n_test": test.n,
        "best_epoch": best["epoch"], "best_val_accuracy": best["val_accuracy"],
        "parameters": params, "trained_on": device,
        "backend_reason": backend.reason if backend else None, "seconds": seconds,
        **({"data_source": data.source} if data.source else {}), **(extra or {})})
    _say(progress, f"best validation accuracy {best['val_accuracy']:.4f} at epoch "
                   f"{best['epoch']}; test accuracy {test.accuracy:.4f}; results in {run_dir}")
    return RunResult(run_dir, test, best, params, seconds, device)


def evaluate_run(path: str | Path, device: str | None = None, shots: int | None = None, noise: str | None = None,
                 data_dir: str | None = None, limit: int | None = None, per_circuit: bool = False,
                 mode: str = "batch", batch_size: int | None = None, yes: bool = False,
                 ask: Callable[[str], bool] | None = None, new_evaluation: bool = False,
                 resubmit_lost: bool = False) -> Evaluation:
    """Test a saved run's best checkpoint, optionally on another device than it was trained on.

    Shot-based and remote devices are evaluated batch by batch with retries, and their progress
    is saved; on the batched device every job id is recorded as it is submitted, so an
    interrupted hardware evaluation retrieves its jobs instead of submitting them twice.

    Args:
        path: a run folder (its ``best.pt``) or a checkpoint file.
        device: any ``--device`` name; default the one it was trained on.
        shots: shots of a shot-based device (default 1024).
        noise: with ``qiskit.aer``, the IBM fake backend whose noise model to apply.
        data_dir: where the datasets live.
        limit: evaluate only the first N test images.
        per_circuit: on a shot-based device, pennylane-qiskit's path (a job per image).
        mode: on IBM Quantum, ``batch``, ``session`` or ``job``.
        batch_size: images per batch (per job on the batched device; default 1000, or 16 per circuit,
            or, continuing an evaluation, the one it began with).
        yes: submit to paid hardware without asking.
        ask: shows the plan and answers whether to submit it (a terminal prompt); without it, and
            without ``yes``, a paid submission is refused.
        new_evaluation: begin another job ledger beside one that records other work (another
            checkpoint, batch size, backend, shots or images), instead of being refused.
        resubmit_lost: submit again the images of jobs the service no longer knows (marked lost).

    Returns:
        The evaluation, also written to ``evaluation-<device>.json`` beside the checkpoint.

    Example:
        >>> evaluate_run("runs/student-digits-1a2b3c4d", device="lightning.qubit").test_accuracy
        0.93...
    """
    ckpt_file = checkpoint_path(path)
    ckpt, digest = read_run_checkpoint(ckpt_file)
    saved = RunConfig.from_dict(ckpt["config"])
    backend = None
    if saved.kind == "student":
        s = saved.student
        backend = resolve_backend(device or s.device, s.qubits, shots, noise, per_circuit=per_circuit, mode=mode)
    elif device is not None:
        raise QkdError(f"{path} is a teacher; --device applies to quantum students only")
    if backend is not None and per_circuit and backend.paid and not yes:
        raise QkdError("--per-circuit on IBM Quantum hardware submits one job per image and records none of them "
                       "(a resumed run submits unfinished images again): add --yes to accept that, or leave "
                       "--per-circuit out")
    model, cfg, meta = model_from_checkpoint(ckpt, ckpt_file, backend)
    data = load_data(cfg.data, data_dir)
    x, y = data.x_test, data.y_test
    if limit is not None:  # the first N test images: for hardware, where every circuit costs
        x, y = x[:limit], y[:limit]
    t0 = time.perf_counter()
    evaluated_on = backend.device if backend else "cpu (torch)"
    work_device = evaluated_on
    if backend is not None and backend.device == "ibm:least_busy":
        # The backend it resolved to this time names the work: a rerun that resolves to another is
        # another evaluation, and --device ibm:<name> continues this one.
        names = sorted({d.runner.name for d in batched_devices(model)})
        if len(names) == 1:
            work_device = f"ibm:{names[0]}"
            print(f"ibm:least_busy is {names[0]} now; --device {work_device} continues this evaluation", flush=True)
    tag = (work_device.split(" ")[0].replace(":", "-") + (f"-noise-{noise}" if noise else "")
           + ("-per-circuit" if per_circuit else ""))
    remote = None
    if backend is not None and backend.remote:  # Qiskit jobs: slow and fallible
        # What the work is, never how it was named (the path as typed, the working folder): a rerun
        # spelled differently must find the jobs it paid for. The images are the whole test split's
        # (a --limit takes a prefix of them, and the ledger outlives a change of --limit).
        context = {"sha256": digest, "device": work_device, "shots": backend.shots, "noise": backend.noise,
                   "per_circuit": per_circuit, "data": cfg.data.dataset, "source": data.source,
                   "images": tensor_digest(data.x_test)}
        if work_device != backend.device and not new_evaluation:
            _refuse_unfinished_elsewhere(ckpt_file.parent, context)
        remote = remote_accuracy(model, x, y, backend, ckpt_file.parent / f"evaluation-{tag}", context, limit,
                                 batch_size, _approval(yes, ask), new_evaluation, resubmit_lost)
        test = remote.score
    else:
        test = accuracy(model, x, y, batch_size=1000 if backend is not None and backend.shots else 256)
    report = Evaluation(test.accuracy, test.loss, test.n, meta.get("trained_on"), evaluated_on,
                        backend.shots if backend else None, backend.noise if backend else None, limit,
                        str(ckpt_file), time.perf_counter() - t0, per_circuit,
                        **({k: getattr(remote, k) for k in REMOTE_FIELDS} if remote else {}))
    atomic_write_json(ckpt_file.parent / f"evaluation-{tag}.json", dataclasses.asdict(report))
    return report


def _refuse_unfinished_elsewhere(folder: Path, context: dict[str, Any]) -> None:
    """ibm:least_busy: a ledger of this same work on another backend, with jobs still out, is
    continued there (or a new evaluation begun on purpose), never left behind while the same
    images are paid for again on whichever backend is least busy now."""
    from ...devices.jobs import read_ledger

    same = ("sha256", "shots", "noise", "per_circuit", "images")
    for path in sorted(folder.glob("evaluation-ibm-*.jobs.json")):
        saved, records = read_ledger(path)
        if saved.get("device") != context["device"] and all(saved.get(k) == context.get(k) for k in same) \
                and any(r.status == "submitted" for r in records):
            raise QkdError(f"{path} holds unfinished jobs of this evaluation on {saved.get('device')}: rerun with "
                           f"--device {saved.get('device')} to retrieve them, or add --new-evaluation to evaluate "
                           f"on {context['device']}, which ibm:least_busy picks now")


REMOTE_FIELDS = ("batch_size", "jobs_submitted", "jobs_retrieved", "transpilations", "depth", "two_qubit_gates",
                 "ledger")  # what an Evaluation reports of a RemoteScore


def _approval(yes: bool, ask: Callable[[str], bool] | None) -> Callable[[str], None]:
    """What stands between a plan and a paid submission: ``--yes``, a terminal's answer, or a refusal."""

    def approve(plan: str) -> None:
        print(f"plan: {plan}", flush=True)
        if yes:
            return
        if ask is None:
            raise QkdError("submitting to IBM Quantum hardware needs confirmation and there is no terminal to ask: "
                           "rerun with --yes to submit this plan")
        if not ask("submit these jobs?"):
            raise QkdError("not submitted: the plan was declined")

    return approve


def _where(model: nn.Module, backend: Backend | None) -> str:
    """What trained a model: the student's circuit device, or the torch device of a teacher."""
    if backend is not None:
        return backend.device
    first = next(model.parameters(), None)
    return f"{first.device.type if first is not None else 'cpu'} (torch)"


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, flush=True)
