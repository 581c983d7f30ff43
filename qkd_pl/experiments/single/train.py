"""Train a teacher or a student from a configuration: adapters over the Distiller.

What a configuration adds to a Distiller run: qkd-pl's modules and data built from it, the
checks before any work (``plan_student``), the run folder's name and config.json (runs.py), the
teacher's data rules, fine-tuning's start, and the test fields a report reads. These functions
are what the CLI, grids and tune call; they take the same dataclasses the CLI builds, so a
script can run exactly what a command line runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
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
from ...devices import Backend, resolve_backend
from ...devices.torch_device import resolve_torch_device, student_torch_device
from ...distill import Distiller, FitJob, FitResult, RunRecord, fit_together
from ...distill.saved import build_model, checkpoint_path, load_model, model_from_checkpoint, user_student
from ...distill.teacher import FrozenTeacher, load_teacher_run
from ...errors import QkdError, QkdInterrupted
from ...losses import objective_from_config
from ...teachers import ENSEMBLE, Ensemble
from ...training import accuracy, atomic_write_json, load_checkpoint, save_checkpoint
from ...validate import validate
from .hardware import say_hardware_cost
from .runs import RunResult, open_run_dir, run_dir_for

__all__ = ["StartFrom", "StudentPlan", "assemble_ensemble", "build_model", "checkpoint_path",
           "load_model", "model_from_checkpoint", "plan_student", "train_student", "train_students",
           "train_teacher"]

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
    if resuming and start_from is not None and (run_dir / "start.json").exists():
        began = json.loads((run_dir / "start.json").read_text()).get("source_sha256")
        if began is not None and began != _sha256(start_from.checkpoint):
            raise QkdError(f"{run_dir} began from other weights of {start_from.checkpoint} (it was retrained since): "
                           f"pass --overwrite to start it again from the current ones")
    _say(progress, f"teacher {cfg.teacher.arch} on {cfg.data.dataset} ({device}): {data.summary()}")
    distiller = Distiller(None, None, cfg.train, progress=progress)
    return _train_and_test(distiller, cfg, model, data, run_dir, resuming, None, progress)


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
    return _write_test(Distiller(None, None, cfg.train, progress=progress), model, data, run_dir,
                       {"epoch": 0, "val_accuracy": val.accuracy}, None, t0)


@dataclass(frozen=True)
class StudentPlan:
    """A student run, checked and resolved before any data is loaded or anything is written."""

    cfg: RunConfig
    backend: Backend | None  # None for a user's own student (--student module.path:factory)
    teacher: FrozenTeacher | None  # its key is the SHA-256 of its checkpoint file
    device: torch.device  # the student's: the CPU, or CUDA for a qkd.fused student given --torch-device cuda
    teacher_device: torch.device  # where the teacher computes its logits


def plan_student(cfg: RunConfig, torch_device: str = "auto", data_dir: str | None = None,
                 frozen_inputs: bool = False) -> StudentPlan:
    """Validate a student configuration, resolve its device, and load its teacher once.

    Args:
        cfg: a student run's configuration.
        torch_device: ``auto`` (the student on the CPU, the teacher's logits on CUDA when there is
            one), ``cpu``, or ``cuda[:N]`` (both on that GPU; for students on qkd.fused only, see
            devices/torch_device.py).
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
    # A user's own student runs where its parameters are; qkd-pl's --device does not reach it.
    backend = None if user_student(cfg) else resolve_backend(s.device, s.qubits, s.shots, s.noise, training=True)
    device = student_torch_device(torch_device, backend)
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
    job = _student_job(cfg, out, name, resume, data_dir, progress, overwrite, torch_device, on_epoch, test,
                       start_from)
    fit, t0 = _fit_job(job)
    run = _fitted(job, lambda: job.distiller.fit(fit.student, fit.train_set, fit.val_set, fit.run_dir,
                                                 fit.transfer_set, resume=fit.resume, on_epoch=fit.on_epoch,
                                                 record=fit.record))
    return _tested(job, run, t0)


