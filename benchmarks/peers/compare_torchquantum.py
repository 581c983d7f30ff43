"""qkd-pl against TorchQuantum 0.1.8 on the same student, side by side in one run.

    bash benchmarks/peers/setup_torchquantum.sh           # once: TorchQuantum in its own venv
    .venv/bin/python benchmarks/peers/compare_torchquantum.py [--rounds 3] [--batch 256] [--json FILE]

Each measurement runs in a fresh process on one torch thread (step_timer.py: the model, the
step, the timing), and the contenders take turns round after round, so a slow spell on a
shared machine hits both; the table reports the median over rounds and the ratio of medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CONTENDERS = [  # label, interpreter, step_timer arguments before qubits
    ("qkd-pl qkd.fused", sys.executable, ["qkd-pl"], ["qkd.fused"]),
    ("qkd-pl default.qubit", sys.executable, ["qkd-pl"], ["default.qubit"]),
    ("torchquantum 0.1.8", None, ["torchquantum"], []),
]


def run(python: str, who: list[str], qubits: int, batch: int, steps: int, extra: list[str]) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([python, str(HERE / "step_timer.py"), *who, str(qubits), str(batch), str(steps), *extra],
                         capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        sys.exit(f"{python} step_timer.py {' '.join(who)} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["samples_per_s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venv", default=str(HERE / ".venv-torchquantum"), help="TorchQuantum's venv")
    ap.add_argument("--qubits", default="4,8")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=20, help="timed steps per measurement (median taken)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    tq_python = str(Path(args.venv) / "bin" / "python")
    if not Path(tq_python).exists():
        sys.exit(f"no TorchQuantum venv at {args.venv}; run: bash benchmarks/peers/setup_torchquantum.sh")
    qubits = [int(q) for q in args.qubits.split(",")]
    samples: dict[tuple[str, int], list[float]] = {}
    for r in range(args.rounds):
        for q in qubits:
            for label, python, who, extra in CONTENDERS:
                v = run(python or tq_python, who, q, args.batch, args.steps, extra)
                samples.setdefault((label, q), []).append(v)
                print(f"round {r + 1}/{args.rounds}  {q} qubits  {label:22s} {v:10,.0f} samples/s", flush=True)
    rows = []
    for q in qubits:
        tq = statistics.median(samples[("torchquantum 0.1.8", q)])
        for label, *_ in CONTENDERS:
            med = statistics.median(samples[(label, q)])
            rows.append({"contender": label, "qubits": q, "batch": args.batch, "samples_per_s": med,
                         "runs": samples[(label, q)], "vs_torchquantum": med / tq})
    print(f"\ntraining step, batch {args.batch}, 1 torch thread, median of {args.rounds} rounds x {args.steps} steps")
    print("| contender | qubits | samples/s | x TorchQuantum |\n|---|---|---|---|")
    for row in rows:
        print(f"| {row['contender']} | {row['qubits']} | {row['samples_per_s']:,.0f} | {row['vs_torchquantum']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
