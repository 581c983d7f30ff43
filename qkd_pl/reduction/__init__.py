"""Reductions from an image to the number of features the encoding takes."""

from .registry import REDUCERS, build_reducer

__all__ = ["REDUCERS", "build_reducer"]
