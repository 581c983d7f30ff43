"""Training objectives: cross-entropy and the distillation objectives (a registry of classes).

``Objective`` is the base class; ``register_objective`` adds one to ``--kd-loss``; ``KD`` builds
one by name with its hyperparameters; ``objective_from_config`` builds a run's; ``as_objective``
also takes a plain function.
"""

from .base import KD, OBJECTIVES, Objective, as_objective, objective_from_config, register_objective
from .objectives import distillation_loss

__all__ = ["Objective", "KD", "register_objective", "objective_from_config", "as_objective", "OBJECTIVES",
           "distillation_loss"]
