"""torchvision's ResNet-18 and MobileNetV3-Small as teachers for small images.

Built with ``weights=None`` (no downloads: these machines are offline, and ImageNet features
are not what a distillation experiment on MNIST should rest on), then adapted to the input:
- the first convolution takes the dataset's channels (1 for MNIST, 3 for CIFAR10);
- the ImageNet stem (a stride-2 7x7 convolution and a max-pool for ResNet, a stride-2 3x3
  convolution for MobileNet) would shrink a 28 px image to 7 px before the first block, so
  it becomes a stride-1 3x3 convolution without the max-pool, as CIFAR ResNets do;
- images smaller than 28 px (digits' 8 px) are upsampled to 28 px.
"""

from __future__ import annotations

import torch
from torch import nn

from ..data.resize import resize_to

MIN_SIDE = 28


class _SmallImages(nn.Module):
    """Upsample images below MIN_SIDE, then run ``net``."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(resize_to(x, MIN_SIDE))


def resnet18(in_channels: int, image_size: int, n_classes: int) -> nn.Module:
    from torchvision.models import resnet18 as tv_resnet18

    net = tv_resnet18(weights=None, num_classes=n_classes)
    net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    return _SmallImages(net)


def mobilenet_v3_small(in_channels: int, image_size: int, n_classes: int) -> nn.Module:
    from torchvision.models import mobilenet_v3_small as tv_mobilenet

    net = tv_mobilenet(weights=None, num_classes=n_classes)
    first = net.features[0][0]
    net.features[0][0] = nn.Conv2d(in_channels, first.out_channels, kernel_size=3, stride=1, padding=1, bias=False)
    return _SmallImages(net)
