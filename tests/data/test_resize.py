import torch

from qkd_pl.data.resize import resize_to


def test_small_images_grow_and_others_stay_unless_shrinking_is_asked():
    small, exact, large = torch.rand(2, 1, 8, 8), torch.rand(2, 1, 28, 28), torch.rand(2, 3, 32, 32)
    assert resize_to(small, 28).shape == (2, 1, 28, 28)
    assert resize_to(exact, 28) is exact and resize_to(large, 28) is large
    assert resize_to(large, 28, shrink=True).shape == (2, 3, 28, 28)
    flat = torch.full((1, 1, 8, 8), 0.25)
    assert torch.allclose(resize_to(flat, 28), torch.full((1, 1, 28, 28), 0.25))  # bilinear keeps a constant image
