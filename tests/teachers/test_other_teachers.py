"""AlexNet-v1, the torchvision teachers and the ensemble: shapes, sizes, and what they compute."""

import pytest
import torch

from qkd_pl.errors import QkdError
from qkd_pl.teachers import Ensemble, build_teacher


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_alexnet_v1_has_the_notebooks_size():
    model = build_teacher("alexnet-v1", (1, 28, 28), 8, torch.zeros(1), torch.ones(1))
    # conv 64/192/384 k3 and fc 18,816 -> 4,096 -> 4,096 -> 8: "about 94.7 M" in the notebooks.
    expected = (1 * 9 * 64 + 64) + (64 * 9 * 192 + 192) + (192 * 9 * 384 + 384) + (18816 * 4096 + 4096) \
        + (4096 * 4096 + 4096) + (4096 * 8 + 8)
    assert n_params(model) == expected and 94.6e6 < expected < 94.7e6


@pytest.mark.parametrize("arch", ["alexnet-v1", "compact-cnn", "resnet18", "mobilenet_v3_small"])
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_every_teacher_takes_every_dataset_shape(arch, shape):
    model = build_teacher(arch, shape, 6, torch.zeros(shape[0]), torch.ones(shape[0])).eval()
    with torch.no_grad():
        out = model(torch.rand(2, *shape))
    assert out.shape == (2, 6) and torch.isfinite(out).all()


def test_torchvision_teachers_keep_small_images_large_enough():
    # The CIFAR-style stem: no stride-2 convolution or max-pool before the first block.
    model = build_teacher("resnet18", (1, 28, 28), 10, torch.zeros(1), torch.ones(1))
    net = model[1].net
    assert net.conv1.stride == (1, 1) and net.conv1.in_channels == 1 and isinstance(net.maxpool, torch.nn.Identity)
    mobile = build_teacher("mobilenet_v3_small", (3, 32, 32), 10, torch.zeros(3), torch.ones(3))[1].net
    assert mobile.features[0][0].stride == (1, 1) and mobile.features[0][0].in_channels == 3


def test_an_ensemble_averages_its_members_logits():
    a = build_teacher("lenet5", (1, 8, 8), 4, torch.zeros(1), torch.ones(1)).eval()
    b = build_teacher("mobilenet_v3_small", (1, 8, 8), 4, torch.zeros(1), torch.ones(1)).eval()
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(Ensemble([a, b])(x), (a(x) + b(x)) / 2)


def test_unknown_teacher():
    with pytest.raises(QkdError, match="unknown --arch 'vgg'.*ensemble"):
        build_teacher("vgg", (1, 28, 28), 10, torch.zeros(1), torch.ones(1))
