"""Classical teachers. Each is built as Standardize -> network so checkpoints take raw images."""

from .registry import TEACHERS, build_teacher

__all__ = ["TEACHERS", "build_teacher"]
