"""``validate(config)``: every check a run's configuration can get before any work.

The command line, the Python entry points (``train_teacher``, ``train_student``) and grids
(every cell, before the first one starts) call this one function, so a misspelled name, an
out-of-range number or an impossible student/device pairing is refused the same way
everywhere: one ``QkdError`` naming the field, the value and what would be valid, before
data is loaded or anything is trained. What is valid is read from the fields' metadata in
``config.py`` and from the component registries, so there is no second list to keep in step.

A user's own component, named by import path (``--student module.path:name``, ``--arch``,
``--kd-loss``, ``--dataset py:module.path:function``), is imported and checked here too: a module
that does not import, a missing name, a factory that makes no ``nn.Module`` (or a module that does
not map a batch of the dataset's images to one logit per class), a loader returning anything but
images in [0, 1] with integer labels, are each one QkdError naming the path.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

from .config import DataConfig, DistillConfig, RunConfig, StudentConfig, TeacherConfig, field_kind, parse_transfer
from .errors import QkdError, first_line
from .registry import registry

KINDS = ("teacher", "student")


def validate(cfg: RunConfig, frozen_inputs: bool = False) -> RunConfig:
    """Check a run's configuration and return it with names made canonical (dataset aliases).

    Args:
        cfg: the run's configuration, as built by the CLI, a script or a grid.
        frozen_inputs: a student's classical front end is frozen (fine-tuning): its memory
            estimate keeps nothing before the circuit's weights for backward.

    Returns:
        The same configuration, with ``data.dataset`` as its registry name (``"fashion"`` ->
        ``"fashion-mnist"``).

    Raises:
        QkdError: in one line, naming the first invalid field, its value and the valid ones.

    Example:
        >>> validate(RunConfig("student", data=DataConfig("fashion"), student=StudentConfig())).data.dataset
        'fashion-mnist'
    """
    if cfg.kind not in KINDS:
        raise QkdError(f"kind {cfg.kind!r} is not one of: {', '.join(KINDS)}")
    if cfg.kind == "teacher" and cfg.teacher is None:
        raise QkdError("a teacher run needs its teacher section (TeacherConfig)")
    if cfg.kind == "student" and cfg.student is None:
        raise QkdError("a student run needs its student section (StudentConfig)")
    data = _check_data(cfg.data)  # first: an alias ("fashion") becomes the name the registry knows
    cfg = dataclasses.replace(cfg, data=data)
    cfg = augment_resolved(cfg)
    for name in ("data", "train", "teacher", "student", "distill"):
        section = getattr(cfg, name)
        if section is not None:
            check_fields(section, name)
    if data.without_pool is not None and data.split != "nested":
        raise QkdError("--without-pool needs --split nested: the pool is the train part's images beyond a student's "
                       "first ones of each class")
    if cfg.kind == "teacher":
        _check_teacher(cfg.teacher, data)
    else:
        if data.without_pool is not None:
            raise QkdError("--without-pool is for teachers (the students' pool they must not see); a student's own "
                           "images are --per-class and --transfer")
        _check_student(cfg.student, data, cfg.train.batch_size, frozen_inputs)
        if cfg.distill is not None:
            registry("objective")[cfg.distill.kd_loss]  # a user's objective: imported and adapted now
            if cfg.distill.teacher is not None:  # its hyperparameters (kd_params) are its own: checked now
                from .losses import objective_from_config

                objective_from_config(cfg.distill)
            cfg = dataclasses.replace(cfg, distill=_check_transfer(cfg.distill, data))
            if cfg.train.mixup > 0 and cfg.distill.transfer != "none" and cfg.distill.transfer_labels == "hard":
                raise QkdError("--mixup with --transfer-labels hard: a blend of two images has no one top class to "
                               "be its pseudo-label; use --transfer-labels soft, or leave --mixup out")
            if cfg.train.mixup > 0 and cfg.distill.teacher is not None and cfg.distill.teacher_outputs == "cached":
                raise QkdError("--mixup blends the images, and cached teacher logits are of the images as they are: "
                               "add --teacher-outputs on-the-fly so the teacher sees the blend")
    return cfg


def augment_resolved(cfg: RunConfig) -> RunConfig:
    """``train.augment = "auto"`` as the dataset's own, recorded in config.json as what ran (grids
    resolve their cells alike, so a finished cell is recognised as the same run)."""
    if cfg.train.augment != "auto":
        return cfg
    from .data.sources import DATASETS, canonical_name

    own = DATASETS[canonical_name(cfg.data.dataset)].augment
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, augment=own))


def check_fields(section: Any, prefix: str) -> None:
    """Types, choices and ranges of one section's fields, from their metadata."""
    for f in dataclasses.fields(section):
        value, meta = getattr(section, f.name), f.metadata
        where = f"{prefix}.{f.name}"
        if value is None:
            if f.default is not None:
                raise QkdError(f"{where} is required (default {f.default!r})")
            continue
        kind = field_kind(f)
        expected = {"int": int, "float": (int, float), "str": str, "bool": bool}.get(kind)
        if kind.startswith("list"):
            expected = list
        if expected is not None and (not isinstance(value, expected) or (kind != "bool" and isinstance(value, bool))):
            raise QkdError(f"{where} = {value!r} is not a {kind}")
        reg = registry(meta["registry"]) if meta.get("registry") else None
        choices = list(reg) if reg is not None else meta.get("choices")
        if choices is not None and value not in (reg if reg is not None else choices):
            raise QkdError(f"{where} = {value!r} is not one of: {', '.join(map(str, choices))}"
                           f"{reg.own_hint() if reg is not None else ''}")
        if kind == "float" and not math.isfinite(value):
            raise QkdError(f"{where} = {value!r} is not a finite number")
        lo, hi = meta.get("min"), meta.get("max")
        if lo is not None and (value < lo or (meta.get("min_open") and value == lo)):
            raise QkdError(f"{where} = {value!r} must be {'above' if meta.get('min_open') else 'at least'} {lo}")
        if hi is not None and (value > hi or (meta.get("max_open") and value == hi)):
            raise QkdError(f"{where} = {value!r} must be {'below' if meta.get('max_open') else 'at most'} {hi}")


