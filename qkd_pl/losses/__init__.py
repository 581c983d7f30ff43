"""Training objectives: cross-entropy and the distillation objectives (a registry)."""

from .objectives import OBJECTIVES, distillation_loss

__all__ = ["OBJECTIVES", "distillation_loss"]
