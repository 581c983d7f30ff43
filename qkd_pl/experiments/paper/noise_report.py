"""The noise study's report: accuracy drops with paired intervals, transpiled circuit sizes, and
whether distillation changes the drop (``OUT/report.md``, ``OUT/results.json``, a plot).

Intervals: a drop is the mean over test images of (exact correct - noisy correct), each image a
pair, with a 95 % normal interval (1.96 standard errors of that mean). The distilled-minus-
baseline contrast pairs the same images too: per image, the distilled student's difference
minus the baseline's.
"""

from __future__ import annotations

import json
from pathlib import Path

from ...training import atomic_write_json
from ...training.checkpoint import atomic_write_text
from ..single.per_image import paired

NAMES = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "cifar10": "CIFAR-10 (JPEG copy)", "digits": "digits"}


def fmt(c: dict) -> str:
    return f"{100 * c['mean']:+.2f} [{100 * c['low']:+.2f}, {100 * c['high']:+.2f}]"


def _contrast(exact_d: str, noisy_d: str, exact_b: str, noisy_b: str) -> dict:
    """(exact - noisy) of the distilled student minus that of the baseline, per image."""
    n = min(map(len, (exact_d, noisy_d, exact_b, noisy_b)))
    a = "".join(str(1 + int(e) - int(x)) for e, x in zip(exact_d[:n], noisy_d[:n]))  # 0..2: drop + 1
    b = "".join(str(1 + int(e) - int(x)) for e, x in zip(exact_b[:n], noisy_b[:n]))
    return paired(a, b)


