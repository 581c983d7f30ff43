"""A compact BatchNorm CNN: a CIFAR-10 teacher that trains in minutes on a CPU.

The paper's teachers are LeNet5 and a 94.7 M-parameter AlexNet variant; neither is a strong
CIFAR-10 teacher that a 2-core machine can train in half an hour. This one follows the small
fast-training CIFAR networks (Page's ResNet-9 / Jordan's airbench): a stem convolution, then
three stages of conv -> max-pool -> BN -> GELU -> conv -> BN -> GELU, doubling the channels
each time, global max pooling and one linear layer; about 1.2 M parameters at width 32.
Trained with ``--optimizer sgd --schedule onecycle --augment crop-flip`` (docs/teachers.md).
"""

from __future__ import annotations

import torch
from torch import nn

WIDTH = 32  # channels of the stem; the stages have 2, 4 and 8 times as many


def _stage(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(cout), nn.GELU(),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.GELU())


class CompactCNN(nn.Module):
    """Any channel count and any side of 8 px or more (three 2x poolings, then a global pool)."""

    def __init__(self, in_channels: int, image_size: int, n_classes: int, width: int = WIDTH):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.GELU(),
            _stage(width, 2 * width), _stage(2 * width, 4 * width), _stage(4 * width, 8 * width),
            nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(8 * width, n_classes)
        # channels-last is oneDNN's fast layout for convolutions on the CPU (and tensor cores on a GPU)
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x.contiguous(memory_format=torch.channels_last)))
