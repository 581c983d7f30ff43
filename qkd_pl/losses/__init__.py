"""Training objectives."""

from .distillation import distillation_loss

__all__ = ["distillation_loss"]
