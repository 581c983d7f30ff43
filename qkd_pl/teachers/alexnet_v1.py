"""The AlexNet variant of the paper's v1 notebooks, sized for 28x28 grey-scale images.

conv 3x3 64 -> ReLU -> max-pool -> conv 3x3 192 -> ReLU -> max-pool -> conv 3x3 384 -> ReLU,
then 384 x 7 x 7 = 18,816 features -> 4096 -> 4096 -> classes with ReLU and dropout: about
94.7 M parameters for 8 classes, as the notebooks print. It is far larger than LeNet5 on
purpose: the notebooks used it to ask whether a stronger teacher makes a better student.
Images smaller than 28 px are upsampled; larger ones (CIFAR10's 32 px) are average-pooled to
7 x 7 after the convolutions, so the classifier and parameter count stay the notebooks'.
"""

from __future__ import annotations

import torch
from torch import nn

from ..data.resize import resize_to

SIDE = 28


class AlexNetV1(nn.Module):
    def __init__(self, in_channels: int, image_size: int, n_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(64, 192, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d((7, 7)),
        )
        self.classifier = nn.Sequential(
            nn.Dropout(), nn.Linear(384 * 7 * 7, 4096), nn.ReLU(inplace=True),
            nn.Dropout(), nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Linear(4096, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(resize_to(x, SIDE)).flatten(1))
