"""Checkpoint and result files that are never half-written and never unpickle arbitrary code.

Writes go to a temporary file in the same folder and are renamed into place, so an
interrupted run leaves the previous complete file. Reads use ``weights_only=True``, so a
checkpoint from an untrusted source can hold only tensors and plain containers.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import torch

from ..errors import QkdError
from ..files import _atomic, atomic_write_json, atomic_write_text  # noqa: F401 - re-exported

FORMAT = "qkd-pl/1"


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    _atomic(path, lambda fh: torch.save({"format": FORMAT, **payload}, fh))


def load_checkpoint(path: Path) -> dict[str, Any]:
    return read_checkpoint(path)[0]


def read_checkpoint(path: Path) -> tuple[dict[str, Any], str]:
    """A checkpoint and the SHA-256 of its bytes, from one read of the file (the digest keys
    caches of what the checkpoint computes, such as a teacher's logits)."""
    path = Path(path)
    if not path.is_file():
        raise QkdError(f"checkpoint {path} not found")
    raw = path.read_bytes()
    try:
        ckpt = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a corrupt or foreign file, whatever the cause
        raise QkdError(f"{path} is not a checkpoint qkd-pl can read safely ({type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise QkdError(f"{path} is not a qkd-pl checkpoint (expected format {FORMAT})")
    return ckpt, hashlib.sha256(raw).hexdigest()


RUN_KEYS = ("config", "meta", "state_dict")  # what rebuilds a run's model from its checkpoint alone


def read_run_checkpoint(path: Path) -> tuple[dict[str, Any], str]:
    """A run's checkpoint (``read_checkpoint``) that also holds what rebuilds its model.

    Why: ``training.fit`` writes qkd-pl's format tag with whatever ``checkpoint_meta`` its caller
    gives, so a checkpoint of ours can lack the configuration; evaluating, drawing or distilling
    from it must say so in one line, not fail on a missing key.
    """
    ckpt, digest = read_checkpoint(path)
    missing = [k for k in RUN_KEYS if not isinstance(ckpt.get(k), dict)]
    if missing:
        raise QkdError(f"{path} holds no {' or '.join(missing)} (a checkpoint written by training.fit without the "
                       f"run's configuration?): qkd-pl cannot rebuild its model; give the run folder of a "
                       f"qkd train-student or train-teacher run")
    return ckpt, digest

