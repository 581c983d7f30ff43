"""The whole training step compiled against the eager step, side by side on one student.

    pytest benchmarks/test_compiled_step.py --benchmark-only --benchmark-columns=median

The kd-study's student (FC, amplitude encoding, StronglyEntanglingLayers, 2 layers, MNIST-shaped
inputs) with a Hinton teacher term, one step (forward, loss, backward, Adam) as the training loop
runs it: ``eager`` is the loop's own step on the traced circuit, ``compiled`` the step
``QKD_COMPILE_STEP=on`` compiles (compiled in the setup, from inductor's cache when it holds the
graph; its compile seconds are in ``extra_info``). Compare the two arms' ratio within one run:
``compiled_step.saved_fraction`` and ``EAGER_B32`` follow it.
"""

import os
import time

import pytest
import torch

from qkd_pl.config import StudentConfig
from qkd_pl.devices import resolve_backend
from qkd_pl.distill.distiller import BatchLoss
from qkd_pl.losses import KD
from qkd_pl.students.quantum import QuantumStudent
from qkd_pl.training.compiled_step import CompiledSteps
from qkd_pl.training.loop import Batch

CASES = [(4, 32), (6, 32), (7, 32), (8, 32), (10, 32), (4, 256), (8, 256)]


def prepared(qubits, batch, monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.setenv("QKD_COMPILE_STEP", "on")
    torch.manual_seed(0)
    backend = resolve_backend("qkd.fused", qubits, None, None, training=True)
    model = QuantumStudent(StudentConfig(qubits=qubits, ansatz="strong"), backend, (1, 28, 28), 10,
                           torch.zeros(1), torch.ones(1))
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(batch, 1, 28, 28, generator=g), torch.randint(0, 10, (batch,), generator=g)
    teacher = torch.randn(batch, 10, generator=g)
    loss_fn = BatchLoss(KD("hinton"), with_teacher=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps = CompiledSteps(model, loss_fn, opt, planned={len(y): 10**9})
    b = Batch(torch.arange(batch), x, y, teacher, None, None, batch)

    def eager():
        logits = model(x)
        loss, _ = b.loss(loss_fn, logits)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        steps.check_gradients(b, loss, logits)  # the loop's checks of a newly compiled step (no-ops after)
        opt.step()
        steps.check_update(b)

    return model, steps, b, eager


@pytest.mark.parametrize("arm", ["eager", "compiled"])
@pytest.mark.parametrize("qubits,batch", [pytest.param(q, b, id=f"{q}q-b{b}",
                                                       marks=[pytest.mark.smoke] if (q, b) == (4, 32) else [])
                                          for q, b in CASES])
def test_training_step(benchmark, monkeypatch, arm, qubits, batch):
    model, steps, b, eager = prepared(qubits, batch, monkeypatch)
    started = time.perf_counter()
    for _ in range(40):  # eager steps, the circuit's trace, the step's compilation and its check
        if arm == "eager":
            eager()
            continue
        done = steps.step(b)
        if done is not None:
            break
        eager()
    else:
        if arm == "compiled":  # no C++ compiler here, say: the library steps eagerly; nothing to time
            pytest.skip(f"the step was not compiled: {[s.refused for s in steps.shapes.values()]}")
    benchmark.extra_info["warm_up_s"] = time.perf_counter() - started
    benchmark.extra_info["cache"] = os.environ.get("TORCHINDUCTOR_CACHE_DIR")

    def compiled():
        done = steps.step(b)
        done.loss.item()
        done.commit()

    benchmark.pedantic(eager if arm == "eager" else compiled, rounds=10, iterations=20, warmup_rounds=1)
    if benchmark.stats:
        benchmark.extra_info["samples_per_s"] = batch / benchmark.stats.stats.median
