"""Each reduction: output shape, determinism, what it looks at, and refusals."""

import pytest
import torch

from qkd_pl.errors import QkdError
from qkd_pl.reduction import REDUCERS, build_reducer
from qkd_pl.reduction.grid import grid_shape, to_grey


@pytest.mark.parametrize("name", list(REDUCERS))
@pytest.mark.parametrize("shape,n", [((1, 28, 28), 16), ((1, 28, 28), 8), ((3, 32, 32), 256), ((1, 8, 8), 4)])
def test_shape_and_determinism(name, shape, n):
    torch.manual_seed(0)
    red = build_reducer(name, shape, n)
    x = torch.rand(12, *shape)
    if getattr(red, "needs_fit", False):
        red.fit(torch.rand(300, *shape))
    a, b = red(x), red(x)
    assert a.shape == (12, n) and torch.equal(a, b)


def test_grid_is_as_square_as_possible():
    assert [grid_shape(n) for n in (4, 8, 16, 32, 256, 3)] == [(2, 2), (2, 4), (4, 4), (4, 8), (16, 16), (1, 3)]


def test_avg_and_max_pool_values():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    assert build_reducer("avgpool", (1, 4, 4), 4)(x).tolist() == [[2.5, 4.5, 10.5, 12.5]]
    assert build_reducer("maxpool", (1, 4, 4), 4)(x).tolist() == [[5.0, 7.0, 13.0, 15.0]]


def test_crop_takes_the_centre_and_a_rectangle_for_odd_qubit_counts():
    x = torch.arange(36.0).view(1, 1, 6, 6)
    assert build_reducer("crop", (1, 6, 6), 4)(x).tolist() == [[14.0, 15.0, 20.0, 21.0]]
    assert build_reducer("crop", (1, 6, 6), 8)(x).tolist() == [[13.0, 14.0, 15.0, 16.0, 19.0, 20.0, 21.0, 22.0]]


def test_rgb_becomes_luminance_for_pooling_and_crop():
    x = torch.zeros(1, 3, 4, 4)
    x[:, 1] = 1.0  # pure green
    assert torch.allclose(to_grey(x), torch.full((1, 1, 4, 4), 0.587))
    assert torch.allclose(build_reducer("avgpool", (3, 4, 4), 4)(x), torch.full((1, 4), 0.587))


def test_too_many_features_for_the_image_are_refused():
    with pytest.raises(QkdError, match="16x16 grid"):
        build_reducer("crop", (1, 8, 8), 256)
    with pytest.raises(QkdError, match="components"):
        build_reducer("pca", (1, 8, 8), 128)


def test_pca_sees_only_what_it_is_fitted_on_and_is_saved_as_buffers():
    torch.manual_seed(0)
    train = torch.randn(200, 1, 4, 4)
    other = torch.randn(200, 1, 4, 4) * 5 + 3
    red = build_reducer("pca", (1, 4, 4), 4).fit(train)
    assert torch.allclose(red.mean, train.flatten(1).mean(0).double().float(), atol=1e-6)
    # Components are orthonormal and fitting on other data changes them.
    c = red.components
    assert torch.allclose(c @ c.T, torch.eye(4), atol=1e-5)
    other_red = build_reducer("pca", (1, 4, 4), 4).fit(other)
    assert not torch.allclose(other_red.mean, red.mean)
    clone = build_reducer("pca", (1, 4, 4), 4)
    clone.load_state_dict(red.state_dict())
    assert torch.equal(clone(train), red(train))


def test_pca_must_be_fitted():
    with pytest.raises(RuntimeError, match="before fit"):
        build_reducer("pca", (1, 4, 4), 4)(torch.rand(2, 1, 4, 4))
