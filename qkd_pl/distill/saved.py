"""Models rebuilt from what a run folder saved: its configuration names the model, the checkpoint
holds the weights, so a run folder alone gives back its network (for a teacher, an evaluation,
a fine-tuning start) without the command that made it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import RunConfig
from ..devices import Backend, resolve_backend
from ..errors import QkdError
from ..students import build_student
from ..teachers import ENSEMBLE, Ensemble, build_teacher
from ..training.checkpoint import read_run_checkpoint


def build_model(cfg: RunConfig, image_shape, n_classes: int, mean, std, backend: Backend | None,
                members: list[dict] | None = None) -> nn.Module:
    """The network a configuration describes, untrained. ``members``: an ensemble's member
    configurations (from its checkpoint's meta)."""
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
    """Rebuild a saved model from its checkpoint alone (config and shapes are stored inside).

    Args:
        path: a run folder (its ``best.pt``) or a checkpoint file.
        backend: where a student's circuit runs; default the device it was trained on.

    Returns:
        (model with the saved weights, its configuration, the checkpoint's meta).

    Example:
        >>> teacher, cfg, meta = load_model("runs/teacher-digits-1a2b3c4d")
    """
    path = checkpoint_path(path)
    return model_from_checkpoint(read_run_checkpoint(path)[0], path, backend)


def model_from_checkpoint(ckpt: dict[str, Any], path: Path, backend: Backend | None = None
                          ) -> tuple[nn.Module, RunConfig, dict[str, Any]]:
    """The model, configuration and metadata of a checkpoint already read from ``path``."""
    cfg = run_config(ckpt, path)
    meta = ckpt["meta"]
    if cfg.kind == "student" and backend is None and not user_student(cfg):
        backend = resolve_backend(cfg.student.device, cfg.student.qubits)
    n = len(meta["classes"])
    model = build_model(cfg, tuple(meta["image_shape"]), n, torch.zeros(meta["image_shape"][0]),
                        torch.ones(meta["image_shape"][0]), backend, meta.get("members"))
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError:
        raise QkdError(f"{path}: the weights do not fit the model its configuration describes") from None
    return model, cfg, meta


def run_config(ckpt: dict[str, Any], path: Path) -> RunConfig:
    """The configuration a run checkpoint was made with; a Distiller run on a user's module has
    none qkd-pl can rebuild from, and is refused saying what to do instead."""
    if ckpt["config"].get("kind") == DISTILLER_KIND:
        raise QkdError(f"{path} was trained by the Python API's Distiller on a module qkd-pl cannot rebuild from "
                       f"its checkpoint: load its weights into your student (Distiller.test does), or name the "
                       f"student by import path (--student module.path:factory) to use it from the command line")
    return RunConfig.from_dict(ckpt["config"])


def user_student(cfg: RunConfig) -> bool:
    """A student named by import path: the user's module, which no qkd-pl device setting reaches."""
    from ..students.registry import STUDENTS

    return cfg.kind == "student" and STUDENTS[cfg.student.arch].user


# The "kind" of a run folder made by Distiller.fit on a user's module (not a RunConfig).
DISTILLER_KIND = "distiller"
