"""LeNet5 as in the paper's notebooks: tanh, average pooling, unpadded 5x5 convolutions.

On 28x28 MNIST with 8 classes this has 44,256 parameters, the count the notebooks print.
Images smaller than 28 px (digits is 8x8) are first upsampled to 28x28, because two
unpadded 5x5 convolutions need at least 16 px; this keeps one architecture and parameter
count for every grey-scale dataset.
"""

from __future__ import annotations

import torch
from torch import nn

from ..data.resize import resize_to

MIN_SIDE = 28


class LeNet5(nn.Module):
    def __init__(self, in_channels: int, image_size: int, n_classes: int):
        super().__init__()
        self.side = max(image_size, MIN_SIDE)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5), nn.Tanh(), nn.AvgPool2d(2),
            nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
        )
        flat = 16 * (((self.side - 4) // 2 - 4) // 2) ** 2
        self.classifier = nn.Sequential(
            nn.Linear(flat, 120), nn.Tanh(), nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(resize_to(x, self.side)).flatten(1))