def train_students(cfgs: list[RunConfig], out: str | Path, names: list[str], resume: list[bool],
                   data_dir: str | None = None, progress: bool = True, torch_device: str = "auto",
                   stack: bool = True) -> list[RunResult]:
    """Train several students, those of one shape as one stacked model (``distill.fit_together``).

    Every student gets what ``train_student`` gives it alone (its run folder, checkpoints, resume
    and test), to float rounding; the data each configuration names is read once. Its
    ``test_metrics.json`` records ``stacked_with``: how many students trained as one with it.

    Args:
        cfgs: the students' configurations.
        out: the parent folder of their run folders.
        names: each run folder's name.
        resume: per student, continue its folder's last checkpoint.
        data_dir, progress, torch_device: as for ``train_student``.
        stack: False trains them one after another.

    Returns:
        One ``RunResult`` per configuration, in order; ``seconds`` is each student's share of the
        time they took together.
    """
    t_start = time.perf_counter()
    loaded: dict[str, Any] = {}
    jobs = [_student_job(c, out, n, r, data_dir, progress, False, torch_device, None, True, None, loaded)
            for c, n, r in zip(cfgs, names, resume)]
    fits = [_fit_job(j)[0] for j in jobs]
    runs = _fitted(jobs[0], lambda: fit_together(fits, stack=stack)) if jobs else []
    share = (time.perf_counter() - t_start) / max(1, len(jobs))
    results = []
    for job, run in zip(jobs, runs):
        results.append(_tested(job, run, time.perf_counter() - share))
    return results


@dataclass
class _StudentJob:
    """A student run's pieces, built from its configuration, for the Distiller's fit."""

    cfg: RunConfig
    distiller: Distiller
    model: nn.Module
    data: DataBundle
    run_dir: Path
    resuming: bool
    backend: Backend | None
    progress: bool
    transfer: Any
    extra: dict[str, Any]
    on_epoch: Callable[[dict[str, float]], None] | None
    test: bool
    keep_start: bool
    rng: torch.Tensor | None = None  # the global RNG state after its model was built: where its lone fit starts


