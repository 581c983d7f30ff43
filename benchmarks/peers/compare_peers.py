"""qkd-pl against its peers on the same student training step, side by side in one run.

    bash benchmarks/peers/setup_torchquantum.sh      # once: TorchQuantum 0.1.8 in its own venv
    bash benchmarks/peers/setup_jax.sh               # once: PennyLane + JAX, TensorCircuit-NG + JAX
    .venv/bin/python benchmarks/peers/compare_peers.py [--rounds 3] [--batch 256] [--json FILE]

Each measurement is a fresh process pinned to one core on one thread (step_timer.py for the
torch contenders, jax_timer.py for the JAX ones), and the contenders take turns round after
round, so a slow spell on a shared machine hits all of them; the table reports the median over
rounds. Every contender's logits on reference.py's shared weights and inputs are checked against
a float64 NumPy model of the circuit before it is timed. JAX's first step compiles; its seconds
are reported apart (an end-to-end comparison must add them once per process and input shape);
so is qkd-pl's with QKD_COMPILE=inductor, compiled from an empty cache each time, and its whole
compiled step's (QKD_COMPILE_STEP=on: from the user's inductor cache, and from an empty one).
``--only 'LABEL|LABEL'`` keeps those contenders (``--list`` prints the labels); the first kept is
the "x qkd-pl" base.
A contender whose venv is missing is skipped with a note.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
FRESH = "fresh"  # an empty inductor cache for each measurement: compiled cold, as JAX compiles every process
ROOT = HERE.parents[1]
# label, venv (None: this interpreter), script, arguments before qubits, arguments after steps, environment
CONTENDERS = [
    ("qkd-pl qkd.fused", None, "step_timer.py", ["qkd-pl"], ["qkd.fused"], {}),
    ("qkd-pl qkd.fused, whole step compiled (QKD_COMPILE_STEP=on)", None, "step_timer.py", ["qkd-pl"],
     ["qkd.fused"], {"QKD_COMPILE_STEP": "on"}),
    ("qkd-pl qkd.fused, whole step compiled, cold cache", None, "step_timer.py", ["qkd-pl"], ["qkd.fused"],
     {"QKD_COMPILE_STEP": "on", "TORCHINDUCTOR_CACHE_DIR": FRESH}),
    ("qkd-pl qkd.fused32 (complex64)", None, "step_timer.py", ["qkd-pl"], ["qkd.fused32"], {}),
    ("qkd-pl qkd.fused, every call through the QNode", None, "step_timer.py", ["qkd-pl"], ["qkd.fused"],
     {"QKD_COMPILE": "off"}),
    ("qkd-pl qkd.fused, QKD_COMPILE=inductor", None, "step_timer.py", ["qkd-pl"], ["qkd.fused"],
     {"QKD_COMPILE": "inductor", "TORCHINDUCTOR_CACHE_DIR": FRESH}),
    ("qkd-pl qkd.fused32, QKD_COMPILE=inductor", None, "step_timer.py", ["qkd-pl"], ["qkd.fused32"],
     {"QKD_COMPILE": "inductor", "TORCHINDUCTOR_CACHE_DIR": FRESH}),
    ("TorchQuantum 0.1.8 (complex64)", ".venv-torchquantum", "step_timer.py", ["torchquantum"], [], {}),
    ("PennyLane default.qubit + jax.jit, float64", ".venv-jax", "jax_timer.py", ["pennylane-jax"], ["64"], {}),
    ("PennyLane default.qubit + jax.jit, float32", ".venv-jax", "jax_timer.py", ["pennylane-jax"], ["32"], {}),
    ("TensorCircuit-NG + jax.jit, complex128", ".venv-tcng", "jax_timer.py", ["tensorcircuit"], ["64"], {}),
    ("TensorCircuit-NG + jax.jit, complex64", ".venv-tcng", "jax_timer.py", ["tensorcircuit"], ["32"], {}),
    ("no circuit (FC, normalize, head; torch)", None, "step_timer.py", ["no-circuit"], [], {}),
]
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}


def run(python: str, script: str, who: list[str], qubits: int, batch: int, steps: int, extra: list[str],
        env: dict[str, str]) -> dict:
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    env = {k: (tempfile.mkdtemp(prefix="inductor-cache-") if v == FRESH else v) for k, v in env.items()}
    out = subprocess.run([*pin, python, str(HERE / script), *who, str(qubits), str(batch), str(steps), *extra],
                         capture_output=True, text=True, cwd=HERE,
                         env={**os.environ, **ONE_THREAD, **env, "PYTHONPATH": f"{ROOT}:{HERE}"})
    if out.returncode != 0:
        sys.exit(f"{python} {script} {' '.join(who)} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--qubits", default="4,8")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=20, help="timed steps per measurement (median taken)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", default=None)
    ap.add_argument("--only", default=None, help="'|'-separated contender labels to keep (see --list)")
    ap.add_argument("--list", action="store_true", help="print the contenders' labels and stop")
    args = ap.parse_args()
    if args.list:
        print("\n".join(c[0] for c in CONTENDERS))
        return
    labels = [label.strip() for label in args.only.split("|")] if args.only else None
    unknown = set(labels or ()) - {c[0] for c in CONTENDERS}
    if unknown:
        sys.exit(f"--only: no contender labelled {sorted(unknown)}; see --list")
    contenders = []
    for c in CONTENDERS:
        if labels and c[0] not in labels:
            continue
        python = sys.executable if c[1] is None else str(HERE / c[1] / "bin" / "python")
        if Path(python).exists():
            contenders.append((c[0], python, *c[2:]))
        else:
            print(f"skipped {c[0]}: no venv at {HERE / c[1]} (see this file's docstring)", flush=True)
    qubits = [int(q) for q in args.qubits.split(",")]
    samples: dict[tuple[str, int], list[dict]] = {}
    for r in range(args.rounds):
        for q in qubits:
            for label, python, script, who, extra, env in contenders:
                result = run(python, script, who, q, args.batch, args.steps, extra, env)
                samples.setdefault((label, q), []).append(result)
                rate = result["samples_per_s"]
                print(f"round {r + 1}/{args.rounds}  {q} qubits  {label:48s} {rate:10,.0f} samples/s",
                      flush=True)
    rows = []
    for q in qubits:
        base = statistics.median(r["samples_per_s"] for r in samples[(contenders[0][0], q)])
        for label, *_ in contenders:
            runs = samples[(label, q)]
            med = statistics.median(r["samples_per_s"] for r in runs)
            compile_s = [r["compile_s"] for r in runs if "compile_s" in r]
            rows.append({"contender": label, "qubits": q, "batch": args.batch, "samples_per_s": med,
                         "vs_qkd_pl": med / base, "runs": [r["samples_per_s"] for r in runs],
                         "max_logit_error": max((r["error"] for r in runs if r.get("error") is not None), default=None),
                         "compile_s": statistics.median(compile_s) if compile_s else None})
    print(f"\ntraining step, batch {args.batch}, one core, median of {args.rounds} rounds x {args.steps} steps")
    print("| contender | qubits | samples/s | x qkd-pl | logits vs NumPy | first step (compile) |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        err = "-" if row["max_logit_error"] is None else f"{row['max_logit_error']:.0e}"
        first = "-" if row["compile_s"] is None else f"{row['compile_s']:.1f} s"
        print(f"| {row['contender']} | {row['qubits']} | {row['samples_per_s']:,.0f} | {row['vs_qkd_pl']:.2f} | {err} "
              f"| {first} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