def write_noise_report(out: Path, jobs: list, backends: tuple[str, ...], generations: dict[str, str],
                       quick: bool = False) -> Path:
    out = Path(out)
    results = {(j.run, j.device): j.result() for j in jobs}
    runs = sorted({j.run for j in jobs})
    info = {}
    for run in runs:
        cfg = json.loads((Path(run) / "config.json").read_text())
        info[run] = {"dataset": cfg["data"]["dataset"], "qubits": cfg["student"]["qubits"],
                     "role": "distilled" if cfg.get("distill") and cfg["distill"].get("teacher") else "baseline"}
    runs.sort(key=lambda r: (list(NAMES).index(info[r]["dataset"]) if info[r]["dataset"] in NAMES else 9,
                             info[r]["qubits"], info[r]["role"]))
    rows, lines = [], []
    lines += ["# Quantum students on IBM fake backends of three generations (qkd reproduce noise)", ""]
    if quick:
        lines += ["**--quick**: digits, tiny students, fake_manila only; its numbers mean nothing.", ""]
    lines += ["Each student evaluated exactly (qkd.fused) and on the fake backends' emulation (`noisy:<backend>`: "
              "the circuit transpiled for that backend, run under its noise model as exact density matrices, "
              "1,024 shots sampled per image). Drop = exact minus noisy accuracy on the same images, in points, "
              "[95 % paired interval]. n: test images evaluated on the noisy device; where it is below the test "
              "split, the first n test images (the study's --images-8q), and the drop compares the exact student on "
              "the same images.", ""]
    head = "| dataset | qubits | student | exact (whole test set) | " + " | ".join(
        f"{b} ({generations.get(b, '')}) accuracy, drop" for b in backends) + " | n |"
    lines += [head, "|" + "---|" * (5 + len(backends))]
    for run in runs:
        i = info[run]
        exact = results.get((run, "exact"))
        if exact is None:
            continue
        cells, n = [], None
        for b in backends:
            noisy = results.get((run, f"noisy:{b}"))
            if noisy is None:
                cells.append("(not run)")
                continue
            drop = paired(exact["correct"], noisy["correct"])
            n = noisy["n"]
            cells.append(f"{100 * noisy['accuracy']:.2f} %, {fmt(drop)}")
            rows.append({**i, "run": run, "backend": b, "exact_accuracy": exact["accuracy"],
                         "exact_accuracy_same_images": sum(map(int, exact["correct"][:n])) / n,
                         "noisy_accuracy": noisy["accuracy"], "n": n, "drop": drop,
                         "depth": noisy["depth"], "two_qubit_gates": noisy["two_qubit_gates"],
                         "seconds": noisy["seconds"]})
        lines.append(f"| {NAMES.get(i['dataset'], i['dataset'])} | {i['qubits']} | {i['role']} | "
                     f"{100 * exact['accuracy']:.2f} % | " + " | ".join(cells) + f" | {n if n else ''} |")
    lines += ["", "## Transpiled circuits", "",
              "The same circuit structure for every student of a qubit count (FC -> amplitude encoding as an RY tree "
              "-> 2 StronglyEntanglingLayers -> <Z> on every qubit), transpiled with Qiskit's preset pass manager "
              "(optimization level 1, seed 0):", "", "| backend | qubits | depth | two-qubit gates |", "|---|---|---|---|"]
    seen = set()
    for r in rows:
        key = (r["backend"], r["qubits"])
        if key not in seen and r["depth"] is not None:
            seen.add(key)
            lines.append(f"| {r['backend']} | {r['qubits']} | {r['depth']} | {r['two_qubit_gates']} |")
    lines += ["", "## Does distillation change robustness to noise?", "",
              "Drop of the distilled student minus drop of the labels-only student, on the same images "
              "(points [95 % paired interval]; negative: the distilled student loses less):", "",
              "| dataset | qubits | " + " | ".join(backends) + " |", "|" + "---|" * (2 + len(backends))]
    contrasts = []
    for dataset in dict.fromkeys(info[r]["dataset"] for r in runs):
        for q in sorted({info[r]["qubits"] for r in runs}):
            pair = {info[r]["role"]: r for r in runs if info[r]["dataset"] == dataset and info[r]["qubits"] == q}
            if set(pair) != {"baseline", "distilled"}:
                continue
            cells = []
            for b in backends:
                parts = [results.get((pair[role], dev)) for role in ("distilled", "baseline")
                         for dev in ("exact", f"noisy:{b}")]
                if any(p is None for p in parts):
                    cells.append("")
                    continue
                c = _contrast(*(p["correct"] for p in parts))
                contrasts.append({"dataset": dataset, "qubits": q, "backend": b, **c})
                cells.append(fmt(c))
            lines.append(f"| {NAMES.get(dataset, dataset)} | {q} | " + " | ".join(cells) + " |")
    checks = []
    for run in runs:
        for b in backends:
            aer, emu = results.get((run, f"ibm:{b}")), results.get((run, f"noisy:{b}"))
            if aer is None or emu is None:
                continue
            c = paired(emu["correct"], aer["correct"])
            checks.append({"run": run, "backend": b, "aer_accuracy": aer["accuracy"],
                           "emulation_accuracy": sum(map(int, emu["correct"][:c["n"]])) / c["n"], **c,
                           "aer_seconds": aer["seconds"]})
    if checks:
        lines += ["", "## The emulation against Aer", "",
                  "The same students on `ibm:<backend>` (Aer running the fake backend's own jobs: the batched device, "
                  "one Estimator job per 1,000 images, 1,024 shots) on the first test images; emulation minus Aer, "
                  "paired per image:", "", "| student | backend | n | Aer | emulation | difference | Aer seconds |",
                  "|---|---|---|---|---|---|---|"]
        for c in checks:
            i = info[c["run"]]
            lines.append(f"| {NAMES.get(i['dataset'], i['dataset'])} {i['qubits']}q {i['role']} | {c['backend']} | "
                         f"{c['n']} | {100 * c['aer_accuracy']:.2f} % | {100 * c['emulation_accuracy']:.2f} % | "
                         f"{fmt(c)} | {c['aer_seconds']:.0f} |")
    plot = _plot(rows, backends, out / "plots" / "drop_by_backend.png")
    if plot:
        lines += ["", f"![accuracy drop per backend]({plot.relative_to(out)})"]
    def local(row: dict) -> dict:  # run folders relative to the study's folder, so the file travels
        run = Path(row["run"])
        return {**row, "run": str(run.relative_to(out)) if run.is_relative_to(out) else str(run)}

    atomic_write_json(out / "noise_results.json", {"drops": [local(r) for r in rows], "contrasts": contrasts,
                                                   "checks": [local(c) for c in checks]})
    report = out / "report.md"
    atomic_write_text(report, "\n".join(lines) + "\n")
    return report


def _plot(rows: list[dict], backends: tuple[str, ...], path: Path) -> Path | None:
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    students = list(dict.fromkeys((r["dataset"], r["qubits"], r["role"]) for r in rows))
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(students)), 3.6))
    width = 0.8 / len(backends)
    for k, b in enumerate(backends):
        for s, key in enumerate(students):
            r = next((r for r in rows if (r["dataset"], r["qubits"], r["role"]) == key and r["backend"] == b), None)
            if r is None:
                continue
            d = r["drop"]
            ax.bar(s + k * width, 100 * d["mean"], width, color=f"C{k}", label=b if s == 0 else None,
                   yerr=[[100 * (d["mean"] - d["low"])], [100 * (d["high"] - d["mean"])]], capsize=2)
    ax.set_xticks([s + 0.4 - width / 2 for s in range(len(students))])
    short = {"fashion-mnist": "Fashion", "cifar10": "CIFAR-10"}
    ax.set_xticklabels([f"{short.get(d, NAMES.get(d, d))}\n{q}q {role}" for d, q, role in students], fontsize=7)
    ax.set_ylabel("accuracy drop (points)")
    ax.axhline(0, color="black", lw=0.5)
    ax.legend(fontsize=7)
    ax.set_title("exact minus noisy test accuracy (95 % paired intervals)", fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
