import torch

from qkd_pl.teachers import build_teacher


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_parameter_count_matches_the_notebooks():
    model = build_teacher("lenet5", (1, 28, 28), 8, torch.zeros(1), torch.ones(1))
    assert n_params(model) == 44_256


def test_small_images_are_upsampled_to_the_same_network():
    small = build_teacher("lenet5", (1, 8, 8), 10, torch.zeros(1), torch.ones(1))
    big = build_teacher("lenet5", (1, 28, 28), 10, torch.zeros(1), torch.ones(1))
    assert n_params(small) == n_params(big)
    assert small(torch.rand(3, 1, 8, 8)).shape == (3, 10)


def test_rgb_input():
    model = build_teacher("lenet5", (3, 32, 32), 10, torch.zeros(3), torch.ones(3))
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)
