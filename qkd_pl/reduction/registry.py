"""Name -> reduction, so ``--reducer`` can choose among interchangeable reductions.

Each module takes (image_shape, n_features) and maps (batch, C, H, W) to (batch, n_features);
those with ``needs_fit`` are fitted on the training split before training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from ..registry import Registry
from .crop import CentreCrop
from .fc import FullyConnected
from .pca import PCA
from .pooling import AvgPool, MaxPool


@dataclass(frozen=True)
class Reducer:
    """A reduction: its module, and whether it holds (pixels x features) numbers (trained or
    fitted), which is what the memory estimate must count."""

    name: str
    help: str
    build: Callable[[tuple[int, int, int], int], nn.Module]
    pixel_weights: bool


REDUCERS: Registry[Reducer] = Registry("reducer", "--reducer")
REDUCERS.add(Reducer("fc", "trainable linear layer over all pixels and channels", FullyConnected, True))
REDUCERS.add(Reducer("avgpool", "mean over a grid of regions (luminance for RGB)", AvgPool, False))
REDUCERS.add(Reducer("maxpool", "max over a grid of regions (luminance for RGB)", MaxPool, False))
REDUCERS.add(Reducer("crop", "the centre pixels (luminance for RGB)", CentreCrop, False))
REDUCERS.add(Reducer("pca", "principal components fitted on the training split", PCA, True))


def build_reducer(name: str, image_shape: tuple[int, int, int], n_features: int) -> nn.Module:
    return REDUCERS[name].build(image_shape, n_features)
