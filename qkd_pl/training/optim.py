"""The optimizer and learning-rate schedule a ``TrainConfig`` names."""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from ..config import TrainConfig

WARMUP = 0.25  # fraction of the steps spent rising to the peak learning rate


def make_optimizer(model: nn.Module | Iterable[torch.Tensor], cfg: TrainConfig,
                   steps_per_epoch: int) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None]:
    """Adam (the paper's) or SGD with Nesterov momentum, and the schedule stepped after every batch.

    Args:
        model: whose parameters to optimize (or the parameters themselves: a stacked fit's).
        cfg: optimizer, learning rate, weight decay, schedule and epochs.
        steps_per_epoch: batches per epoch (the one-cycle schedule spans all of them).

    Returns:
        The optimizer, and the scheduler (``None`` for a constant learning rate).
    """
    params = list(model.parameters() if isinstance(model, nn.Module) else model)
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, nesterov=True,
                              weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.schedule == "constant":
        return opt, None
    # momentum is not cycled: one schedule for both optimizers, and nothing else to explain
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch,
                                                pct_start=WARMUP, anneal_strategy="linear", cycle_momentum=False,
                                                div_factor=25.0, final_div_factor=1e4)
    return opt, sched
