"""The teacher a Distiller distils from, frozen, with a key that names its weights.

Why a key: a frozen teacher's logits on the same images never change, so they are computed once
and cached (teacher_cache.py); the cache must know which weights made them. A run folder's key
is its checkpoint's SHA-256 (as qkd-pl's own runs have always used); a module's is a SHA-256 of
its class and every tensor of its state, so editing or retraining the module changes the key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import RunConfig
from ..errors import QkdError
from ..registry import import_object, is_import_path
from ..teachers import Ensemble
from ..training.checkpoint import read_run_checkpoint
from .describe import class_path, source_digest
from .saved import DISTILLER_KIND, checkpoint_path, model_from_checkpoint


@dataclass(frozen=True)
class FrozenTeacher:
    """A teacher in eval mode without gradients, and what identifies it.

    Args:
        model: the network, images in, logits out.
        key: SHA-256 of the checkpoint it was read from (the teacher-logit cache's key); None for a
            module in memory, whose logits are computed afresh every fit (a module's weights and
            code can change under the same object, and no key can see all of its forward).
        path: the checkpoint it was read from, if any.
        data: which images it was trained on, where known (a qkd-pl run's ``teacher_data_report``).

    Example:
        >>> FrozenTeacher(my_cnn.eval(), key=None).describe()["class"]
        'mypkg.nets.SmallCNN'
    """

    model: nn.Module
    key: str | None
    path: Path | None = None
    data: dict[str, Any] | None = field(default=None)

    def describe(self) -> dict[str, Any]:
        """What config.json records of the teacher: its class, and the SHA-256 of its checkpoint or,
        for a module, of its class, source file, structure and weights (taken now, at fit time)."""
        return {"class": class_path(self.model), "sha256": self.key or module_digest(self.model),
                "path": str(self.path) if self.path else None}


def module_digest(model: nn.Module) -> str:
    """SHA-256 of a module's class, the file defining it, its ``repr`` (layers and their settings)
    and state (names, dtypes, shapes and values of every tensor): what resuming compares."""
    h = hashlib.sha256(f"{class_path(model)}|{source_digest(model)}|{model!r}".encode())
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def freeze(teacher: Any) -> FrozenTeacher | None:
    """A Distiller's ``teacher`` argument as a ``FrozenTeacher`` (None: labels only).

    Args:
        teacher: None, an ``nn.Module``, a qkd-pl teacher run folder (or its checkpoint), a
            ``FrozenTeacher``, or a list of any of these (averaged as an ensemble).

    Returns:
        The frozen teacher, or None.
    """
    if teacher is None or isinstance(teacher, FrozenTeacher):
        return teacher
    if isinstance(teacher, (list, tuple)):
        if not teacher:
            raise QkdError("an ensemble teacher needs at least one member")
        members = [freeze(t) for t in teacher]
        model = Ensemble([m.model for m in members])
        keys = [m.key for m in members]
        key = hashlib.sha256("|".join(keys).encode()).hexdigest() if all(keys) else None
        return FrozenTeacher(_frozen(model), key)
    if isinstance(teacher, nn.Module):
        return FrozenTeacher(_frozen(teacher), None)
    if isinstance(teacher, (str, Path)):
        return load_teacher_run(teacher)[0]
    raise QkdError(f"teacher is a {type(teacher).__name__}; give an nn.Module, a teacher run folder, a list of "
                   f"them (an ensemble), or None for labels only")


def load_teacher_run(run: str | Path, what: str = "teacher") -> tuple[FrozenTeacher, RunConfig]:
    """A qkd-pl teacher run folder (or its checkpoint), frozen, with its configuration.

    Its key is the checkpoint's SHA-256, and for a teacher of your own (``--arch module.path:make``)
    also the SHA-256 of the file defining it: its code is not in the checkpoint, and logits cached
    before the code changed must not be served after.

    Args:
        run: the run folder or checkpoint.
        what: how messages name it (``--teacher`` on the command line).

    Returns:
        The frozen teacher and the configuration it was trained with.

    Example:
        >>> teacher, cfg = load_teacher_run("runs/teacher-digits-1a2b3c4d")
    """
    path = checkpoint_path(run)
    ckpt, sha = read_run_checkpoint(path)
    if ckpt["config"].get("kind") == DISTILLER_KIND:
        raise QkdError(f"{what} {run} was trained by the Distiller on a module of yours, which qkd-pl cannot "
                       f"rebuild from its folder: build the module, load {path}'s state_dict into it, and pass "
                       f"the module as the teacher")
    model, cfg, _ = model_from_checkpoint(ckpt, path)
    if cfg.kind != "teacher":
        raise QkdError(f"{what} {run} is a {cfg.kind} run, not a teacher; train one with qkd train-teacher")
    if is_import_path(cfg.teacher.arch):
        code = source_digest(import_object(cfg.teacher.arch, "--arch")) or ""
        sha = hashlib.sha256(f"{sha}|{code}".encode()).hexdigest()
    return FrozenTeacher(_frozen(model), sha, path), cfg


def _frozen(model: nn.Module) -> nn.Module:
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()
