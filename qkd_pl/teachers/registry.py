"""Name -> teacher network, so ``--arch`` chooses among them."""

from __future__ import annotations

import torch
from torch import nn

from ..data.normalize import Standardize
from ..errors import QkdError
from .alexnet_v1 import AlexNetV1
from .lenet5 import LeNet5
from .torchvision_nets import mobilenet_v3_small, resnet18

TEACHERS = {"lenet5": LeNet5, "alexnet-v1": AlexNetV1, "resnet18": resnet18, "mobilenet_v3_small": mobilenet_v3_small}
ENSEMBLE = "ensemble"  # assembled from trained teachers (teachers/ensemble.py), not built here


def build_teacher(arch: str, image_shape: tuple[int, int, int], n_classes: int,
                  mean: torch.Tensor, std: torch.Tensor) -> nn.Module:
    if arch not in TEACHERS:
        raise QkdError(f"unknown teacher --arch {arch!r}; choose one of: {', '.join([*TEACHERS, ENSEMBLE])}")
    channels, height, _ = image_shape
    return nn.Sequential(Standardize(mean, std), TEACHERS[arch](channels, height, n_classes))
