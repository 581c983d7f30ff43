"""Where a training step's time goes: torch.profiler's table of the kd-study student's step.

    python benchmarks/profile_step.py --qubits 8 --students 5 --batch 32 --images cifar10
    python benchmarks/profile_step.py --qubits 8 --batch 256 --shapes    # by input shape
    python benchmarks/profile_step.py --rates    # the core's matrix-product rates, for comparison

One process, one torch thread, freed memory kept (as grid workers run). The step is
``benchmarks/test_stacked_students.py``'s: lone (``--students 1``) or stacked as ``fit_stacked``
lays the parameters out, with training/optim.py's Adam. It prints the median step time of
``--steps`` steps, then the profile of ``--profiled`` more (sorted by self CPU time). A profile
measures: read its shares, not its absolute times (the profiler's own overhead is in them).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from qkd_pl.allocator import keep_freed_memory  # noqa: E402

keep_freed_memory()

from test_stacked_students import CIFAR, MNIST, students, training_step  # noqa: E402


def make_step(qubits: int, m: int, batch: int, shape: tuple[int, ...]):
    """One training step of ``m`` students on one batch (stacked when m > 1), as a closure."""
    models = students(qubits, m, shape)
    x, y = torch.rand(batch, *shape), torch.randint(0, 10, (batch,))
    return training_step(models, x, y, stacked=m > 1)


def _median_seconds(fn, n: int = 30) -> float:
    for _ in range(5):
        fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def rates() -> None:
    """Multiply-adds per second of the products a study's steps are made of, beside large square
    products of the same dtype (what this core does at best), one thread."""
    fc = [torch.rand(5, 32, 3072), torch.rand(5, 3072, 256), torch.rand(5, 32, 256)]
    s = torch.rand(256, 16, 16, dtype=torch.complex128)
    k = torch.rand(16, 16, dtype=torch.complex128)
    square = {dt: torch.rand(1024, 1024, dtype=dt) for dt in (torch.float32, torch.float64)}
    cases = [  # name, function, real multiply-adds
        ("stacked FC forward, 5 x (32 x 3072) @ (3072 x 256), float32", lambda: torch.bmm(fc[0], fc[1]), 5 * 32 * 3072 * 256),
        ("stacked FC weight gradient, float32", lambda: torch.bmm(fc[0].transpose(1, 2), fc[2]), 5 * 32 * 3072 * 256),
        ("circuit block, 16x16 @ (256, 16, 16), complex128", lambda: k @ s, 4 * 256 * 16**3),
        ("circuit block, (4096 x 16) @ 16x16, complex128", lambda: s.reshape(-1, 16) @ k.T, 4 * 256 * 16**3),
        ("square 1024^3, float32", lambda: square[torch.float32] @ square[torch.float32], 1024**3),
        ("square 1024^3, float64", lambda: square[torch.float64] @ square[torch.float64], 1024**3),
    ]
    for name, fn, macs in cases:
        seconds = _median_seconds(fn)
        print(f"{name}: {seconds * 1e3:.3f} ms, {macs / seconds / 1e9:.1f} GMAC/s (real)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--qubits", type=int, default=8)
    parser.add_argument("--students", type=int, default=1, help="1: a lone student; more: stacked")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--images", choices=["mnist", "cifar10"], default="mnist")
    parser.add_argument("--steps", type=int, default=30, help="timed steps (after 5 to warm up)")
    parser.add_argument("--profiled", type=int, default=10, help="profiled steps")
    parser.add_argument("--rows", type=int, default=25, help="rows of the table")
    parser.add_argument("--shapes", action="store_true", help="group the table by input shapes")
    parser.add_argument("--rates", action="store_true", help="only the matrix-product rates (GMAC/s)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.rates:
        return rates()
    step = make_step(args.qubits, args.students, args.batch, CIFAR if args.images == "cifar10" else MNIST)
    median = _median_seconds(step, args.steps)  # warm-up first: the circuit's graph is traced on its third call
    print(f"{args.qubits} qubits, {args.students} student(s), batch {args.batch}, {args.images}: "
          f"median step {median * 1e3:.2f} ms over {args.steps} (torch {torch.__version__})")
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], record_shapes=args.shapes) as prof:
        for _ in range(args.profiled):
            step()
    print(prof.key_averages(group_by_input_shape=args.shapes).table(sort_by="self_cpu_time_total",
                                                                    row_limit=args.rows))


if __name__ == "__main__":
    main()
