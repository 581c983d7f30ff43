"""Batched inference without gradients, for validation, testing and teacher logits.

(Slow, fallible devices are evaluated batch by batch with retries and saved progress by
``experiments/single/remote_eval.py`` instead.)
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    was_training = model.training
    model.eval()
    out = torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> dict[str, float]:
    logits = predict_logits(model, x, batch_size)
    return {"accuracy": (logits.argmax(1) == y).float().mean().item(),
            "loss": F.cross_entropy(logits, y).item(), "n": len(y)}
