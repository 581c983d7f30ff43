"""Classical teachers. Each is built as Standardize -> network so checkpoints take raw images."""

from .ensemble import Ensemble
from .registry import ENSEMBLE, TEACHERS, build_teacher

__all__ = ["ENSEMBLE", "TEACHERS", "Ensemble", "build_teacher"]
