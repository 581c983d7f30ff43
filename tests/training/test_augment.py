"""crop_flip: every output image is a shifted, possibly mirrored window of the reflected image."""

import torch
import torch.nn.functional as F

from qkd_pl.training.augment import crop_flip


def windows(img, pad):
    """All (2 pad + 1)^2 crops of the reflected image, and their mirror images."""
    h, w = img.shape[-2:]
    padded = F.pad(img[None], (pad,) * 4, mode="reflect")[0]
    crops = [padded[:, dy:dy + h, dx:dx + w] for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)]
    return crops + [c.flip(-1) for c in crops]


def test_each_image_is_one_of_its_own_crops_or_their_mirror_images():
    x = torch.rand(64, 3, 12, 10)
    out = crop_flip(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    for img, aug in zip(x, out):
        assert any(torch.equal(aug, c) for c in windows(img, 4))


def test_every_shift_and_flip_is_drawn_about_equally_often_and_follows_the_generator():
    img = torch.rand(1, 6, 6)
    x = img.expand(8100, 1, 6, 6)
    out = crop_flip(x, torch.Generator().manual_seed(1), pad=2)
    assert torch.equal(out, crop_flip(x, torch.Generator().manual_seed(1), pad=2))  # a resumed epoch draws alike
    assert not torch.equal(out, crop_flip(x, torch.Generator().manual_seed(2), pad=2))
    cands = torch.stack(windows(img, 2))  # 50 windows, distinct for a random image
    match = (out[:, None] == cands[None]).flatten(2).all(2)
    assert (match.sum(1) == 1).all()
    counts = match.sum(0).float()  # 162 expected each; 5 sigma is about 63
    assert (counts - 162).abs().max() < 63


def test_no_padding_leaves_only_the_flip():
    x = torch.rand(50, 2, 5, 5)
    out = crop_flip(x, torch.Generator().manual_seed(0), pad=0)
    flipped = torch.tensor([torch.equal(o, i.flip(-1)) for o, i in zip(out, x)])
    kept = torch.tensor([torch.equal(o, i) for o, i in zip(out, x)])
    assert (flipped | kept).all() and flipped.any() and kept.any()