def _check_data(data: DataConfig) -> DataConfig:
    from .data.sources import DATASETS, canonical_name
    from .data.splits import check_classes

    if not isinstance(data.dataset, str):
        raise QkdError(f"data.dataset = {data.dataset!r} is not a str")
    data = dataclasses.replace(data, dataset=canonical_name(data.dataset))
    record = DATASETS[data.dataset]  # py:module.path:function is loaded and checked here (once per process)
    if record.family:
        raise QkdError(f"--dataset {data.dataset} needs {record.member}")
    if isinstance(data.classes, list) and all(isinstance(c, int) for c in data.classes):
        if len(set(data.classes)) != len(data.classes) or len(data.classes) < 2:
            raise QkdError(f"data.classes = {data.classes}: name two or more different classes")
        check_classes(data.classes, DATASETS[data.dataset].n_classes)
    return data


def _check_teacher(teacher: TeacherConfig, data: DataConfig) -> None:
    import torch

    from .teachers import ENSEMBLE, TEACHERS, build_teacher

    if (teacher.arch == ENSEMBLE) != (teacher.members is not None):
        raise QkdError("--members goes with --arch ensemble, and --arch ensemble needs --members RUN,RUN,...")
    if teacher.members is not None and len(teacher.members) < 2:
        raise QkdError("--arch ensemble needs --members RUN1,RUN2,... (two or more trained teacher runs)")
    if TEACHERS[teacher.arch].make is not None:  # a user's own (imported by the lookup)
        shape, n = _images(data)
        probe_model(f"--arch {teacher.arch}", shape, n,
                    lambda: build_teacher(teacher.arch, shape, n, torch.zeros(shape[0]), torch.ones(shape[0])))


def _check_transfer(distill: DistillConfig, data: DataConfig) -> DistillConfig:
    """A transfer set is the teacher's to label, from a nested split with a cap to leave images over."""
    distill = dataclasses.replace(distill, transfer=parse_transfer(distill.transfer))
    if distill.kd_loss == "hinton-classic" and distill.alpha > 1:
        raise QkdError(f"--kd-loss hinton-classic weights the cross-entropy by 1 - alpha; alpha = {distill.alpha} "
                       f"would make it negative (give alpha at most 1)")
    if distill.teacher_outputs == "on-the-fly" and distill.teacher is None:
        raise QkdError("--teacher-outputs on-the-fly calls the teacher on every batch: it needs --teacher")
    if distill.transfer_labels == "true" and distill.teacher is not None:
        raise QkdError("--transfer-labels true is the ceiling control: the transfer set taught by its own labels, no "
                       "teacher; drop the teacher (in a grid: \"ceiling\" in [teacher] arch), or choose soft or hard")
    if distill.transfer == "none":
        if distill.transfer_labels == "true":
            raise QkdError("--transfer-labels true is the ceiling control, the transfer set with its own labels: it "
                           "needs --transfer N")
        return distill
    if distill.teacher is None and distill.transfer_labels != "true":
        raise QkdError(f"--transfer {distill.transfer} needs --teacher: transfer images have no labels, only the "
                       f"teacher's outputs, and a baseline never sees them (or --transfer-labels true: the ceiling "
                       f"control, the same images with their own labels)")
    if data.per_class is None or data.split != "nested":
        raise QkdError(f"--transfer {distill.transfer} needs --per-class N and --split nested: the transfer set is "
                       f"the train part's images beyond the student's first N of each class")
    return distill


