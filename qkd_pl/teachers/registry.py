"""Name -> teacher network, so ``--arch`` chooses among them, or a user's own by import path.

``--arch module.path:name`` names a factory ``name(image_shape, n_classes) -> nn.Module`` (a
function, or an ``nn.Module`` class whose constructor takes those two) whose module maps raw
[0, 1] images (batch, C, H, W) to (batch, n_classes) logits; qkd-pl puts nothing in front of it
(a built-in teacher gets the training images' standardization, a user's does its own). A run's
configuration keeps the import path, so reloading its checkpoint (``--teacher RUN`` for a
student, ``qkd evaluate``) imports the module again: it must stay importable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from ..data.normalize import Standardize
from ..errors import QkdError
from ..registry import Registry
from ..user_code import module_factory
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
    make: Callable[[tuple[int, int, int], int], nn.Module] | None = None  # a user's: (image_shape, n_classes)


TEACHERS: Registry[Teacher] = Registry("teacher", "--arch")
TEACHERS.add(Teacher("lenet5", "the notebooks' LeNet5", LeNet5))
TEACHERS.add(Teacher("alexnet-v1", "the notebooks' AlexNet variant (about 94.7 M parameters)", AlexNetV1))
TEACHERS.add(Teacher("compact-cnn", "a compact BatchNorm CNN (about 1.2 M parameters) for a strong CIFAR-10 teacher "
                             "on a CPU; its training options are in the documentation's results, Teachers", CompactCNN))
TEACHERS.add(Teacher("resnet18", "torchvision's ResNet18, untrained, adapted to small images", resnet18))
TEACHERS.add(Teacher("mobilenet_v3_small", "torchvision's MobileNetV3-Small, untrained, adapted to small images",
                     mobilenet_v3_small))
ENSEMBLE = TEACHERS.add(Teacher("ensemble", "the averaged logits of trained teachers (--members); nothing is trained",
                                None)).name  # assembled in teachers/ensemble.py, not built here


def build_teacher(arch: str, image_shape: tuple[int, int, int], n_classes: int,
                  mean: torch.Tensor, std: torch.Tensor) -> nn.Module:
    record = TEACHERS[arch]
    if record.make is not None:  # a user's own takes raw [0, 1] images
        return record.make(tuple(image_shape), n_classes)
    if record.build is None:
        raise QkdError(f"--arch {arch} is assembled from trained teachers (--members), not built")
    channels, height, _ = image_shape
    return nn.Sequential(Standardize(mean, std), record.build(channels, height, n_classes))


def _user_teacher(path: str, obj: Any) -> Teacher:
    return Teacher(path, f"your own teacher {path}", None, module_factory(path, obj, "--arch"))


TEACHERS.accept_imports(_user_teacher)
