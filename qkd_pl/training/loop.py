"""One training loop for teachers, baseline students and distilled students.

Kept deliberately plain: shuffle with a generator seeded by (seed, epoch) so a resumed run
sees the same batches as an uninterrupted one; step; measure validation accuracy; keep the
best-on-validation weights in ``best.pt``; write the full training state to ``last.pt``
after every epoch. The test split is not visible here at all.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from ..config import DistillConfig, TrainConfig
from ..data import DataBundle
from ..errors import QkdError
from ..losses import distillation_loss
from .checkpoint import atomic_write_json, load_checkpoint, save_checkpoint
from .augment import AUGMENTATIONS
from .evaluate import accuracy
from .optim import make_optimizer


def fit(model: nn.Module, data: DataBundle, cfg: TrainConfig, run_dir: Path, checkpoint_meta: dict[str, Any],
        teacher_logits: torch.Tensor | None = None, distill: DistillConfig | None = None,
        resume_state: dict[str, Any] | None = None, progress: bool = True,
        transfer: tuple[torch.Tensor, torch.Tensor] | None = None,
        on_epoch: Callable[[dict[str, float]], None] | None = None,
        start_best: dict[str, float] | None = None) -> dict[str, Any]:
    """Train ``model`` in place and return the history; ``best.pt`` holds the selected weights.

    ``start_best`` ({"val_accuracy", "epoch": 0}) is the score of the weights training starts
    from, when ``best.pt`` already holds them (fine-tuning): an epoch must beat it to replace them.

    ``transfer`` is a transfer set and its teacher logits: unlabelled images shuffled in with
    the labelled ones, entering the loss through the teacher only (``distill.transfer_labels``:
    its soft outputs, or its top class as a label). An epoch's training losses are per image over
    all of them, its training accuracy is of the labelled images only. ``on_epoch`` sees each
    epoch's row once its checkpoints are written.
    """
    x_all, y_all, t_all, hard, soft = data.x_train, data.y_train, teacher_logits, None, None
    n_labelled = len(data.y_train)
    if transfer is not None:
        x_t, logits_t = transfer
        x_all, y_all = torch.cat([x_all, x_t]), torch.cat([y_all, logits_t.argmax(1)])
        t_all = torch.cat([teacher_logits, logits_t])
        labelled = torch.arange(len(y_all), device=y_all.device) < n_labelled
        hard = labelled | (distill.transfer_labels == "hard")
        soft = labelled | (distill.transfer_labels == "soft")
    n = len(y_all)
    optimizer, scheduler = make_optimizer(model, cfg, steps_per_epoch=-(-n // cfg.batch_size))
    augment = AUGMENTATIONS[cfg.augment]
    history: list[dict[str, float]] = []
    best = dict(start_best) if start_best is not None else {"val_accuracy": -1.0, "epoch": 0}
    start_epoch = 1
    if resume_state is not None:
        model.load_state_dict(resume_state["state_dict"])
        optimizer.load_state_dict(resume_state["optimizer"])
        if scheduler is not None:
            saved = resume_state.get("scheduler") or {}
            if saved.get("total_steps") != scheduler.total_steps:
                raise QkdError(f"{run_dir} follows a one-cycle schedule planned for another number of epochs; "
                               f"resume it with the epochs it was started with, or start a new run")
            scheduler.load_state_dict(saved)
        history = list(resume_state["history"])
        best = dict(resume_state["best"])
        start_epoch = resume_state["epoch"] + 1
        torch.set_rng_state(resume_state["rng"])  # dropout draws continue where they stopped

    for epoch in range(start_epoch, cfg.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        draws = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        order = torch.randperm(n, generator=draws)
        sums = {"loss": 0.0, "ce": 0.0, "kd": 0.0, "correct": 0}
        bar = tqdm(range(0, n, cfg.batch_size), desc=f"epoch {epoch}/{cfg.epochs}", unit="batch",
                   leave=False, disable=None if progress else True)
        for i in bar:
            idx = order[i:i + cfg.batch_size]
            x, y = x_all[idx], y_all[idx]
            if augment is not None:
                x = augment(x, draws)
            logits = model(x)
            loss, parts = distillation_loss(logits, y, t_all[idx] if t_all is not None else None, distill,
                                            hard[idx] if hard is not None else None,
                                            soft[idx] if soft is not None else None)
            if not torch.isfinite(loss):  # stop before the step: the weights and last.pt stay good
                raise QkdError(f"the loss became {loss.item()} at epoch {epoch}, batch {i // cfg.batch_size + 1}; "
                               f"{run_dir} keeps the last good epoch ({epoch - 1}): lower --lr, or check the "
                               f"inputs, then start again")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            k = len(idx)
            sums["loss"] += loss.item() * k
            sums["ce"] += parts["ce"] * k
            sums["kd"] += parts["kd"] * k
            sums["correct"] += (logits.argmax(1) == y)[(idx < n_labelled).to(y.device)].sum().item()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        train_seconds = time.perf_counter() - t0
        val = accuracy(model, data.x_val, data.y_val)
        row = {"epoch": epoch, "train_loss": sums["loss"] / n, "train_ce": sums["ce"] / n,
               "train_kd": sums["kd"] / n, "train_accuracy": sums["correct"] / n_labelled,
               "val_loss": val.loss, "val_accuracy": val.accuracy,
               "seconds": time.perf_counter() - t0, "train_samples_per_s": n / train_seconds}
        history.append(row)
        if val.accuracy > best["val_accuracy"]:
            best = {"val_accuracy": val.accuracy, "epoch": epoch}
            save_checkpoint(run_dir / "best.pt", {**checkpoint_meta, "epoch": epoch,
                                                  "state_dict": copy.deepcopy(model.state_dict())})
        save_checkpoint(run_dir / "last.pt", {**checkpoint_meta, "epoch": epoch, "state_dict": model.state_dict(),
                                              "optimizer": optimizer.state_dict(),
                                              "scheduler": scheduler.state_dict() if scheduler else None,
                                              "history": history, "best": best,
                                              "rng": torch.get_rng_state()})
        atomic_write_json(run_dir / "metrics.json", history)
        if on_epoch is not None:
            on_epoch(row)
        if progress:
            tqdm.write(f"epoch {epoch:3d}  loss {row['train_loss']:.4f}  train acc {row['train_accuracy']:.4f}  "
                       f"val acc {row['val_accuracy']:.4f}  ({row['seconds']:.1f}s, "
                       f"{row['train_samples_per_s']:.0f} samples/s)")
    return {"history": history, "best": best}


def load_resume_state(run_dir: Path) -> dict[str, Any]:
    return load_checkpoint(run_dir / "last.pt")
