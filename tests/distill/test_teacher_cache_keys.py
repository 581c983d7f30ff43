"""The teacher-logit cache is keyed on the images themselves and on the class of device that
computed them, not only on the configuration that names them (distill/teacher_cache.py)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from qkd_pl.config import DataConfig
from qkd_pl.data import load_data
from qkd_pl.teachers import build_teacher
from qkd_pl.distill import teacher_cache as cache
from qkd_pl.distill.teacher_cache import teacher_logits
from qkd_pl.training import predict_logits

SHA = "a" * 64


def lenet(shape=(1, 8, 8), n=3):
    torch.manual_seed(0)
    return build_teacher("lenet5", shape, n, torch.zeros(shape[0]), torch.ones(shape[0])).eval()


def test_a_declared_copy_with_other_pixels_is_not_served_the_originals_logits(tmp_path):
    """Same DataConfig, same n, same split: only the files differ (the CIFAR-10 JPEG copy's case)."""
    teacher, data = lenet(), DataConfig("cifar10")
    original = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    copy = (original * 255).round() / 255  # what a lossy copy of the same images looks like: close, not equal
    copy[3] = copy[3].flip(-1)
    assert not teacher_logits(teacher, SHA, data, "train", original, tmp_path)[1]
    logits, hit = teacher_logits(teacher, SHA, data, "train", copy, tmp_path,
                                 source={"kind": "declared copy", "label": "CIFAR-10 (JPEG copy)"})
    assert not hit and torch.equal(logits, predict_logits(teacher, copy))
    # the same pixels under another provenance label are another entry too
    assert not teacher_logits(teacher, SHA, data, "train", copy, tmp_path, source={"kind": "other"})[1]
    assert teacher_logits(teacher, SHA, data, "train", original, tmp_path)[1]  # and the first one is still there


def write_images(folder, seed=0):
    rng = np.random.default_rng(seed)
    for c, name in enumerate(("a", "b")):
        for part in ("train", "test"):
            (folder / part / name).mkdir(parents=True, exist_ok=True)
            for i in range(6):
                pixels = np.clip(rng.normal(60 + 100 * c, 30, size=(8, 8)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / part / name / f"{i}.png")


def test_an_edited_image_folder_gets_fresh_logits(tmp_path):
    folder = tmp_path / "pets"
    write_images(folder)
    cfg = DataConfig(f"imagefolder:{folder}")
    before = load_data(cfg)
    teacher = lenet(before.image_shape, before.n_classes)
    first, hit = teacher_logits(teacher, SHA, cfg, "train", before.x_train, tmp_path / "cache", before.source)
    assert not hit
    assert teacher_logits(teacher, SHA, cfg, "train", load_data(cfg).x_train, tmp_path / "cache", before.source)[1]
    for part in ("train", "test"):  # one image edited in place: same names, same counts, other pixels
        for name in ("a", "b"):
            path = folder / part / name / "2.png"
            Image.fromarray(255 - np.asarray(Image.open(path))).save(path)
    after = load_data(cfg)
    assert after.x_train.shape == before.x_train.shape
    logits, hit = teacher_logits(teacher, SHA, cfg, "train", after.x_train, tmp_path / "cache", after.source)
    assert not hit and torch.equal(logits, predict_logits(teacher, after.x_train))


def test_logits_cached_on_cuda_are_not_reused_on_the_cpu(tmp_path, monkeypatch):
    teacher, data = lenet(), DataConfig("digits", classes=[0, 1, 2])
    x = torch.rand(10, 1, 8, 8)
    monkeypatch.setattr(cache, "device_class", lambda x: "cuda")  # the first run had a GPU
    assert not teacher_logits(teacher, SHA, data, "train", x, tmp_path)[1]
    assert teacher_logits(teacher, SHA, data, "train", x, tmp_path)[1]
    monkeypatch.setattr(cache, "device_class", lambda x: "cpu")  # the same command on the CPU
    logits, hit = teacher_logits(teacher, SHA, data, "train", x, tmp_path)
    assert not hit and torch.equal(logits, predict_logits(teacher, x))
