"""Name -> reduction module, so ``--reducer`` can choose among interchangeable reductions."""

from __future__ import annotations

from torch import nn

from ..errors import QkdError
from .fc import FullyConnected

REDUCERS = {"fc": FullyConnected}


def build_reducer(name: str, image_shape: tuple[int, int, int], n_features: int) -> nn.Module:
    if name not in REDUCERS:
        raise QkdError(f"unknown --reducer {name!r}; choose one of: {', '.join(REDUCERS)}")
    return REDUCERS[name](image_shape, n_features)
