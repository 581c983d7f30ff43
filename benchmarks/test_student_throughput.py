"""Student throughput: training steps and inference, samples/s in ``extra_info``.

    pytest benchmarks --benchmark-only                 # everything (a few minutes)
    pytest benchmarks -m smoke --benchmark-disable     # what CI runs: each kind once, no timing

The grid is device x qubits {4, 8} x batch {32, 256, 1024} x encoding. lightning.qubit runs
one circuit per sample (adjoint cannot broadcast), so it is timed at batch 32 only: its
samples/s barely depends on the batch, and a batch of 1024 at 8 qubits would take minutes.
"""

import itertools

import pytest
import torch

from qkd_pl.config import StudentConfig
from qkd_pl.devices import resolve_backend
from qkd_pl.experiments.tools.throughput import make_student

ENCODINGS = ["amplitude", "angle", "qubit"]
BATCHED = [(d, q, b, e) for d, q, b, e in itertools.product(["qkd.fused", "default.qubit"], [4, 8], [32, 256, 1024],
                                                              ENCODINGS)]
PER_SAMPLE = [("lightning.qubit", q, 32, e) for q in (4, 8) for e in ENCODINGS]
SMOKE = {("qkd.fused", 4, 32, "amplitude"), ("qkd.fused", 4, 256, "amplitude"), ("default.qubit", 4, 32, "angle"), ("lightning.qubit", 4, 32, "qubit")}


def cases(rows):
    return [pytest.param(*r, id=f"{r[0]}-{r[1]}q-b{r[2]}-{r[3]}", marks=[pytest.mark.smoke] if r in SMOKE else [])
            for r in rows]


def student(device: str, qubits: int, encoding: str):
    cfg = StudentConfig(qubits=qubits, layers=2, encoding=encoding, ansatz="ring")
    return make_student(cfg, resolve_backend(device, qubits))


@pytest.mark.parametrize("device,qubits,batch,encoding", cases(BATCHED + PER_SAMPLE))
def test_training_step(benchmark, device, qubits, batch, encoding):
    model = student(device, qubits, encoding)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.rand(batch, 1, 28, 28), torch.randint(0, 10, (batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    rounds = 1 if device == "lightning.qubit" else 5
    benchmark.pedantic(step, rounds=rounds, warmup_rounds=1)
    if benchmark.stats:
        benchmark.extra_info["samples_per_s"] = batch / benchmark.stats.stats.median


@pytest.mark.parametrize("device,qubits,batch,encoding",
                         cases([(d, q, 256, "amplitude") for d in ("qkd.fused", "default.qubit") for q in (4, 8)]
                               + [("lightning.qubit", q, 32, "amplitude") for q in (4, 8)]))
def test_inference(benchmark, device, qubits, batch, encoding):
    model = student(device, qubits, encoding)
    x = torch.rand(batch, 1, 28, 28)

    def forward():
        with torch.no_grad():
            model(x)

    benchmark.pedantic(forward, rounds=3, warmup_rounds=1)
    if benchmark.stats:
        benchmark.extra_info["samples_per_s"] = batch / benchmark.stats.stats.median


@pytest.mark.parametrize("mode", [pytest.param("trace", marks=pytest.mark.smoke), "off", "inductor"])
@pytest.mark.parametrize("qubits", [4, 8])
def test_training_step_by_compile_mode(benchmark, monkeypatch, mode, qubits):
    """qkd.fused's traced graph (circuits/compiled.py) against every call through TorchLayer and
    the QNode (QKD_COMPILE=off, the bookkeeping the graph removes from each step) and against the
    graph in real arithmetic compiled by inductor (QKD_COMPILE=inductor; its compilation happens
    in the warm-up rounds and is not timed)."""
    from qkd_pl.circuits import compiled

    monkeypatch.setenv("QKD_COMPILE", mode)
    model = student("qkd.fused", qubits, "amplitude")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.rand(256, 1, 28, 28), torch.randint(0, 10, (256,))

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    benchmark.pedantic(step, rounds=10, warmup_rounds=compiled.TRACE_AFTER + compiled.COMPILE_AFTER + 1)
    if benchmark.stats:
        benchmark.extra_info["samples_per_s"] = 256 / benchmark.stats.stats.median
