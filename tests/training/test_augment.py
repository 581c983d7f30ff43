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


# --------------------------------------------------------------------------- shift_rotate, mixup

from qkd_pl.training.augment import mixup, shift_rotate  # noqa: E402


def test_shift_rotate_without_a_shift_or_angle_is_the_image_and_follows_the_generator():
    x = torch.rand(16, 1, 28, 28)
    assert torch.allclose(shift_rotate(x, torch.Generator().manual_seed(0), shift=0, degrees=0), x, atol=1e-5)
    a = shift_rotate(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, shift_rotate(x, torch.Generator().manual_seed(3)))
    assert not torch.allclose(a, x, atol=1e-3) and a.shape == x.shape and a.dtype == x.dtype


def test_shift_rotate_moves_a_dot_by_at_most_its_shift_and_angle():
    x = torch.zeros(200, 1, 28, 28)
    x[:, 0, 14, 14] = 1.0  # a dot at the centre: a rotation leaves it, a shift moves it
    out = shift_rotate(x, torch.Generator().manual_seed(0))
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    mass = out.sum((1, 2, 3))
    cy, cx = (out[:, 0] * ys).sum((1, 2)) / mass, (out[:, 0] * xs).sum((1, 2)) / mass
    moved = torch.stack([cy - 14, cx - 14], 1).abs()
    assert moved.max() <= 2.6 and moved.max() > 1.0  # 2 pixels of 28, and some draws use most of it


def test_mixup_blends_each_image_with_a_partner_by_one_weight():
    x = torch.rand(32, 1, 8, 8)
    mixed, partner, lam = mixup(x, 0.4, torch.Generator().manual_seed(0))
    assert 0 <= lam <= 1 and sorted(partner.tolist()) == list(range(32))
    assert torch.allclose(mixed, lam * x + (1 - lam) * x[partner])
    again = mixup(x, 0.4, torch.Generator().manual_seed(0))
    assert again[2] == lam and torch.equal(again[1], partner)
    lams = [mixup(x, 0.2, torch.Generator().manual_seed(s))[2] for s in range(400)]
    assert sum(min(v, 1 - v) < 0.1 for v in lams) > 200  # Beta(0.2, 0.2) piles up near 0 and 1
