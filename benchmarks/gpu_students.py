"""Students on a GPU: agreement with the CPU, then a training step's speed, CPU against GPU, 4 to 20 qubits.

One call does it all and writes ``gpu_students.json`` and ``gpu_students.md`` to ``--out``:

    python benchmarks/gpu_students.py --out $OUT                    # on a machine with CUDA
    python benchmarks/gpu_students.py --device cpu --quick --out /tmp/g   # the code paths, on any machine
    python benchmarks/gpu_students.py --device cpu --qubits 16 --only timing --out docs/...  # a CPU's column

The student is the peers' and the kd-study's (``benchmarks/peers/step_timer.py``): FC 784 -> 2^Q,
amplitude encoding, 2 layers of RX RY RZ on every qubit and a ring of CNOTs, <Z> on every qubit, a
linear head to 10 classes, on qkd.fused (complex128). What it checks and measures:

1. **Agreement.** The same student (same weights) on the CPU and on ``--device``: logits and every
   parameter's gradient of the cross-entropy, relative to the largest entry, must agree to 1e-5,
   through the QNode (first calls) and through the traced graph (fourth call, which the layer
   traced for that device). Then the whole compiled step (``QKD_COMPILE_STEP=on``) on the device,
   which checks itself against the eager step before it is trusted (its refusal says why).
2. **A whole run.** ``qkd train-student`` on scikit-learn's digits, 4 qubits, 3 epochs, with
   ``--torch-device cpu`` and with ``--torch-device DEVICE``: the per-epoch losses and accuracies
   side by side (they may differ in the last digits: CPU and GPU round differently).
3. **Timing.** Samples per second of one training step (forward, cross-entropy, backward, Adam) at
   batch ``--batch``, medians of ``--steps`` steps after warm-up, each cell stopped once it has
   spent ``--cell-seconds``: the CPU with all its threads (``--cpu-max-qubits`` caps it), the
   device eager (the traced graph), and the device with the whole step compiled (at
   ``--compile-qubits``: each compilation takes tens of seconds). ``--reference FILE`` adds
   another machine's CPU column (a JSON written by this script with ``--device cpu``).

On the project's GPU machine PennyLane is not installed and nothing can be fetched; carry it as
wheels (``benchmarks/gpu_wheels.sh`` downloads them here) and set ``QKD_CACHE_DIR``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
LAYERS, CLASSES, TOLERANCE = 2, 10, 1e-5


def student(n: int) -> nn.Module:
    from qkd_pl.config import StudentConfig
    from qkd_pl.devices import resolve_backend
    from qkd_pl.students import build_student

    cfg = StudentConfig(qubits=n, layers=LAYERS, reducer="fc", encoding="amplitude", ansatz="ring")
    return build_student(cfg, resolve_backend("qkd.fused", n), (1, 28, 28), CLASSES, torch.zeros(1), torch.ones(1))


def batch_of(n_samples: int, device: torch.device, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n_samples, 1, 28, 28, generator=g)
    y = torch.randint(0, CLASSES, (n_samples,), generator=g)
    return x.to(device), y.to(device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return float((a - b).abs().max() / a.abs().max().clamp_min(1e-300))


# --------------------------------------------------------------------------- 1. agreement
def agreement(n: int, device: torch.device, batch: int) -> dict:
    """Logits and gradients on the CPU and on ``device``, on the QNode path and on the traced graph."""
    torch.manual_seed(n)
    here = student(n)
    there = copy.deepcopy(here).to(device)
    x, y = batch_of(batch, torch.device("cpu"), seed=n)
    calls = {}
    for call in range(4):  # the layer traces its graph on its third call; the fourth runs it
        row = {}
        outs = []
        for model, inputs, labels in ((here, x, y), (there, x.to(device), y.to(device))):
            model.zero_grad(set_to_none=True)
            logits = model(inputs)
            nn.functional.cross_entropy(logits, labels).backward()
            outs.append((logits, {k: p.grad for k, p in model.named_parameters()}))
        row["logits"] = relative(outs[0][0], outs[1][0])
        row["gradients"] = max(relative(outs[0][1][k], outs[1][1][k]) for k in outs[0][1])
        calls[call] = row
    traced = there.quantum.compiled.traces > 0
    worst = max(max(r.values()) for r in calls.values())
    return {"qubits": n, "batch": batch, "qnode_path": calls[0], "traced_graph": calls[3],
            "traced_on_device": traced, "worst": worst, "agrees": worst <= TOLERANCE and traced}


def compiled_step(n: int, device: torch.device, batch: int) -> dict:
    """The whole step compiled on ``device``: trusted (checked against eager there) or refused, and its cost."""
    sys.path.insert(0, str(ROOT / "benchmarks" / "peers"))
    from step_timer import whole_step

    torch.manual_seed(n)
    model = student(n).to(device)
    x, y = batch_of(batch, device, seed=n)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with _env(QKD_COMPILE_STEP="on"):
        step, compiled = whole_step(model, opt, x, y)
        t0 = time.perf_counter()
        try:
            for _ in range(12):
                step()
                if compiled():
                    break
        except SystemExit as refused:  # whole_step's own report of a refusal
            return {"qubits": n, "compiled": False, "why": str(refused)}
        sync(device)
        return {"qubits": n, "compiled": compiled(), "seconds_to_trust": time.perf_counter() - t0}


@contextlib.contextmanager
def _env(**values: str):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# --------------------------------------------------------------------------- 2. a whole run
def whole_run(device: str, out: Path) -> dict:
    """``qkd train-student`` on digits with the student on the CPU and on ``device``: per-epoch numbers."""
    rows = {}
    for side, where in (("cpu", "cpu"), ("device", device)):
        folder = out / f"run-{side}"
        cmd = [sys.executable, str(ROOT / "cli.py"), "train-student", "--dataset", "digits", "--qubits", "4",
               "--epochs", "3", "--torch-device", where, "--device", "qkd.fused", "--out", str(folder), "--name", "s",
               "--quiet", "--overwrite"]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            return {"error": f"{' '.join(cmd[1:])} exited {done.returncode}: {done.stderr.strip()[-400:]}"}
        metrics = json.loads((folder / "s" / "metrics.json").read_text())
        test = json.loads((folder / "s" / "test_metrics.json").read_text())
        rows[side] = {"torch_device": where, "seconds": time.perf_counter() - t0, "trained_on": test["trained_on"],
                       "test_accuracy": test["test_accuracy"],
                       "epochs": [{k: m[k] for k in ("epoch", "train_loss", "val_accuracy")} for m in metrics]}
    losses = [(a["train_loss"], b["train_loss"]) for a, b in zip(rows["cpu"]["epochs"], rows["device"]["epochs"])]
    rows["largest_loss_difference"] = max(abs(a - b) for a, b in losses)
    return rows


# --------------------------------------------------------------------------- 3. timing
def samples_per_s(n: int, device: torch.device, batch: int, steps: int, cell_seconds: float, compiled: bool) -> dict:
    """One training step's speed: eager (the traced graph) or the whole step compiled."""
    torch.manual_seed(n)
    try:
        model = student(n).to(device)
        x, y = batch_of(batch, device, seed=n)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        warm_up = 0.0
        if compiled:
            sys.path.insert(0, str(ROOT / "benchmarks" / "peers"))
            from step_timer import whole_step

            with _env(QKD_COMPILE_STEP="on"):
                whole, is_compiled = whole_step(model, opt, x, y)

                def step_fn() -> float:  # the commit's copies are asynchronous on a GPU: wait for them
                    t0 = time.perf_counter()
                    whole()
                    sync(device)
                    return time.perf_counter() - t0

                while not is_compiled():
                    warm_up += step_fn()
                    if warm_up > 10 * cell_seconds + 300:
                        return {"error": "not compiled in time"}
        else:
            def step_fn() -> float:
                t0 = time.perf_counter()
                opt.zero_grad(set_to_none=True)
                nn.functional.cross_entropy(model(x), y).backward()
                opt.step()
                sync(device)
                return time.perf_counter() - t0

            warm_up = sum(step_fn() for _ in range(4))  # the QNode's calls, the trace, the first graph calls
        times: list[float] = []
        while len(times) < steps and (sum(times) < cell_seconds or len(times) < 2):
            t = step_fn()
            sync(device)
            times.append(t)
        return {"samples_per_s": batch / statistics.median(times), "steps": len(times), "warm_up_s": warm_up}
    except SystemExit as refused:
        return {"error": str(refused)}
    except torch.cuda.OutOfMemoryError:
        return {"error": "out of GPU memory"}
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()


