"""Many students in one step: a study's students stepped as one stacked model against one by one.

    pytest benchmarks/test_stacked_students.py --benchmark-only --benchmark-columns=median

Both arms train the same M students (the kd-study's v2 student: FC reduction, amplitude encoding,
StronglyEntanglingLayers, 2 layers) on the same batches for one step each; ``extra_info`` holds
the samples/s over all M students. Both use the training's own optimizer (training/optim.py's
Adam) and the stacked arm ``fit_stacked``'s parameter layout. Compare the two arms' ratio within one run (grid.py's
``STACK_WORK`` and ``STACK_WEIGHTS`` follow it).
"""

import pytest
import torch

from qkd_pl.config import StudentConfig
from qkd_pl.devices import resolve_backend
from qkd_pl.students.quantum import QuantumStudent
from qkd_pl.allocator import keep_freed_memory
from qkd_pl.training.optim import Adam
from qkd_pl.training.stacked import Stack

keep_freed_memory()  # as the qkd command and grid workers run
MNIST, CIFAR = (1, 28, 28), (3, 32, 32)
CASES = [(q, m, b, MNIST) for q, m, b in [(4, 5, 32), (4, 40, 32), (5, 5, 32), (6, 5, 32), (7, 5, 32), (8, 5, 32),
                                         (8, 30, 32), (10, 5, 32), (4, 5, 256), (6, 5, 128), (7, 5, 128), (7, 5, 256),
                                         (8, 5, 256)]]
CASES += [(4, 30, 32, CIFAR), (6, 5, 32, CIFAR), (6, 30, 32, CIFAR), (8, 5, 32, CIFAR), (8, 30, 32, CIFAR)]


def students(qubits, m, shape):
    backend = resolve_backend("qkd.fused", qubits, None, None, training=True)
    out = []
    for seed in range(m):
        torch.manual_seed(seed)
        out.append(QuantumStudent(StudentConfig(qubits=qubits, ansatz="strong"), backend, shape, 10,
                                  torch.zeros(1), torch.ones(1)))
    return out


def training_step(models, x, y, stacked: bool):
    """One training step of ``models`` on (x, y) as a closure: stacked as ``fit_stacked`` lays the
    parameters out, or one model after the other (benchmarks/profile_step.py times the same step)."""
    m = len(models)
    ce = torch.nn.functional.cross_entropy
    if stacked:
        stack = Stack(models)
        stack.check([x])
        stack.match_gradient_layout(x)  # as fit_stacked lays the parameters out
        xs = x.expand(m, *x.shape)
        opt = Adam(stack.params.values(), lr=1e-2)

        def step():
            logits = stack(xs)
            opt.zero_grad(set_to_none=True)
            torch.stack([ce(logits[j], y) for j in range(m)]).sum().backward()
            opt.step()
        return step
    opts = [Adam(model.parameters(), lr=1e-2) for model in models]

    def alone():
        for model, opt in zip(models, opts):
            opt.zero_grad(set_to_none=True)
            ce(model(x), y).backward()
            opt.step()
    return alone


@pytest.mark.parametrize("arm", ["stacked", "alone"])
@pytest.mark.parametrize("qubits,m,batch,shape", [
    pytest.param(*c, id=f"{c[0]}q-{c[1]}students-b{c[2]}-{'x'.join(map(str, c[3]))}",
                 marks=[pytest.mark.smoke] if c == (4, 5, 32, MNIST) else []) for c in CASES])
def test_students_step(benchmark, arm, qubits, m, batch, shape):
    torch.set_num_threads(1)
    models = students(qubits, m, shape)
    x, y = torch.rand(batch, *shape), torch.randint(0, 10, (batch,))
    step = training_step(models, x, y, stacked=arm == "stacked")
    for _ in range(3):  # the traced graphs (compiled.TRACE_AFTER) before timing
        step()
    benchmark.pedantic(step, rounds=10, warmup_rounds=2)
    if benchmark.stats:
        benchmark.extra_info["samples_per_s"] = m * batch / benchmark.stats.stats.median
