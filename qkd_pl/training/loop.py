"""One training loop for teachers, baseline students and distilled students.

Kept deliberately plain: shuffle with a generator seeded by (seed, epoch) so a resumed run
sees the same batches as an uninterrupted one; step; measure validation accuracy; keep the
best-on-validation weights in ``best.pt``; write the full training state to ``last.pt``
after every epoch. The test split is not visible here at all, and neither is distillation:
the rows arrive with their teacher logits and masks (``Rows``), and the loss is a function
of a batch's rows, so the loop is the same for a teacher, a baseline and a distilled student.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from ..config import TrainConfig
from ..errors import QkdError
from .augment import AUGMENTATIONS, mixup
from .checkpoint import atomic_write_json, load_checkpoint, save_checkpoint
from .compiled_step import CompiledSteps, why_not_compiled
from .evaluate import accuracy
from .optim import make_optimizer


@dataclass(frozen=True)
class Rows:
    """The training rows: images, labels, and what a distilled student's loss also reads.

    ``teacher``: the teacher's logits per row (None: labels alone). ``teacher_fn``: instead, the
    teacher itself, called on every batch as the student sees it (function matching: augmented
    views have no cached logits); a transfer row's hard label is then its top class on that view.
    ``hard``/``soft``: which rows enter the cross-entropy / the teacher term (None: all). The first
    ``n_labelled`` rows carry true labels (the rest are a transfer set, whose ``y`` is the
    teacher's top class); training accuracy is measured on those only.
    """

    x: torch.Tensor
    y: torch.Tensor
    teacher: torch.Tensor | None = None
    hard: torch.Tensor | None = None
    soft: torch.Tensor | None = None
    n_labelled: int | None = None
    teacher_fn: Callable[[torch.Tensor], torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.y)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(y, teacher, hard, soft) of the rows ``idx``: the loss's arguments after the logits."""
        return tuple(None if t is None else t[idx] for t in (self.y, self.teacher, self.hard, self.soft))


# logits, labels, teacher logits, hard rows, soft rows -> (loss, {"ce": ..., "kd": ...})
Loss = Callable[..., tuple[torch.Tensor, dict[str, float]]]


def fit(model: nn.Module, rows: Rows, val: tuple[torch.Tensor, torch.Tensor], cfg: TrainConfig, loss_fn: Loss,
        run_dir: Path, checkpoint_meta: dict[str, Any], *, resume_state: dict[str, Any] | None = None,
        progress: bool = True, on_epoch: Callable[[dict[str, float]], None] | None = None,
        start_best: dict[str, float] | None = None) -> dict[str, Any]:
    """Train ``model`` in place and return ``{"history", "best"}``; ``best.pt`` holds the selected weights.

    Args:
        model: the network; trained where its parameters are.
        rows: the training rows (``Rows``).
        val: validation images and labels, for model selection.
        cfg: epochs, batch size, optimizer, schedule, seed, augmentation.
        loss_fn: ``loss_fn(logits, y, teacher, hard, soft) -> (loss, {"ce", "kd"})`` for one batch.
        run_dir: where ``best.pt``, ``last.pt`` and ``metrics.json`` are written.
        checkpoint_meta: stored in every checkpoint beside the weights (config, shapes).
        resume_state: ``last.pt`` of an interrupted run, to continue it exactly.
        progress: progress bars and per-epoch lines.
        on_epoch: sees each epoch's row once its checkpoints are written (a tuner prunes by raising).
        start_best: ``{"val_accuracy", "epoch": 0}`` of the weights training starts from when
            ``best.pt`` already holds them (fine-tuning): an epoch must beat it to replace them.

    Returns:
        The per-epoch history (the rows of ``metrics.json``) and the selected epoch.
    """
    optimizer, scheduler = make_optimizer(model, cfg, steps_per_epoch=-(-len(rows) // cfg.batch_size))
    history: list[dict[str, float]] = []
    best = dict(start_best) if start_best is not None else {"val_accuracy": -1.0, "epoch": 0}
    start_epoch = 1
    if resume_state is not None:
        history, best, start_epoch = _restore(model, optimizer, scheduler, resume_state, run_dir)
    steps = compiled_steps(model, rows, cfg, loss_fn, optimizer, start_epoch)
    for epoch in range(start_epoch, cfg.epochs + 1):
        t0 = time.perf_counter()
        sums = _train_epoch(model, rows, cfg, loss_fn, optimizer, scheduler, epoch, run_dir, progress, steps)
        train_seconds = time.perf_counter() - t0
        row = epoch_row(epoch, sums, rows, accuracy(model, *val), t0, train_seconds)
        best = end_epoch(model, row, history, best, run_dir, checkpoint_meta, optimizer.state_dict(),
                         scheduler.state_dict() if scheduler else None, torch.get_rng_state(), on_epoch, progress)
    return {"history": history, "best": best}


def epoch_row(epoch: int, sums: dict[str, float], rows: Rows, score, t0: float, train_seconds: float
              ) -> dict[str, float]:
    """An epoch's row of ``metrics.json`` from its training sums and its validation score."""
    n, n_labelled = len(rows), rows.n_labelled or len(rows)
    return {"epoch": epoch, "train_loss": sums["loss"] / n, "train_ce": _measured(sums["ce"] / n),
            "train_kd": _measured(sums["kd"] / n), "train_accuracy": sums["correct"] / n_labelled,
            "val_loss": score.loss, "val_accuracy": score.accuracy,
            "seconds": time.perf_counter() - t0, "train_samples_per_s": n / train_seconds}


def end_epoch(model: nn.Module, row: dict[str, float], history: list[dict[str, float]], best: dict[str, float],
              run_dir: Path, checkpoint_meta: dict[str, Any], optimizer_state: dict[str, Any],
              scheduler_state: dict[str, Any] | None, rng: torch.Tensor,
              on_epoch: Callable[[dict[str, float]], None] | None, progress: bool) -> dict[str, float]:
    """An epoch's files: ``best.pt`` when validation improved, ``last.pt`` and ``metrics.json``
    always (a stacked fit writes each of its students' through here too, so their run folders are
    a single fit's). Returns the best epoch so far."""
    epoch = row["epoch"]
    history.append(row)
    if row["val_accuracy"] > best["val_accuracy"]:
        best = {"val_accuracy": row["val_accuracy"], "epoch": epoch}
        save_checkpoint(run_dir / "best.pt", {**checkpoint_meta, "epoch": epoch,
                                              "state_dict": copy.deepcopy(model.state_dict())})
    save_checkpoint(run_dir / "last.pt", {**checkpoint_meta, "epoch": epoch, "state_dict": model.state_dict(),
                                          "optimizer": optimizer_state, "scheduler": scheduler_state,
                                          "history": history, "best": best, "rng": rng, **_cuda_rng(model)})
    atomic_write_json(run_dir / "metrics.json", history)
    if on_epoch is not None:
        on_epoch(row)
    if progress:
        tqdm.write(f"epoch {epoch:3d}  loss {row['train_loss']:.4f}  train acc {row['train_accuracy']:.4f}  "
                   f"val acc {row['val_accuracy']:.4f}  ({row['seconds']:.1f}s, "
                   f"{row['train_samples_per_s']:.0f} samples/s)")
    return best


def _measured(value: float) -> float | None:
    """A loss part, or None (JSON null) where the loss does not measure it apart (a plain function's
    loss reports its cross-entropy as NaN, which JSON cannot hold)."""
    return value if math.isfinite(value) else None


def _restore(model: nn.Module, optimizer, scheduler, state: dict[str, Any], run_dir: Path
             ) -> tuple[list[dict[str, float]], dict[str, float], int]:
    """Weights, optimizer, schedule and RNG as ``last.pt`` left them: (history, best, next epoch)."""
    model.load_state_dict(state["state_dict"])
    optimizer.load_state_dict(state["optimizer"])
    restore_schedule(scheduler, state, run_dir)
    torch.set_rng_state(state["rng"])  # dropout draws continue where they stopped
    device = _device(model)
    if device.type == "cuda" and "cuda_rng" in state:  # on a GPU, dropout draws from the GPU's generator
        torch.cuda.set_rng_state(state["cuda_rng"], device)
    return list(state["history"]), dict(state["best"]), state["epoch"] + 1


def _device(model: nn.Module) -> torch.device:
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def _cuda_rng(model: nn.Module) -> dict[str, torch.Tensor]:
    """A student on CUDA: its GPU's generator state too (its dropout draws from that one), for ``last.pt``."""
    device = _device(model)
    return {"cuda_rng": torch.cuda.get_rng_state(device)} if device.type == "cuda" else {}


def restore_schedule(scheduler, state: dict[str, Any], run_dir: Path) -> None:
    """The learning-rate schedule as ``last.pt`` left it, refused if planned for other epochs."""
    if scheduler is None:
        return
    saved = state.get("scheduler") or {}
    if saved.get("total_steps") != scheduler.total_steps:
        raise QkdError(f"{run_dir} follows a one-cycle schedule planned for another number of epochs; "
                       f"resume it with the epochs it was started with, or start a new run")
    scheduler.load_state_dict(saved)


def compiled_steps(model: nn.Module, rows: Rows, cfg: TrainConfig, loss_fn: Loss, optimizer, start_epoch: int
                   ) -> CompiledSteps | None:
    """The fit's compiled steps (compiled_step.py), or None where its steps stay eager."""
    if why_not_compiled(model, rows, cfg, loss_fn, optimizer) is not None:
        return None
    epochs = cfg.epochs - start_epoch + 1
    planned = {cfg.batch_size: epochs * (len(rows) // cfg.batch_size)}
    if len(rows) % cfg.batch_size:
        planned[len(rows) % cfg.batch_size] = epochs  # the epoch's last, smaller batch
    return CompiledSteps(model, loss_fn, optimizer, planned)


def _train_epoch(model: nn.Module, rows: Rows, cfg: TrainConfig, loss_fn: Loss, optimizer, scheduler, epoch: int,
                 run_dir: Path, progress: bool, steps: CompiledSteps | None = None) -> dict[str, float]:
    """One pass over the rows in the epoch's seeded order; the sums of its losses and correct labels."""
    model.train()
    epoch_batches = EpochBatches(rows, cfg, epoch)
    sums = new_sums()
    bar = tqdm(epoch_batches, desc=f"epoch {epoch}/{cfg.epochs}", unit="batch", leave=False,
               disable=None if progress else True)
    for i, batch in enumerate(bar):
        done = steps.step(batch) if steps is not None else None
        if done is not None:  # one compiled call did forward, loss, backward and the optimizer's step
            loss, parts, logits = done.loss, done.parts, done.logits
            check_finite(loss, epoch, i, run_dir)
            done.commit()
        else:
            logits = model(batch.x)
            loss, parts = batch.loss(loss_fn, logits)
            check_finite(loss, epoch, i, run_dir)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if steps is not None:
                steps.check_gradients(batch, loss, logits)  # a newly compiled step is checked on this batch
            optimizer.step()
            if steps is not None:
                steps.check_update(batch)
        if scheduler is not None:
            scheduler.step()
        batch.add_to(sums, loss, parts, logits)
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return sums


@dataclass
class Batch:
    """One batch as a student's loss sees it: the (augmented, mixed) images, and the loss's other arguments."""

    idx: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor
    teacher: torch.Tensor | None
    hard: torch.Tensor | None
    soft: torch.Tensor | None
    n_labelled: int
    partner: torch.Tensor | None = None
    lam: float = 1.0

    def loss(self, loss_fn: Loss, logits: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        loss, parts = loss_fn(logits, self.y, self.teacher, self.hard, self.soft)
        if self.partner is not None:  # mixup: each row's loss with its partner's label, weighted as the images were
            other, other_parts = loss_fn(logits, self.y[self.partner], self.teacher,
                                         *(None if m is None else m[self.partner] for m in (self.hard, self.soft)))
            loss = self.lam * loss + (1 - self.lam) * other
            parts = {k: self.lam * parts[k] + (1 - self.lam) * other_parts[k] for k in parts}
        return loss, parts

    def add_to(self, sums: dict[str, float], loss: torch.Tensor, parts: dict[str, float], logits: torch.Tensor) -> None:
        k = len(self.idx)
        sums["loss"] += loss.item() * k
        sums["ce"] += parts["ce"] * k
        sums["kd"] += parts["kd"] * k
        labelled = (self.idx < self.n_labelled).to(self.y.device)
        sums["correct"] += (logits.argmax(1) == self.y)[labelled].sum().item()


class EpochBatches:
    """An epoch's batches of one student's rows, in the order its seed and the epoch fix (so a resumed
    run, or a student trained beside others, sees what an uninterrupted lone run sees)."""

    def __init__(self, rows: Rows, cfg: TrainConfig, epoch: int):
        self.rows, self.cfg = rows, cfg
        self.draws = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        self.order = torch.randperm(len(rows), generator=self.draws)
        self.augment = AUGMENTATIONS[cfg.augment]

    def __len__(self) -> int:
        return -(-len(self.rows) // self.cfg.batch_size)

    def __iter__(self):
        rows, cfg = self.rows, self.cfg
        n_labelled = rows.n_labelled or len(rows)
        for i in range(0, len(rows), cfg.batch_size):
            idx = self.order[i:i + cfg.batch_size]
            x = rows.x[idx]
            if self.augment is not None:
                x = self.augment(x, self.draws)
            y, teacher, hard, soft = rows.batch(idx)
            partner, lam = None, 1.0
            if cfg.mixup > 0:
                x, partner, lam = mixup(x, cfg.mixup, self.draws)
            if rows.teacher_fn is not None:  # the teacher sees the student's very view
                teacher = rows.teacher_fn(x)
                if n_labelled < len(rows):
                    y = torch.where(idx.to(y.device) < n_labelled, y, teacher.argmax(1))
            yield Batch(idx, x, y, teacher, hard, soft, n_labelled, partner, lam)


def new_sums() -> dict[str, float]:
    return {"loss": 0.0, "ce": 0.0, "kd": 0.0, "correct": 0}


def check_finite(loss: torch.Tensor, epoch: int, i: int, run_dir: Path) -> None:
    """Stop before the step: the weights and last.pt stay good."""
    if not torch.isfinite(loss):
        raise QkdError(f"the loss became {loss.item()} at epoch {epoch}, batch {i + 1}; "
                       f"{run_dir} keeps the last good epoch ({epoch - 1}): lower --lr, or check the "
                       f"inputs, then start again")


def load_resume_state(run_dir: Path) -> dict[str, Any]:
    return load_checkpoint(run_dir / "last.pt")
