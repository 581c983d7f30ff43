"""The built-in distillation objectives (``--kd-loss``): how the teacher's logits enter a student's loss.

Every objective is cross-entropy on the rows that have hard labels plus a teacher term on the
rows the teacher speaks for, both summed over rows and divided by the batch size, so each image
contributes its own loss and an image of the transfer set (no label) contributes only the
teacher term. ``alpha`` scales the teacher term of every objective and T softens both outputs.

- ``hinton``: CE + alpha T^2 KL(p_t || p_s) (the paper's; Hinton et al. 2015 with CE unweighted).
- ``hinton-classic``: (1 - alpha) CE + alpha T^2 KL, Hinton et al.'s convex combination.
- ``dist``: CE + alpha T^2 (beta inter + gamma intra), Huang et al. 2022 ("DIST"): one minus the
  Pearson correlation of the softened outputs, per image across classes (inter) and per class
  across the batch (intra). It asks for the teacher's ranking, not its exact probabilities,
  which a student with a Q-dimensional readout may be unable to reproduce.
- ``lskd``: the KL term on logits standardized per image (zero mean, unit deviation) before the
  softmax, Sun et al. 2024: the student matches the teacher's logit shape, not its scale.
- ``dkd``: CE + alpha T^2 (TCKD + beta NCKD), Zhao et al. 2022: the KL of the binary target /
  non-target split plus the KL among non-target classes, weighted apart (beta = 8 in the paper).
  The target of a row without a label is the teacher's top class.

Each is an ``Objective`` subclass (``base.py``) whose fields are its hyperparameters; the
arithmetic is the functions' this module had before, to the bit, so committed runs train alike.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from ..config import DistillConfig
from .base import _DEFAULTS, OBJECTIVES, Objective, objective_from_config, register_objective

__all__ = ["OBJECTIVES", "Hinton", "HintonClassic", "DIST", "LSKD", "DKD", "distillation_loss"]

EPS = 1e-8


def _kl(student: torch.Tensor, teacher: torch.Tensor, t: float) -> torch.Tensor:
    """KL(softmax(teacher / t) || softmax(student / t)) per row."""
    return F.kl_div(F.log_softmax(student / t, dim=1), F.log_softmax(teacher / t, dim=1), reduction="none",
                    log_target=True).sum(1)


def _pearson(a: torch.Tensor, b: torch.Tensor, dim: int) -> torch.Tensor:
    a = a - a.mean(dim, keepdim=True)
    b = b - b.mean(dim, keepdim=True)
    return (a * b).sum(dim) / (a.norm(dim=dim) * b.norm(dim=dim) + EPS)


def _standardize(z: torch.Tensor) -> torch.Tensor:
    return (z - z.mean(1, keepdim=True)) / (z.std(1, keepdim=True) + EPS)


@register_objective
class Hinton(Objective):
    name = "hinton"
    help = "CE + alpha T^2 KL (the paper's)"

    def teacher_term(self, s: torch.Tensor, t: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return _kl(s, t, self.temperature).sum()


@register_objective
class HintonClassic(Hinton):
    name = "hinton-classic"
    help = "(1 - alpha) CE + alpha T^2 KL"

    def ce_weight(self) -> float:
        return 1.0 - self.alpha


@register_objective
class DIST(Objective):
    name = "dist"
    help = "CE + alpha T^2 (beta inter + gamma intra) Pearson-correlation losses (DIST)"
    config_fields = {"beta": "dist_beta", "gamma": "dist_gamma"}

    beta: float = _DEFAULTS.dist_beta
    gamma: float = _DEFAULTS.dist_gamma

    def teacher_term(self, s: torch.Tensor, t: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ps = F.softmax(s / self.temperature, dim=1)
        pt = F.softmax(t / self.temperature, dim=1)
        inter = (1 - _pearson(ps, pt, dim=1)).mean()
        intra = (1 - _pearson(ps, pt, dim=0)).mean() if len(s) > 1 else s.new_zeros(())  # one row: no batch spread
        return len(s) * (self.beta * inter + self.gamma * intra)  # a batch statistic, weighted by its rows


@register_objective
class LSKD(Objective):
    name = "lskd"
    help = "the KL term on per-image standardized logits"

    def teacher_term(self, s: torch.Tensor, t: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return _kl(_standardize(s), _standardize(t), self.temperature).sum()


@register_objective
class DKD(Objective):
    name = "dkd"
    help = "CE + alpha T^2 (target/non-target KL + beta non-target KL) (DKD)"
    config_fields = {"beta": "dkd_beta"}

    beta: float = _DEFAULTS.dkd_beta

    def teacher_term(self, s: torch.Tensor, t: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        temp = self.temperature
        gt = torch.arange(s.shape[1], device=s.device) == target[:, None]  # one-hot, with no value check (traceable)
        ps, pt = F.softmax(s / temp, dim=1), F.softmax(t / temp, dim=1)
        # target vs the rest, as two-class distributions
        bs = torch.stack([(ps * gt).sum(1), (ps * ~gt).sum(1)], 1).clamp_min(EPS)
        bt = torch.stack([(pt * gt).sum(1), (pt * ~gt).sum(1)], 1).clamp_min(EPS)
        tckd = (bt * (bt.log() - bs.log())).sum(1)
        # among the non-target classes: the target's logit pushed far down before the softmax
        mask = gt * (1000.0 * temp)  # 1000 after the division by T, as in the reference implementation
        nckd = _kl(s - mask, t - mask, temp)
        return (tckd + self.beta * nckd).sum()


def distillation_loss(student_logits: torch.Tensor, labels: torch.Tensor, teacher_logits: torch.Tensor | None = None,
                      cfg: DistillConfig | None = None, hard: torch.Tensor | None = None,
                      soft: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """A batch's loss and its parts, for callers that hold a ``DistillConfig`` rather than an objective.

    Args:
        student_logits: (B, C).
        labels: (B,) the true label of a labelled row, the teacher's top class of a transfer row.
        teacher_logits: (B, C), or None for a baseline (cross-entropy alone).
        cfg: the objective, T, alpha and the objective's own weights (default: ``DistillConfig()``).
        hard: (B,) bool, the rows whose label enters the cross-entropy (default all).
        soft: (B,) bool, the rows in the teacher term (default all, when there is a teacher).

    Returns:
        The loss (a scalar tensor) and ``{"ce": ..., "kd": ...}`` per image, as floats for logging.

    **Example**

    >>> loss, parts = distillation_loss(student_logits, labels, teacher_logits, DistillConfig(kd_loss="dkd"))
    """
    return objective_from_config(cfg or DistillConfig())(student_logits, teacher_logits, labels, hard, soft)
