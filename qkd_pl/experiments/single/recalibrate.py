"""Recalibrate a student's readout head on the device it is evaluated on: the cheap answer to noise.

Why: a device's noise mostly shrinks each <Z> word toward zero (depolarizing) and shifts it
(relaxation, readout asymmetry), so the head trained on exact readouts sees smaller, moved
inputs. Refitting only the head (a linear layer: a few hundred numbers, no circuit gradient) on a
small labelled calibration set run on the device undoes much of that, at the cost of running
those images once. The images come from the run's validation split (never the test split), and
the refit is pulled toward the trained head (``pull``), which limits how far a few hundred images
can move it; the evaluation reports the calibration images' accuracy before and after, and the
test images are never part of the fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class Recalibration:
    """What a recalibration did (recorded in the evaluation)."""

    images: int  # calibration images, the first of the validation split
    accuracy_before: float  # on the calibration images, with the trained head
    accuracy_after: float  # with the refitted head (a fit's own data: not a test figure)
    pull: float


def readouts(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """The quantum layer's outputs for images ``x`` (what the head reads), in evaluation mode: the
    front end's batch normalization uses its trained statistics, as at test time, and the
    calibration images leave them as they were."""
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.no_grad():
            for i in range(0, len(x), batch_size):
                xb = x[i:i + batch_size]
                out.append(model.quantum(model.prepare(model.reduce(model.standardize(xb)))).double())
    finally:
        model.train(was_training)
    return torch.cat(out)


def recalibrate_head(model: nn.Module, x: torch.Tensor, y: torch.Tensor, pull: float = 1e-2,
                     steps: int = 100) -> Recalibration:
    """Refit ``model.head`` in place on the device's readouts of labelled images ``x``, ``y``.

    Args:
        model: a qkd-pl circuit student (``reduce``, ``prepare``, ``quantum``, ``head``), built on
            the device to recalibrate for.
        x, y: the calibration images and labels.
        pull: the weight of the squared distance to the trained head's parameters.
        steps: L-BFGS iterations (the problem is convex: a multinomial logistic regression).

    Returns:
        The recalibration's record.

    Example:
        >>> recalibrate_head(model, data.x_val[:500], data.y_val[:500]).accuracy_after
        0.91...
    """
    r = readouts(model, x)
    head = model.head
    w0, b0 = head.weight.detach().double().clone(), head.bias.detach().double().clone()
    w, b = w0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
    before = float(((r @ w0.T + b0).argmax(1) == y).double().mean())
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(r @ w.T + b, y) + pull * (((w - w0) ** 2).sum() + ((b - b0) ** 2).sum())
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        head.weight.copy_(w.to(head.weight.dtype))
        head.bias.copy_(b.to(head.bias.dtype))
        after = float(((r @ w.T + b).argmax(1) == y).double().mean())
    return Recalibration(len(x), before, after, pull)
