"""The distillation study with every student on another simulator, and two studies compared run for run.

    QKD_CACHE_DIR=<empty> /usr/bin/time -v python benchmarks/study_precision.py run --device qkd.fused32 --out runs/kd-32
    python benchmarks/study_precision.py compare runs/kd-full/results.csv runs/kd-32/results.csv

``run`` is ``qkd reproduce kd-study --workers N`` with ``student.device`` set on every student
(``qkd.fused32``: the circuits in complex64), so the two studies differ in that alone (the teachers
are trained the same way; ``--quick``: the tiny study on digits, to check the path). ``compare``
pairs the runs by id: how many students kept their test accuracy and how many moved up or down,
the paired differences (mean, spread, a normal 95 % interval), every cell's change of its mean
over seeds against that mean's standard error in the first study, and worker-seconds by kind of
run. What it answers: how much a lever that changes the numbers buys, and how much it changes
them (docs/explanation/performance.md).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import re
import statistics
from collections import defaultdict


def run(device: str, out: str, workers: int, quick: bool = False) -> None:
    from qkd_pl.experiments.paper import kd_study, reproduce

    def spec(*args, **kwargs):
        grid = kd_study.kd_study_spec(*args, **kwargs)
        return dataclasses.replace(grid, student=dataclasses.replace(grid.student, device=device))

    reproduce.SPECS["kd-study"] = spec
    reproduce.reproduce("kd-study", out, quick=quick, workers=workers, progress=False)


def compare(first: str, second: str) -> str:
    """The report, as printed."""
    a, b = ({r["id"]: r for r in csv.DictReader(open(path))} for path in (first, second))
    if a.keys() != b.keys():
        raise SystemExit(f"the studies differ in their runs ({len(a.keys() ^ b.keys())} ids in one only)")
    students = [i for i in a if a[i]["role"] != "teacher"]
    teachers = [i for i in a if a[i]["role"] == "teacher"]
    acc = {i: (float(a[i]["test_accuracy"]), float(b[i]["test_accuracy"])) for i in a}
    lines = [f"{len(a)} runs: {len(teachers)} teachers ({sum(acc[i][0] == acc[i][1] for i in teachers)} with the same "
             f"test accuracy), {len(students)} students"]
    for label, ids in [("all", students), *[(f"{q} qubits", [i for i in students if a[i]["qubits"] == q])
                                            for q in sorted({a[i]["qubits"] for i in students})]]:
        d = [100 * (acc[i][1] - acc[i][0]) for i in ids]
        up, down = sum(x > 0 for x in d), sum(x < 0 for x in d)
        line = f"  {label}: {len(d)} students, {len(d) - up - down} with the same test accuracy, {up} up, {down} down"
        if len(d) > 1:
            m, s = statistics.mean(d), statistics.stdev(d)
            half = 1.96 * s / math.sqrt(len(d))
            line += (f"; second - first {m:+.3f} points (sd {s:.3f}, 95 % interval {m - half:+.3f} to {m + half:+.3f}),"
                     f" largest {max(d, key=abs):+.2f}")
        lines.append(line)
    cells = defaultdict(list)
    for i in students:
        cells[re.sub(r"-s\d+$", "", i)].append(i)
    scores = []
    for cell, ids in cells.items():
        first_acc = [acc[i][0] for i in ids]
        delta = statistics.mean(acc[i][1] for i in ids) - statistics.mean(first_acc)
        error = statistics.stdev(first_acc) / math.sqrt(len(ids)) if len(ids) > 1 else 0.0
        scores.append((0.0 if delta == 0 else abs(delta) / error if error > 0 else math.inf, cell, delta, error))
    seeds = sorted({len(ids) for ids in cells.values()})
    lines.append(f"  {len(cells)} cells ({'/'.join(map(str, seeds))} seeds): the mean moved by at most the standard "
                 f"error of the first study's mean in {sum(r[0] <= 1 for r in scores)}, "
                 f"did not move in {sum(r[2] == 0 for r in scores)}")
    for score, cell, delta, error in sorted(scores, reverse=True)[:3]:
        if delta:
            lines.append(f"    largest: {cell}: {100 * delta:+.2f} points, {score:.2f} standard errors "
                         f"({100 * error:.2f})")
    seconds = {i: (float(a[i]["seconds"]), float(b[i]["seconds"])) for i in a}
    for label, ids in (("students", students), ("teachers", teachers)):
        x, y = (sum(seconds[i][k] for i in ids) for k in (0, 1))
        lines.append(f"worker-seconds, {label}: {x:.0f} -> {y:.0f} ({x / y:.2f}x)")
    kinds = defaultdict(list)
    for i in students:
        r = a[i]
        kinds[(r["qubits"], r["dataset"] if r["qubits"] != "4" else "all datasets", r["data.per_class"],
               r["train.batch_size"] or "32")].append(i)
    for (q, dataset, per_class, batch), ids in sorted(kinds.items(), key=lambda kv: -sum(seconds[i][0] for i in kv[1])):
        x, y = (sum(seconds[i][k] for i in ids) for k in (0, 1))
        lines.append(f"  {q} qubits, {dataset}, {per_class} per class, batch {batch}: {len(ids)} runs, "
                     f"{x:.0f} -> {y:.0f} s ({x / y:.2f}x)")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    r = commands.add_parser("run", help="the study with every student on --device")
    r.add_argument("--device", default="qkd.fused32")
    r.add_argument("--out", required=True)
    r.add_argument("--workers", type=int, default=2)
    r.add_argument("--quick", action="store_true", help="the tiny study (digits), to check the path")
    c = commands.add_parser("compare", help="two studies' results.csv, run for run")
    c.add_argument("first")
    c.add_argument("second")
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args.device, args.out, args.workers, args.quick)
    else:
        print(compare(args.first, args.second), end="")


if __name__ == "__main__":
    main()
