"""Batched inference without gradients, for validation, testing and teacher logits.

(Slow, fallible devices are evaluated batch by batch with retries and saved progress by
``experiments/single/remote_eval.py`` instead.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..config import EVAL_BATCH


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    was_training = model.training
    model.eval()
    out = torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out


@dataclass(frozen=True)
class Score:
    """A model's accuracy and mean cross-entropy on ``n`` labelled images."""

    accuracy: float
    loss: float
    n: int


def score(logits: torch.Tensor, y: torch.Tensor) -> Score:
    """The score of logits against labels (the one place accuracy and loss are computed)."""
    return Score((logits.argmax(1) == y).float().mean().item(), F.cross_entropy(logits, y).item(), len(y))


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = EVAL_BATCH) -> Score:
    """The model's score on (x, y), in batches, without gradients, in evaluation mode."""
    return score(predict_logits(model, x, batch_size), y)