def _student_job(cfg: RunConfig, out: str | Path, name: str | None, resume: bool, data_dir: str | None,
                 progress: bool, overwrite: bool, torch_device: str,
                 on_epoch: Callable[[dict[str, float]], None] | None, test: bool, start_from: StartFrom | None,
                 loaded: dict[str, Any] | None = None) -> _StudentJob:
    """Everything ``train_student`` does before the Distiller's fit (``loaded``: data already read, by its
    configuration, so students of one dataset read it once)."""
    loaded = {} if loaded is None else loaded
    plan = plan_student(cfg, torch_device, data_dir, start_from is not None and bool(start_from.frozen))  # refuse first
    cfg, backend, teacher = plan.cfg, plan.backend, plan.teacher
    run_dir_for(out, name, cfg, resume, overwrite)
    key = repr(cfg.data)
    if key not in loaded:
        loaded[key] = load_data(cfg.data, data_dir)
    data = loaded[key]
    transfer, extra = None, {}
    ceiling = cfg.distill is not None and cfg.distill.transfer_labels == "true"
    if cfg.distill is not None and cfg.distill.transfer != "none" and (teacher is not None or ceiling):
        # before the run folder: a pool that leaves no image is refused without leaving one behind
        key = repr((cfg.data, cfg.distill.transfer, ceiling))
        if key not in loaded:
            loaded[key] = load_transfer(cfg.data, cfg.distill.transfer, data_dir, labels=ceiling)
        transfer = loaded[key]
        extra["transfer_images"] = len(transfer[0] if ceiling else transfer)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg, data.image_shape, data.n_classes, data.mean, data.std, backend)
    if hasattr(model, "fit_reduction"):
        model.fit_reduction(data.x_train)
    if start_from is not None:
        _start_from(model, start_from)
    if backend is not None:  # qkd-pl's students (a user's stays where its factory put it)
        model = model.to(plan.device)
    run_dir, resuming = open_run_dir(out, name, cfg, resume, overwrite)
    if resuming and start_from is not None and (run_dir / "start.json").exists():
        began = json.loads((run_dir / "start.json").read_text()).get("source_sha256")
        if began is not None and began != _sha256(start_from.checkpoint):
            raise QkdError(f"{run_dir} began from other weights of {start_from.checkpoint} (it was retrained since): "
                           f"pass --overwrite to start it again from the current ones")
    _say(progress, f"student on {cfg.data.dataset}: {data.summary()}")
    _say(progress, f"device {backend.describe()}" if backend else f"student {cfg.student.arch}: your own module, "
                                                                      f"on the torch device of its parameters")
    if backend is not None:  # on a fake IBM device's noise: what the circuit costs there, warned if mostly noise
        say_hardware_cost(cfg.student, backend.device, progress, optimization_level=backend.optimization_level)
    if teacher is not None:
        seen = teacher.data
        _say(progress, f"teacher {cfg.distill.teacher}: T={cfg.distill.temperature}, alpha={cfg.distill.alpha}; "
                       f"trained on {seen['train_images']} images, the student's {seen['student_train_images']} "
                       f"among them" + (f", {seen['pool_images_seen']} of the {seen['pool_images']} of its transfer "
                                        f"pool" if "pool_images" in seen else ""))
        extra.update({"teacher_checkpoint": str(teacher.path), "teacher_sha256": teacher.key,
                      "teacher_data": teacher.data})
    if start_from is not None:
        extra["started_from"] = str(start_from.checkpoint)
    distiller = Distiller(teacher, objective_from_config(cfg.distill) if teacher is not None else None, cfg.train,
                          transfer_labels=cfg.distill.transfer_labels if teacher is not None or ceiling else "soft",
                          teacher_outputs=cfg.distill.teacher_outputs if teacher is not None else "cached",
                          progress=progress, teacher_device=plan.teacher_device)
    return _StudentJob(cfg, distiller, model, data, run_dir, resuming, backend, progress, transfer, extra, on_epoch,
                       test, start_from is not None, torch.get_rng_state())


def _sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _start_from(model: nn.Module, start: StartFrom) -> None:
    state = load_checkpoint(start.checkpoint)["state_dict"]
    try:
        model.load_state_dict(state)
    except RuntimeError:
        raise QkdError(f"{start.checkpoint}: its weights do not fit this student") from None
    for name in start.frozen:
        for p in getattr(model, name).parameters():
            p.requires_grad_(False)


def _load_teacher(cfg: RunConfig, data_dir: str | None) -> FrozenTeacher:
    """The --teacher run, checked against the images the student trains on (teacher_data_report)."""
    teacher, tcfg = load_teacher_run(cfg.distill.teacher, "--teacher")
    try:
        seen = teacher_data_report(tcfg.data, cfg.data, data_dir, cfg.distill.transfer)
    except QkdError as exc:
        raise QkdError(f"--teacher {cfg.distill.teacher}: {exc}") from None
    return dataclasses.replace(teacher, data=seen)


def _train_and_test(distiller: Distiller, cfg: RunConfig, model: nn.Module, data: DataBundle, run_dir: Path,
                    resuming: bool, backend: Backend | None, progress: bool) -> RunResult:
    """A teacher's run through the Distiller (a student's goes through ``_student_job``)."""
    job = _StudentJob(cfg, distiller, model, data, run_dir, resuming, backend, progress, None, {}, None, True, False)
    fit, t0 = _fit_job(job)
    run = _fitted(job, lambda: distiller.fit(fit.student, fit.train_set, fit.val_set, fit.run_dir, resume=fit.resume,
                                             record=fit.record))
    return _tested(job, run, t0)


