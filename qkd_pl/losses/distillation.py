"""Cross-entropy plus the temperature-softened KL term of knowledge distillation (Hinton et al.).

loss = CE(student, labels) + alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))

with the KL summed over classes and averaged over the batch (``batchmean``), which is the
true KL per sample. The paper's notebooks used PyTorch's default element-wise mean and
multiplied by the number of classes C to undo it; the two are the same number. T^2 keeps
the soft term's gradient on the scale of the hard one as T changes.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def distillation_loss(student_logits: torch.Tensor, labels: torch.Tensor,
                      teacher_logits: torch.Tensor | None = None,
                      temperature: float = 3.0, alpha: float = 0.9) -> tuple[torch.Tensor, dict[str, float]]:
    """Returns the loss and its parts (``ce``, ``kd``) as floats for logging."""
    ce = F.cross_entropy(student_logits, labels)
    if teacher_logits is None:
        return ce, {"ce": ce.item(), "kd": 0.0}
    t = temperature
    kd = F.kl_div(F.log_softmax(student_logits / t, dim=1), F.log_softmax(teacher_logits / t, dim=1),
                  reduction="batchmean", log_target=True)
    loss = ce + alpha * t * t * kd
    return loss, {"ce": ce.item(), "kd": kd.item()}
