"""Teacher outputs computed once per (teacher checkpoint, dataset, split, preprocessing).

A frozen teacher gives the same logits for the same images every time, and a grid trains
many students (seeds, circuits, qubit counts) from one teacher; so its logits are stored
under a key made of the SHA-256 of the checkpoint file, the data configuration, the split and
the preprocessing, and read back instead of running the teacher again. The files hold
tensors only and are read with ``weights_only=True``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import torch
from torch import nn

from ..config import DataConfig
from ..errors import QkdError
from ..training import predict_logits, save_checkpoint
from ..training.checkpoint import load_checkpoint

# Images reach the teacher as raw [0, 1] tensors; every teacher standardizes inside itself.
# Bump this if that ever changes, so old cached logits stop matching.
PREPROCESSING = "raw-0-1/v1"


def cache_dir() -> Path:
    """$QKD_CACHE_DIR/teacher-logits, else the user cache folder."""
    root = os.environ.get("QKD_CACHE_DIR")
    if root:
        return Path(root) / "teacher-logits"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("qkd-pl")) / "teacher-logits"


def teacher_logits(teacher: nn.Module, checkpoint_sha256: str, data: DataConfig, split: str, x: torch.Tensor,
                   directory: Path | None = None) -> tuple[torch.Tensor, bool]:
    """(logits, True if they came from the cache)."""
    key = {"teacher": checkpoint_sha256, "data": dataclasses.asdict(data), "split": split, "n": len(x),
           "preprocessing": PREPROCESSING}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
    path = (directory or cache_dir()) / f"{digest}.pt"
    if path.exists():
        try:
            saved = load_checkpoint(path)
        except QkdError:  # a damaged cache file is recomputed, not trusted
            saved = {}
        if saved.get("key") == key and saved["logits"].shape[0] == len(x):
            return saved["logits"], True
    logits = predict_logits(teacher, x)
    save_checkpoint(path, {"key": key, "logits": logits})
    return logits, False
