"""A distillation objective of your own, registered and then named in a grid file.

``CosineKD`` asks the student's softened outputs to point the way the teacher's do (one minus
their cosine similarity, per image), and leaves their scale free: a student whose readout has
only Q outputs behind a linear head may rank the classes as its teacher does without matching
its probabilities. ``margin`` is its own hyperparameter: a grid sets it with
``kd_params = {margin = 0.1}``.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from qkd_pl import Objective, register_objective


@register_objective
class CosineKD(Objective):
    name = "cosine-kd"
    help = "CE + alpha T^2 (1 - cosine(p_s, p_t) - margin)_+ per image"
    margin: float = 0.0

    def teacher_term(self, s: torch.Tensor, t: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ps, pt = F.softmax(s / self.temperature, dim=1), F.softmax(t / self.temperature, dim=1)
        return (1 - F.cosine_similarity(ps, pt, dim=1) - self.margin).clamp_min(0).sum()
