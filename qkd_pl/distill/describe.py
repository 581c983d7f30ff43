"""What a run folder records of a user's module: enough to tell, later, whether the module in
hand is the one that was trained.

A class path says which code; parameter counts say its size, split into classical and quantum;
the SHA-256 of the file that defines the class says whether that code changed since; the
structure (every state tensor's name and shape) is what a checkpoint must fit to be resumed.
"""

from __future__ import annotations

import hashlib
import inspect
import types
from typing import Any

import torch
from torch import nn

from ..errors import QkdError
from ..students.parameters import count_parameters


def class_path(obj: Any) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def source_digest(obj: Any) -> str | None:
    """SHA-256 of the file defining ``obj`` (a class, a function, or an instance's class); None where
    there is none (a REPL, a C extension)."""
    target = obj if isinstance(obj, (type, types.CodeType)) else getattr(obj, "__code__", None) or type(obj)
    try:
        path = inspect.getsourcefile(target)
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except (TypeError, OSError):
        return None


def structure(state: dict[str, torch.Tensor]) -> dict[str, list[int]]:
    """Every state tensor's name and shape."""
    return {k: list(v.shape) for k, v in state.items()}


def describe_module(model: nn.Module) -> dict[str, Any]:
    """The record of a module in config.json.

    Returns:
        ``{"class", "parameters": {"classical", "quantum", "total"}, "source_sha256", "structure_sha256"}``.
    """
    shapes = structure(model.state_dict())
    return {"class": class_path(model), "parameters": count_parameters(model), "source_sha256": source_digest(model),
            "structure_sha256": hashlib.sha256(repr(sorted(shapes.items())).encode()).hexdigest()}


def check_fits(model: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """Refuse, in one line naming the first difference, a checkpoint whose tensors the model's do not match."""
    ours, theirs = structure(model.state_dict()), structure(state)
    missing, extra = sorted(set(theirs) - set(ours)), sorted(set(ours) - set(theirs))
    shaped = sorted(k for k in set(ours) & set(theirs) if ours[k] != theirs[k])
    if missing or extra or shaped:
        first = (f"{shaped[0]} is {theirs[shaped[0]]} there and {ours[shaped[0]]} here" if shaped
                 else f"{missing[0]} is only there" if missing else f"{extra[0]} is only here")
        raise QkdError(f"{what} holds a student of another structure ({first}); pass the student it was trained "
                       f"with, or start a new run folder")
