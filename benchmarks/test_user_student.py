"""A researcher's own TorchLayer student against qkd-pl's built-in student of the same circuit.

The same circuit both ways (angle embedding with RY, StronglyEntanglingLayers, <Z> on every
qubit, on qkd.fused), the same FC reduction and linear head, one training step at batch 256 on
28x28 images. ``user`` is a plain ``nn.Module`` holding a ``qml.qnn.TorchLayer``, given the traced
path by ``qkd_pl.accelerate`` (what ``Distiller.fit`` does); ``user-plain`` is the same module
left as PennyLane made it; ``builtin`` is ``--student v2 --encoding angle --ansatz strong``.

    pytest benchmarks/test_user_student.py --benchmark-only     # each, samples/s in extra_info
    python benchmarks/test_user_student.py                      # the three side by side, alternating
                                                                # rounds, medians and ratios
"""

from __future__ import annotations

import statistics
import time

import pennylane as qml
import pytest
import torch
from torch import nn

from qkd_pl.circuits import accelerate
from qkd_pl.config import StudentConfig
from qkd_pl.devices import resolve_backend
from qkd_pl.experiments.tools.throughput import make_student

BATCH = 256


class UserStudent(nn.Module):
    """What a researcher writes: reduce to Q angles, their own QNode as a TorchLayer, a head."""

    def __init__(self, qubits: int, layers: int = 2, n_classes: int = 10):
        super().__init__()

        @qml.qnode(qml.device("qkd.fused", wires=qubits), interface="torch")
        def circuit(inputs, weights):
            qml.AngleEmbedding(inputs, wires=range(qubits), rotation="Y")
            qml.StronglyEntanglingLayers(weights, wires=range(qubits))
            return [qml.expval(qml.PauliZ(i)) for i in range(qubits)]

        self.reduce = nn.Linear(28 * 28, qubits)
        self.circuit = qml.qnn.TorchLayer(circuit, {"weights": (layers, qubits, 3)})
        self.head = nn.Linear(qubits, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.circuit(torch.pi * torch.tanh(self.reduce(x.flatten(1)))))


def model(kind: str, qubits: int) -> nn.Module:
    torch.manual_seed(0)
    if kind == "builtin":
        cfg = StudentConfig(qubits=qubits, layers=2, encoding="angle", ansatz="strong")
        return make_student(cfg, resolve_backend("qkd.fused", qubits))
    student = UserStudent(qubits)
    if kind == "user":
        accelerate(student)
    return student


def step_of(m: nn.Module):
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(BATCH, 1, 28, 28, generator=gen), torch.randint(0, 10, (BATCH,), generator=gen)

    def step():
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(m(x), y).backward()
        opt.step()

    return step


@pytest.mark.parametrize("kind", [pytest.param("user", marks=pytest.mark.smoke), "user-plain", "builtin"])
@pytest.mark.parametrize("qubits", [4, 8])
def test_training_step(benchmark, kind, qubits):
    step = step_of(model(kind, qubits))
    for _ in range(3):  # traced on the third call
        step()
    benchmark.pedantic(step, rounds=5, warmup_rounds=1)
    if benchmark.stats:
        benchmark.extra_info["samples_per_s"] = BATCH / benchmark.stats.stats.median


def side_by_side(qubits: int, rounds: int = 7, steps: int = 10) -> dict[str, float]:
    """Median samples/s of each kind, rounds alternating so drift hits all alike."""
    steps_of = {k: step_of(model(k, qubits)) for k in ("user", "user-plain", "builtin")}
    for step in steps_of.values():
        for _ in range(3):
            step()
    times: dict[str, list[float]] = {k: [] for k in steps_of}
    for _ in range(rounds):
        for k, step in steps_of.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            times[k].append(BATCH * steps / (time.perf_counter() - t0))
    return {k: statistics.median(v) for k, v in times.items()}


if __name__ == "__main__":
    torch.set_num_threads(1)
    for q in (4, 8):
        r = side_by_side(q)
        print(f"{q} qubits, batch {BATCH}, samples/s: user (accelerated) {r['user']:.0f}, user (plain TorchLayer) "
              f"{r['user-plain']:.0f}, built-in {r['builtin']:.0f}; user/built-in {r['user'] / r['builtin']:.2f}, "
              f"plain/built-in {r['user-plain'] / r['builtin']:.2f}")
