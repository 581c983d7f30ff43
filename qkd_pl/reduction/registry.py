"""Name -> reduction module, so ``--reducer`` can choose among interchangeable reductions.

Each takes (image_shape, n_features) and maps (batch, C, H, W) to (batch, n_features);
those with ``needs_fit`` are fitted on the training split before training.
"""

from __future__ import annotations

from torch import nn

from ..errors import QkdError
from .crop import CentreCrop
from .fc import FullyConnected
from .pca import PCA
from .pooling import AvgPool, MaxPool

REDUCERS = {"fc": FullyConnected, "avgpool": AvgPool, "maxpool": MaxPool, "crop": CentreCrop, "pca": PCA}


def build_reducer(name: str, image_shape: tuple[int, int, int], n_features: int) -> nn.Module:
    if name not in REDUCERS:
        raise QkdError(f"unknown --reducer {name!r}; choose one of: {', '.join(REDUCERS)}")
    return REDUCERS[name](image_shape, n_features)
