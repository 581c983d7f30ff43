"""Evaluation on shot-based and remote devices: batch by batch, retried, resumable.

On IBM hardware every batch is a job that can fail, time out or be cancelled, and a test
split is hundreds of jobs. So each batch is retried with backoff (devices/retry.py), the
logits of finished batches are saved after every batch (atomically), and when the retries
are exhausted the command stops with one line saying how much finished and where it is kept;
running the same command again continues from there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ...devices import Backend, retry
from ...devices.ibm import redact
from ...errors import QkdError
from ...training import Score, atomic_write_json, score


def remote_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, backend: Backend, partial: Path,
                    key: dict[str, Any], batch_size: int = 16) -> Score:
    """Accuracy on a slow, fallible device; ``partial`` holds finished batches until the end."""
    done: list[list[float]] = []
    if partial.exists():
        saved = json.loads(partial.read_text())
        if saved.get("key") == key:
            done = saved["logits"]
            tqdm.write(f"continuing: {len(done)} of {len(x)} test images were evaluated before ({partial})")
    model.eval()
    starts = range(len(done), len(x), batch_size)
    n_batches = -(-len(x) // batch_size)

    def on_retry(attempt: int, exc: BaseException, delay: float) -> None:
        tqdm.write(f"{backend.device}: job failed ({type(exc).__name__}: {redact(str(exc))[:120]}); "
                   f"retry {attempt}/{retry.ATTEMPTS - 1} in {delay:.0f} s")

    with torch.no_grad():
        for i in tqdm(starts, desc=f"evaluating on {backend.device}", unit="batch", leave=False):
            try:
                out = retry.with_retries(lambda: model(x[i:i + batch_size]), retry.ATTEMPTS, retry.BASE_DELAY_S,
                                         on_retry)
            except retry.RetriesExhausted as exc:
                raise QkdError(f"{backend.device}: batch {i // batch_size + 1}/{n_batches} failed after "
                               f"{redact(str(exc))}; {len(done)} of {len(x)} test images finished and are kept "
                               f"in {partial}: run the same command again to continue") from None
            done += out.tolist()
            atomic_write_json(partial, {"key": key, "logits": done})
    logits = torch.tensor(done, dtype=torch.float32)
    partial.unlink(missing_ok=True)
    return score(logits, y)
