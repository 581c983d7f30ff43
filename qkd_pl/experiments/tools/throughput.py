"""Samples per second of a student on a device: what ``qkd bench``, ``qkd backends`` and the
benchmark suite all measure, so their numbers mean the same thing.

A training step is what the training loop does per batch: forward, cross-entropy, backward,
Adam step. Inference is a forward pass under ``torch.no_grad``. Each figure is the median
of several timed repetitions after an untimed warm-up (which builds and caches the circuit
plan), so one noisy repetition does not move it. Slow devices (lightning.qubit's adjoint
method runs one circuit per sample) are timed on fewer samples, within ``budget_s``, and the
batch actually timed is reported beside the figure.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from ...config import StudentConfig
from ...data.sources import IMAGE_SHAPES
from ...devices import Backend
from ...students import build_student

__all__ = ["IMAGE_SHAPES", "Throughput", "make_student", "measure"]


@dataclass
class Throughput:
    samples_per_s: float
    batch: int  # the batch actually timed (smaller than asked when a device is too slow)
    repeats: int


def make_student(cfg: StudentConfig, backend: Backend, image_shape=(1, 28, 28), n_classes: int = 10):
    torch.manual_seed(0)
    c = image_shape[0]
    return build_student(cfg, backend, tuple(image_shape), n_classes, torch.zeros(c), torch.ones(c))


def measure(cfg: StudentConfig, backend: Backend, batch: int, train: bool = True, image_shape=(1, 28, 28),
            n_classes: int = 10, repeats: int = 5, budget_s: float = 10.0) -> Throughput:
    """Median samples/s of a training step (or inference) at ``batch``, shrinking the batch to fit ``budget_s``."""
    model = make_student(cfg, backend, image_shape, n_classes)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)

    def step(b: int) -> float:
        x = torch.rand(b, *image_shape, generator=gen)
        y = torch.randint(0, n_classes, (b,), generator=gen)
        t0 = time.perf_counter()
        if train:
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        else:
            with torch.no_grad():
                model(x)
        return time.perf_counter() - t0

    probe = min(batch, 4)
    step(probe)  # warm-up: builds the QNode, compiles plans, allocates
    per_sample = step(probe) / probe  # an upper bound where a batch amortizes fixed costs
    if per_sample * batch * 2 > budget_s / 2:  # two full steps would not fit: time a batch that does
        batch = max(1, int(budget_s / (4 * per_sample)))
    step(batch)
    times = [step(batch)]
    repeats = max(1, min(repeats, int(budget_s / times[0]) - 2))
    times += [step(batch) for _ in range(repeats - 1)]
    return Throughput(batch / statistics.median(times), batch, len(times))
