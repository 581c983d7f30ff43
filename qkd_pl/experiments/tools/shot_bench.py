"""Evaluation on shot-based devices, one job per batch against one job per image: samples per
second and jobs per 1,000 test images, as the benchmark (benchmarks/test_hardware_batching.py)
and the docs' table (benchmarks/hardware_table.py) measure them.

A measurement is one forward pass of an MNIST-shaped student (FC -> amplitude -> 2
StronglyEntanglingLayers -> <Z>) over ``n`` images under ``torch.no_grad``, after a warm-up
pass on one image (which transpiles the batched device's circuit once, as an evaluation does
before its first job). Jobs are counted where they are made: the batched device's submissions,
and on the per-circuit path pennylane-qiskit's executions (one circuit, one job each).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pennylane as qml
import torch

from ...config import StudentConfig
from ...devices import resolve_backend
from .throughput import make_student


@dataclass(frozen=True)
class ShotThroughput:
    device: str
    noise: str | None
    qubits: int
    path: str  # "batched" or "per-circuit"
    images: int
    seconds: float
    jobs: int  # submitted for the ``images`` timed
    jobs_per_1000: int  # what an evaluation of 1,000 test images submits (batched: at its default batch size)

    @property
    def samples_per_s(self) -> float:
        return self.images / self.seconds


def measure_shots(device: str, qubits: int, per_circuit: bool, images: int, noise: str | None = None,
                  shots: int = 1024) -> ShotThroughput:
    """Time ``images`` test-shaped inputs through a student on a shot-based device."""
    backend = resolve_backend(device, qubits, shots=shots, noise=noise, per_circuit=per_circuit)
    model = make_student(StudentConfig(qubits=qubits, layers=2), backend)
    model.eval()
    dev = model.quantum.qnode.device
    torch.manual_seed(1)
    x = torch.rand(images, 1, 28, 28)
    with torch.no_grad():
        model(x[:1])  # warm-up: the batched device transpiles its circuit here, once
        before = getattr(dev, "jobs_submitted", 0)
        with qml.Tracker(dev) as tracker:
            t0 = time.perf_counter()
            model(x)
            seconds = time.perf_counter() - t0
    if hasattr(dev, "jobs_submitted"):
        from ..single.remote_eval import BATCHED_BATCH_SIZE

        jobs = dev.jobs_submitted - before
        compiled = dev.transpiled[0]
        batches = [("", min(BATCHED_BATCH_SIZE, 1000 - i)) for i in range(0, 1000, BATCHED_BATCH_SIZE)]
        per_1000 = dev.plan(compiled, None, len(compiled.columns), shots, batches).jobs
    else:
        jobs = int(tracker.totals.get("executions", 0))
        per_1000 = round(1000 * jobs / images)
    return ShotThroughput(device, noise, qubits, "per-circuit" if per_circuit else "batched", images, seconds, jobs,
                          per_1000)
