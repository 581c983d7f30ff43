"""``validate(config)``: every check a run's configuration can get before any work.

The command line, the Python entry points (``train_teacher``, ``train_student``) and grids
(every cell, before the first one starts) call this one function, so a misspelled name, an
out-of-range number or an impossible student/device pairing is refused the same way
everywhere: one ``QkdError`` naming the field, the value and what would be valid, before
data is loaded or anything is trained. What is valid is read from the fields' metadata in
``config.py`` and from the component registries, so there is no second list to keep in step.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .config import DataConfig, DistillConfig, RunConfig, StudentConfig, TeacherConfig, field_kind, parse_transfer
from .errors import QkdError
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
    for name in ("data", "train", "teacher", "student", "distill"):
        section = getattr(cfg, name)
        if section is not None:
            check_fields(section, name)
    if cfg.kind == "teacher":
        _check_teacher(cfg.teacher)
    else:
        if cfg.train.augment != "none":
            raise QkdError(f"--augment {cfg.train.augment} is for teachers: a student is compared with its baseline "
                           f"on the images as they are, and a distilled student's teacher logits are of those images")
        _check_student(cfg.student, data, cfg.train.batch_size, frozen_inputs)
        if cfg.distill is not None:
            cfg = dataclasses.replace(cfg, distill=_check_transfer(cfg.distill, data))
    return cfg


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
            raise QkdError(f"{where} = {value!r} is not one of: {', '.join(map(str, choices))}")
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
    if DATASETS[data.dataset].family:
        raise QkdError(f"--dataset {data.dataset} needs its folder: --dataset {data.dataset}:PATH")
    if isinstance(data.classes, list) and all(isinstance(c, int) for c in data.classes):
        if len(set(data.classes)) != len(data.classes) or len(data.classes) < 2:
            raise QkdError(f"data.classes = {data.classes}: name two or more different classes")
        check_classes(data.classes, DATASETS[data.dataset].n_classes)
    return data


def _check_teacher(teacher: TeacherConfig) -> None:
    from .teachers import ENSEMBLE

    if (teacher.arch == ENSEMBLE) != (teacher.members is not None):
        raise QkdError("--members goes with --arch ensemble, and --arch ensemble needs --members RUN,RUN,...")
    if teacher.members is not None and len(teacher.members) < 2:
        raise QkdError("--arch ensemble needs --members RUN1,RUN2,... (two or more trained teacher runs)")


def _check_transfer(distill: DistillConfig, data: DataConfig) -> DistillConfig:
    """A transfer set is the teacher's to label, from a nested split with a cap to leave images over."""
    distill = dataclasses.replace(distill, transfer=parse_transfer(distill.transfer))
    if distill.kd_loss == "hinton-classic" and distill.alpha > 1:
        raise QkdError(f"--kd-loss hinton-classic weights the cross-entropy by 1 - alpha; alpha = {distill.alpha} "
                       f"would make it negative (give alpha at most 1)")
    if distill.transfer == "none":
        return distill
    if distill.teacher is None:
        raise QkdError(f"--transfer {distill.transfer} needs --teacher: transfer images have no labels, only the "
                       f"teacher's outputs, and a baseline never sees them")
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

    backend = resolve_backend(student.device, student.qubits, student.shots, student.noise, training=True)
    check_student(student, backend)
    check_memory(student, backend, DATASETS[data.dataset].image_shape, batch_size, data, frozen_inputs)
