"""Training throughput (forward + backward, samples/s) of one student step on each exact simulator.

This is the measurement behind ``--device auto``: run ``make bench`` (or
``pytest benchmarks --benchmark-only``) and read ``samples_per_s`` in the JSON / table.
"""

import pytest
import torch

from qkd_pl.config import StudentConfig
from qkd_pl.devices import Backend
from qkd_pl.students import QuantumStudent

CASES = [
    ("default.qubit", "backprop", 4, 256),
    ("lightning.qubit", "adjoint", 4, 16),
    ("default.qubit", "backprop", 8, 256),
    ("lightning.qubit", "adjoint", 8, 2),
]


@pytest.mark.parametrize("device,diff,qubits,batch", CASES, ids=[f"{c[0]}-{c[2]}q" for c in CASES])
def test_student_train_step(benchmark, device, diff, qubits, batch):
    torch.manual_seed(0)
    cfg = StudentConfig(qubits=qubits, layers=2)
    model = QuantumStudent(cfg, Backend(device, diff, "benchmark"), (1, 28, 28), 10, torch.zeros(1), torch.ones(1))
    x, y = torch.rand(batch, 1, 28, 28), torch.randint(0, 10, (batch,))

    def step():
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()

    benchmark.pedantic(step, rounds=3, warmup_rounds=1)
    benchmark.extra_info["samples_per_s"] = batch / benchmark.stats.stats.mean