def table(results: dict, reference: dict | None) -> str:
    """samples/s per qubit count: the CPU, a reference CPU, the device eager and compiled, and the ratios."""
    device, rows = results["device"], results["timing"]
    ref = {r["qubits"]: r.get("cpu", {}).get("samples_per_s") for r in (reference or {}).get("timing", [])}
    fmt = lambda v: f"{v:,.0f}" if v else "-"  # noqa: E731
    ratio = lambda a, b: f"{a / b:.1f}x" if a and b else "-"  # noqa: E731
    speed = lambda r, k: r.get(k, {}).get("samples_per_s")  # noqa: E731
    best = lambda r: max([v for v in (speed(r, "eager"), speed(r, "compiled")) if v] or [0])  # noqa: E731
    columns = {"qubits": lambda r: str(r["qubits"]), "batch": lambda r: str(r["batch"]),
               f"CPU ({results['cpu_threads']} threads)": lambda r: fmt(speed(r, "cpu"))}
    if reference:
        columns[f"reference CPU ({reference.get('machine')}, {reference.get('cpu_threads')} threads)"] = \
            lambda r: fmt(ref.get(r["qubits"]))
    if any("eager" in r for r in rows):
        columns[f"{device} eager"] = lambda r: fmt(speed(r, "eager"))
    if any("compiled" in r for r in rows):
        columns[f"{device} whole step compiled"] = lambda r: fmt(speed(r, "compiled"))
    if any("eager" in r or "compiled" in r for r in rows):
        columns[f"best {device} / CPU"] = lambda r: ratio(best(r), speed(r, "cpu"))
        if reference:
            columns[f"best {device} / reference"] = lambda r: ratio(best(r), ref.get(r["qubits"]))
    errors = [f"{r['qubits']} qubits, {k}: {v['error']}" for r in rows for k, v in r.items()
              if isinstance(v, dict) and "error" in v]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(f(r) for f in columns.values()) + " |" for r in rows]
    return "\n".join(lines + ([""] + [f"- {e}" for e in errors] if errors else []))