def _check_student(student: StudentConfig, data: DataConfig, batch_size: int, frozen_inputs: bool = False) -> None:
    """The student with its device: the pairing, then the memory it would need."""
    from .data.sources import DATASETS
    from .devices import resolve_backend
    from .students import check_student
    from .students.memory import check_memory

    record = registry("student")[student.arch]  # a user's own is imported here
    if record.user:
        _check_user_student(student, record, data, batch_size)
        return
    backend = resolve_backend(student.device, student.qubits, student.shots, student.noise, training=True)
    check_student(student, backend)
    check_memory(student, backend, DATASETS[data.dataset].image_shape, batch_size, data, frozen_inputs)


# StudentConfig fields that build qkd-pl's own circuit students, and reach no user student.
CIRCUIT_OPTIONS = ("qubits", "layers", "reducer", "encoding", "rotation", "ansatz", "readout", "device", "shots",
                   "noise", "control_match")


def _check_user_student(student: StudentConfig, record: Any, data: DataConfig, batch_size: int) -> None:
    """A user's own student: its module is tried on the dataset's images. qkd-pl's circuit options
    (--qubits, --device ...) do not apply to it, so neither does the device pairing nor the circuit's
    memory (students/memory.py counts what any run holds); only --classical-control, which would
    stand a classical layer in for a circuit qkd-pl does not know, is refused."""
    import torch

    from .students.memory import check_memory

    if student.control:
        raise QkdError(f"--classical-control replaces the circuit of qkd-pl's v2 student; --student {student.arch} "
                       f"is your own module (write its classical control as another student)")
    # A setting that reaches nothing must not vary runs either (a tune or grid axis over --qubits would
    # train the same student again and again and call one of them best).
    defaults = {f.name: f.default for f in dataclasses.fields(StudentConfig)}
    ignored = [name for name in CIRCUIT_OPTIONS if getattr(student, name) != defaults[name]]
    if ignored:
        flags = ", ".join(f"{name}={getattr(student, name)!r}" for name in ignored)
        raise QkdError(f"--student {student.arch} is your own module, which qkd-pl's circuit options do not reach "
                       f"({flags}): leave them at their defaults, or make them arguments of your factory")
    shape, n = _images(data)
    probe_model(f"--student {student.arch}", shape, n,
                lambda: record.build(student, None, shape, n, torch.zeros(shape[0]), torch.ones(shape[0])))
    check_memory(student, None, shape, batch_size, data)


def _images(data: DataConfig) -> tuple[tuple[int, int, int], int]:
    """The (C, H, W) of a run's images and its number of classes, from the dataset's record."""
    from .data.sources import DATASETS

    record = DATASETS[data.dataset]
    return tuple(record.image_shape), len(data.classes) if data.classes is not None else record.n_classes


_PROBED: set[tuple[str, tuple[int, int, int], int]] = set()  # what passed, so a grid tries each once
PROBE_BATCH = 2


def probe_model(what: str, image_shape: tuple[int, int, int], n_classes: int, build: Callable[[], Any]) -> None:
    """Build a user's model and run a batch of random images through it: refused in one line,
    naming ``what``, unless it is an ``nn.Module`` giving (batch, ``n_classes``) logits.

    The random state is left as it was (a run seeds itself after validation, but a caller may
    validate between seeding and training), and each (model, shape, classes) is tried once per
    process.
    """
    import torch
    from torch import nn

    key = (what, tuple(image_shape), n_classes)
    if key in _PROBED:
        return
    with torch.random.fork_rng(devices=[]):
        model = build()  # its factory's own QkdError names it, whatever went wrong
        if not isinstance(model, nn.Module):
            raise QkdError(f"{what} made a {type(model).__name__}, not a torch.nn.Module")
        x = torch.rand(PROBE_BATCH, *image_shape)
        try:
            with torch.no_grad():
                out = model.eval()(x)
        except Exception as exc:  # a user's module may fail in any way: the message says which and why
            first = first_line(exc)
            raise QkdError(f"{what}: its module fails on a batch of {PROBE_BATCH} images shaped "
                           f"{tuple(image_shape)} ({type(exc).__name__}: {first})") from exc
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (PROBE_BATCH, n_classes):
        got = f"a tensor shaped {tuple(out.shape)}" if isinstance(out, torch.Tensor) else f"a {type(out).__name__}"
        raise QkdError(f"{what}: its module maps a batch of {PROBE_BATCH} images shaped {tuple(image_shape)} to "
                       f"{got}; it must give ({PROBE_BATCH}, {n_classes}) logits, one per class")
    _PROBED.add(key)
