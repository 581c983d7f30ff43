"""Teacher outputs computed once per (teacher checkpoint, images, split, preprocessing, device).

A frozen teacher gives the same logits for the same images every time, and a grid trains
many students (seeds, circuits, qubit counts) from one teacher; so its logits are stored
under a key made of the SHA-256 of the checkpoint file, the data configuration and where the
data came from, a SHA-256 of the image tensor itself, the split, the preprocessing and the
class of torch device that computes them, and read back instead of running the teacher again.

Why the images and not only the configuration: one ``DataConfig`` names different pixels when
the files change (a declared CIFAR-10 copy against the original files, an edited
``imagefolder:PATH``), and logits served for other images are misaligned with their labels with
no error. Why the device class: CUDA and the CPU round differently, and the docs (reliability) promise
identical numbers for the same command on the CPU, which logits cached on CUDA would break.
The files hold tensors only and are read with ``weights_only=True``.
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
from ..data.digest import tensor_digest
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


def device_class(x: torch.Tensor) -> str:
    """``cpu``, ``cuda``, ...: what rounds the teacher's arithmetic (a function, so tests can play CUDA)."""
    return x.device.type


def teacher_logits(teacher: nn.Module, checkpoint_sha256: str, data: DataConfig | dict, split: str, x: torch.Tensor,
                   directory: Path | None = None, source: dict | None = None) -> tuple[torch.Tensor, bool]:
    """The teacher's logits on ``x``, from the cache where the same teacher saw the same images.

    Args:
        teacher: the frozen teacher, on ``x``'s device.
        checkpoint_sha256: the SHA-256 of the teacher's checkpoint file.
        data: the data configuration the images come from (a dict where there is none: a user's data).
        split: which part of it (``train``, ``transfer-...``).
        x: the images.
        directory: the cache folder (default ``cache_dir()``).
        source: what the files are, where more than the dataset's name (``DataBundle.source``).

    Returns:
        (logits, True if they came from the cache).
    """
    described = dataclasses.asdict(data) if dataclasses.is_dataclass(data) else data
    key = {"teacher": checkpoint_sha256, "data": described, "source": source, "split": split,
           "n": len(x), "images": tensor_digest(x), "device": device_class(x), "preprocessing": PREPROCESSING}
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
