"""Batched inference without gradients, for validation, testing and teacher logits."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 256, progress: bool = False) -> torch.Tensor:
    """``progress`` draws a bar, for slow devices (shot-based simulators, hardware)."""
    was_training = model.training
    model.eval()
    starts = range(0, len(x), batch_size)
    bar = tqdm(starts, desc="evaluating", unit="batch", leave=False, disable=None if progress else True)
    out = torch.cat([model(x[i:i + batch_size]) for i in bar])
    model.train(was_training)
    return out


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256,
             progress: bool = False) -> dict[str, float]:
    logits = predict_logits(model, x, batch_size, progress)
    return {"accuracy": (logits.argmax(1) == y).float().mean().item(),
            "loss": F.cross_entropy(logits, y).item(), "n": len(y)}
