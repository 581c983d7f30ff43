"""Adam's step on the FC reduction's weights: torch.optim.Adam against qkd-pl's (training/optim.py).

    pytest benchmarks/test_optimizer.py --benchmark-only --benchmark-columns=median

qkd-pl's Adam does torch's single-tensor arithmetic op for op (the parameters come out identical,
tests/training/test_optim.py) into a denominator buffer it keeps, where torch allocates two
temporaries per parameter per step. The shapes are the kd-study's FC reductions at 8 qubits: a lone
student on MNIST (256 x 784) and on CIFAR-10 (256 x 3,072), and five CIFAR-10 students stacked, laid
out as their batched gradient (Stack.match_gradient_layout). Compare the two arms of one shape
within one run; ``extra_info["parameters_per_s"]`` holds the rate.
"""

import pytest
import torch

from qkd_pl.allocator import keep_freed_memory
from qkd_pl.training.optim import Adam

keep_freed_memory()  # as the qkd command and grid workers run
SHAPES = {"mnist-8q": (256, 784), "cifar10-8q": (256, 3072), "cifar10-8q-5-stacked": (5, 256, 3072)}


@pytest.mark.parametrize("arm", ["torch", "qkd-pl"])
@pytest.mark.parametrize("shape", [pytest.param(s, marks=[pytest.mark.smoke] if s == "mnist-8q" else [])
                                   for s in SHAPES])
def test_adam_step(benchmark, arm, shape):
    torch.set_num_threads(1)
    size = SHAPES[shape]
    start, grad = torch.randn(size), torch.randn(size)
    if len(size) == 3:  # stacked: (models, out, in) stored as (models, in, out), as vmap's gradient comes
        start, grad = (t.transpose(1, 2).contiguous().transpose(1, 2) for t in (start, grad))
    param = start.clone().requires_grad_()
    opt = (torch.optim.Adam if arm == "torch" else Adam)([param], lr=1e-2)

    def step():
        param.grad = grad
        opt.step()

    for _ in range(3):
        step()
    benchmark.pedantic(step, rounds=30, warmup_rounds=3)
    if benchmark.stats:
        benchmark.extra_info["parameters_per_s"] = start.numel() / benchmark.stats.stats.median