def _fit_job(job: _StudentJob) -> tuple[FitJob, float]:
    """The Distiller's fit of a configuration's run, and when it started: what the configuration adds
    is the run folder's name and config.json (opened before), the fine-tuning start, the test fields."""
    t0 = time.perf_counter()
    cfg, model, data, run_dir = job.cfg, job.model, job.data, job.run_dir
    device = _where(model, job.backend)
    meta = {"image_shape": list(data.image_shape), "classes": data.classes, "trained_on": device}
    start_best = None
    if job.keep_start:  # the starting weights are epoch 0, the score to beat
        if not job.resuming:
            start_best = {"val_accuracy": accuracy(model, data.x_val, data.y_val).accuracy, "epoch": 0}
            save_checkpoint(run_dir / "best.pt", {"config": cfg.to_dict(), "meta": meta, "epoch": 0,
                                                  "state_dict": model.state_dict()})
            # which bytes it started from: a resume from a retrained source would mix two students
            atomic_write_json(run_dir / "start.json", {**start_best, "source_sha256": _sha256(job.extra["started_from"])})
            _say(job.progress, f"starting weights: validation accuracy {start_best['val_accuracy']:.4f} on {device}")
        job.extra["start_val_accuracy"] = json.loads((run_dir / "start.json").read_text())["val_accuracy"]
    record = RunRecord(cfg.to_dict(), meta, cache_data=cfg.data, cache_source=data.source,
                       transfer_split=f"transfer-{cfg.distill.transfer}" if cfg.distill else "transfer",
                       start_best=start_best)
    return FitJob(job.distiller, model, (data.x_train, data.y_train), (data.x_val, data.y_val), run_dir,
                  job.transfer, job.resuming, on_epoch=job.on_epoch, record=record, rng=job.rng), t0


def _fitted(job: _StudentJob, fit: Callable[[], Any]) -> Any:
    """``fit()``, a Ctrl-C turned into the message that says how to continue."""
    try:
        return fit()
    except KeyboardInterrupt:
        run_dir = job.run_dir
        done = len(json.loads((run_dir / "metrics.json").read_text())) if (run_dir / "metrics.json").exists() else 0
        raise QkdInterrupted(f"stopped during epoch {done + 1}; {run_dir} keeps the {done} finished epoch(s): "
                             f"run the same command with --resume to continue") from None


def _tested(job: _StudentJob, run: FitResult, t0: float) -> RunResult:
    """After the fit: the test split's one look (or, for model selection, selection.json)."""
    extra = job.extra
    extra["stacked_with"] = run.stacked_with
    if run.teacher_train_accuracy is not None:
        extra["teacher_train_accuracy"] = run.teacher_train_accuracy
    if not job.test:  # model selection (qkd tune): the test split stays unseen
        seconds = time.perf_counter() - t0
        atomic_write_json(job.run_dir / "selection.json", {"best_epoch": run.best["epoch"],
                                                           "best_val_accuracy": run.best["val_accuracy"],
                                                           "seconds": seconds, **extra})
        return RunResult(job.run_dir, None, run.best, run.parameters, seconds, _where(job.model, job.backend))
    return _write_test(job.distiller, job.model, job.data, job.run_dir, run.best, job.backend, t0, extra)


def _write_test(distiller: Distiller, model: nn.Module, data: DataBundle, run_dir: Path, best: dict[str, Any],
                backend: Backend | None, t0: float, extra: dict | None = None) -> RunResult:
    """The one look at the test split (Distiller.test), with what a configuration's run adds."""
    device = _where(model, backend)
    extra = {"trained_on": device, "backend_reason": backend.reason if backend else None,
             **({"data_source": data.source} if data.source else {}), **(extra or {})}
    test = distiller.test(model, (data.x_test, data.y_test), run_dir, best=best, extra=extra, started=t0)
    metrics = json.loads((run_dir / "test_metrics.json").read_text())
    return RunResult(run_dir, test, best, metrics["parameters"], metrics["seconds"], device)


def _where(model: nn.Module, backend: Backend | None) -> str:
    """What trained a model: the student's circuit device, or the torch device of a teacher."""
    first = next(model.parameters(), None)
    if backend is not None:  # the circuit's device, and the GPU where a qkd.fused student ran on one
        return backend.device + (f" ({first.device})" if first is not None and first.device.type != "cpu" else "")
    return f"{first.device.type if first is not None else 'cpu'} (torch)"


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, flush=True)