def write_markdown(results: dict, a: argparse.Namespace) -> str:
    """``gpu_students.md`` from what ``results`` holds so far (rewritten as rows finish); returns its text."""
    device = results["device"]
    reference = json.loads(a.reference.read_text()) if a.reference else None
    text = [f"# Students on {device} ({results['gpu'] or a.machine}), {results['date']}", "",
            f"`python {results['command']}`; torch {torch.__version__}.", ""]
    if "agreement" in results:
        text += ["Agreement with the CPU (largest difference relative to the largest entry; 1e-5 passes):", "",
                 "| qubits | QNode logits | QNode gradients | graph logits | graph gradients | agrees |",
                 "|---|---|---|---|---|---|"]
        text += [f"| {r['qubits']} | {r['qnode_path']['logits']:.1e} | {r['qnode_path']['gradients']:.1e} | "
                 f"{r['traced_graph']['logits']:.1e} | {r['traced_graph']['gradients']:.1e} | {r['agrees']} |"
                 for r in results["agreement"]]
        text += ["", f"Whole step compiled: {json.dumps(results['compiled_step'])}", "",
                 f"Whole run (digits, 4 qubits, 3 epochs), largest train-loss difference: "
                 f"{results['whole_run'].get('largest_loss_difference', results['whole_run'].get('error'))}", ""]
    if "timing" in results:
        text += [f"Training step, samples/s (batch {a.batch}):", "", table(results, reference), ""]
    if results.get("skipped_after_deadline"):
        text += [f"Not timed (past --deadline {a.deadline:.0f} s): {results['skipped_after_deadline']} qubits.", ""]
    (a.out / "gpu_students.md").write_text("\n".join(text))
    return "\n".join(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder for gpu_students.json and .md")
    p.add_argument("--device", default="cuda", help="the device under test (cpu runs the code paths anywhere)")
    p.add_argument("--qubits", default="4,8,12,16,18,20", help="timing: qubit counts")
    p.add_argument("--check-qubits", default="4,8,12", help="agreement: qubit counts")
    p.add_argument("--compile-qubits", default="8,16", help="timing: where the whole step is compiled too")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=20, help="timing: steps per cell, at most")
    p.add_argument("--cell-seconds", type=float, default=8.0, help="timing: a cell stops after this much stepping")
    p.add_argument("--cpu-max-qubits", type=int, default=18, help="timing: the CPU column stops here")
    p.add_argument("--deadline", type=float, default=480.0,
                   help="seconds: no new timing cell starts after this (the files are written as rows finish)")
    p.add_argument("--only", choices=("agreement", "timing", "all"), default="all")
    p.add_argument("--reference", type=Path, help="another machine's CPU column (this script's JSON)")
    p.add_argument("--machine", default=platform.processor() or platform.machine(), help="named in the JSON")
    p.add_argument("--quick", action="store_true", help="4 and 6 qubits, 3 steps: the code paths only")
    a = p.parse_args(argv)
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_students.py: torch sees no CUDA device here; use --device cpu to run the code paths", file=sys.stderr)
        return 2
    if a.quick:
        a.qubits, a.check_qubits, a.compile_qubits, a.steps, a.cell_seconds = "4,6", "4", "4", 3, 1.0
    os.environ.setdefault("QKD_CACHE_DIR", str(Path(tempfile.gettempdir()) / "qkd-cache"))
    a.out.mkdir(parents=True, exist_ok=True)
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    ints = lambda s: [int(v) for v in s.split(",") if v]  # noqa: E731
    results: dict = {"device": str(device), "machine": a.machine, "cpu_threads": threads,
                     "torch": torch.__version__, "batch": a.batch,
                     "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
                     "date": time.strftime("%Y-%m-%d"),
                     "command": shlex.join(["benchmarks/gpu_students.py", *(sys.argv[1:] if argv is None else argv)])}
    started = time.perf_counter()

    def save() -> None:
        (a.out / "gpu_students.json").write_text(json.dumps(results, indent=1))
        write_markdown(results, a)

    if a.only in ("agreement", "all"):
        results["agreement"] = [agreement(n, device, a.batch) for n in ints(a.check_qubits)]
        print(json.dumps(results["agreement"]), flush=True)
        results["compiled_step"] = [compiled_step(n, device, a.batch) for n in ints(a.compile_qubits)[:1]]
        print(json.dumps(results["compiled_step"]), flush=True)
        results["whole_run"] = whole_run(a.device, a.out)
        print(json.dumps(results["whole_run"])[:600], flush=True)
        save()
    if a.only in ("timing", "all"):
        results["timing"] = []
        for n in ints(a.qubits):
            if time.perf_counter() - started > a.deadline:
                results.setdefault("skipped_after_deadline", []).append(n)
                continue
            row = {"qubits": n, "batch": a.batch}
            if n <= a.cpu_max_qubits:
                row["cpu"] = samples_per_s(n, torch.device("cpu"), a.batch, a.steps, a.cell_seconds, False)
            if device.type != "cpu":
                row["eager"] = samples_per_s(n, device, a.batch, a.steps, a.cell_seconds, False)
            if n in ints(a.compile_qubits):
                row["compiled"] = samples_per_s(n, device, a.batch, a.steps, a.cell_seconds, True)
            results["timing"].append(row)
            print(json.dumps(row), flush=True)
            save()
    save()
    print(write_markdown(results, a))
    failed = [r["qubits"] for r in results.get("agreement", []) if not r["agrees"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
