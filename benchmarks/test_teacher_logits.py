"""Why teacher logits are computed once: a distilled epoch with cached logits vs a teacher
forward pass in every batch (what the paper's notebooks did). Compare the two means."""

import pytest
import torch

from qkd_pl.losses import distillation_loss
from qkd_pl.teachers import build_teacher

N, BATCH = 2048, 32


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    teacher = build_teacher("lenet5", (1, 28, 28), 10, torch.zeros(1), torch.ones(1)).eval()
    student = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    x, y = torch.rand(N, 1, 28, 28), torch.randint(0, 10, (N,))
    return teacher, student, x, y


def epoch(student, x, y, teacher_logits_for):
    for i in range(0, N, BATCH):
        loss, _ = distillation_loss(student(x[i:i + BATCH]), y[i:i + BATCH], teacher_logits_for(i))
        loss.backward()


@pytest.mark.smoke
def test_cached_teacher_logits(benchmark, setup):
    teacher, student, x, y = setup
    with torch.no_grad():
        cached = teacher(x)
    benchmark.pedantic(epoch, args=(student, x, y, lambda i: cached[i:i + BATCH]), rounds=3)


def test_teacher_forward_every_batch(benchmark, setup):
    teacher, student, x, y = setup

    def fresh(i):
        with torch.no_grad():
            return teacher(x[i:i + BATCH])

    benchmark.pedantic(epoch, args=(student, x, y, fresh), rounds=3)
