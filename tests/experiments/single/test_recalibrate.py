"""Recalibrating the head: it undoes a readout shrink the trained head was not fitted for, stays near
the trained head with few images, and uses the device's readouts (not exact ones)."""

import pytest
import torch
from torch import nn

from qkd_pl.experiments.single.recalibrate import readouts, recalibrate_head


class Shrunk(nn.Module):
    """A student whose 'device' shrinks and shifts its readouts, as depolarizing noise and
    relaxation do; its head was fitted on the exact readouts."""

    def __init__(self, head: nn.Linear, shrink: float, shift: float):
        super().__init__()
        self.standardize = self.reduce = self.prepare = nn.Identity()
        self.shrink, self.shift, self.head = shrink, shift, head

    def quantum(self, x):
        return torch.tanh(x) * self.shrink + self.shift

    def forward(self, x):
        return self.head(self.quantum(x))


def _data(n, g):
    centers = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [-1.0, -1.0, -1.0]])
    y = torch.randint(0, 4, (n,), generator=g)
    return centers[y] * 1.5 + 0.4 * torch.randn(n, 3, generator=g), y


def test_the_refit_head_recovers_what_a_shrink_and_shift_took():
    g = torch.Generator().manual_seed(0)
    x, y = _data(4000, g)
    exact = Shrunk(nn.Linear(3, 4), 1.0, 0.0)
    opt = torch.optim.Adam(exact.head.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        nn.functional.cross_entropy(exact(x), y).backward()
        opt.step()
    acc = lambda m, xs, ys: (m(xs).argmax(1) == ys).float().mean().item()  # noqa: E731
    x_test, y_test = _data(4000, g)
    clean = acc(exact, x_test, y_test)
    noisy = Shrunk(exact.head, 0.2, torch.tensor([0.35, -0.1, 0.0]))
    drop = acc(noisy, x_test, y_test)
    assert clean - drop > 0.1, (clean, drop)  # the shift pushes every image toward one class
    x_cal, y_cal = _data(300, g)
    record = recalibrate_head(noisy, x_cal, y_cal)
    assert record.images == 300 and record.accuracy_after > record.accuracy_before
    assert acc(noisy, x_test, y_test) > clean - 0.02  # held-out images: most of the drop recovered


def test_readouts_are_the_quantum_layers_outputs_in_batches():
    m = Shrunk(nn.Linear(3, 4), 0.5, 0.1)
    x = torch.randn(600, 3)
    assert torch.allclose(readouts(m, x, batch_size=256), (torch.tanh(x) * 0.5 + 0.1).double())


def test_a_strong_pull_keeps_the_trained_head():
    g = torch.Generator().manual_seed(1)
    head = nn.Linear(3, 4)
    before = head.weight.detach().clone()
    x, y = _data(50, g)
    recalibrate_head(Shrunk(head, 0.3, 0.2), x, y, pull=1e4)
    assert torch.allclose(head.weight, before, atol=1e-3)


def test_a_real_students_batch_statistics_are_neither_used_nor_moved_by_the_calibration():
    from qkd_pl.config import StudentConfig
    from qkd_pl.devices import resolve_backend
    from qkd_pl.students.quantum import QuantumStudent

    torch.manual_seed(0)
    cfg = StudentConfig(qubits=3, layers=1, encoding="angle")
    model = QuantumStudent(cfg, resolve_backend("qkd.fused", 3), (1, 8, 8), 4, torch.zeros(1), torch.ones(1))
    model.prepare.running_mean.fill_(0.3)  # as trained: statistics that are not the calibration batch's
    model.train()
    x, y = torch.rand(40, 1, 8, 8), torch.randint(0, 4, (40,))
    record = recalibrate_head(model, x, y)
    assert torch.allclose(model.prepare.running_mean, torch.full((3,), 0.3))  # not moved by the calibration images
    assert model.training  # its mode restored
    model.eval()
    with torch.no_grad():  # the head was fitted on the readouts the test sees (trained statistics)
        fitted = (model(x).argmax(1) == y).double().mean().item()
    assert fitted == pytest.approx(record.accuracy_after)
