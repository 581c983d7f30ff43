"""Name -> teacher network, so ``--arch`` chooses among them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..data.normalize import Standardize
from ..errors import QkdError
from ..registry import Registry
from .alexnet_v1 import AlexNetV1
from .compact_cnn import CompactCNN
from .lenet5 import LeNet5
from .torchvision_nets import mobilenet_v3_small, resnet18


@dataclass(frozen=True)
class Teacher:
    """A teacher network, built from (channels, height, classes)."""

    name: str
    help: str
    build: Callable[[int, int, int], nn.Module] | None  # None: assembled from trained teachers instead


TEACHERS: Registry[Teacher] = Registry("teacher", "--arch")
TEACHERS.add(Teacher("lenet5", "the notebooks' LeNet5", LeNet5))
TEACHERS.add(Teacher("alexnet-v1", "the notebooks' AlexNet variant (about 94.7 M parameters)", AlexNetV1))
TEACHERS.add(Teacher("compact-cnn", "a compact BatchNorm CNN (about 1.2 M parameters) for a strong CIFAR-10 teacher "
                             "on a CPU; see docs/teachers.md for its training options", CompactCNN))
TEACHERS.add(Teacher("resnet18", "torchvision's ResNet18, untrained, adapted to small images", resnet18))
TEACHERS.add(Teacher("mobilenet_v3_small", "torchvision's MobileNetV3-Small, untrained, adapted to small images",
                     mobilenet_v3_small))
ENSEMBLE = TEACHERS.add(Teacher("ensemble", "the averaged logits of trained teachers (--members); nothing is trained",
                                None)).name  # assembled in teachers/ensemble.py, not built here


def build_teacher(arch: str, image_shape: tuple[int, int, int], n_classes: int,
                  mean: torch.Tensor, std: torch.Tensor) -> nn.Module:
    if TEACHERS[arch].build is None:
        raise QkdError(f"--arch {arch} is assembled from trained teachers (--members), not built")
    channels, height, _ = image_shape
    return nn.Sequential(Standardize(mean, std), TEACHERS[arch].build(channels, height, n_classes))
