"""The distillation study with every student on another simulator, and two studies compared run for run.

    QKD_CACHE_DIR=<empty> /usr/bin/time -v python benchmarks/study_precision.py run --device qkd.fused32 --out runs/kd-32
    python benchmarks/study_precision.py compare runs/kd-full/results.csv runs/kd-32/results.csv

``run`` is ``qkd reproduce kd-study --workers N`` with ``student.device`` set on every student
(``qkd.fused32``: the circuits in complex64), so the two studies differ in that alone; the teachers
are the same. ``compare`` pairs the runs by id: identical test accuracies, the paired differences
(mean, spread, 95 % interval), every cell's mean difference against its seeds' spread in the
first study, and worker-seconds by kind of run. What it answers: how much a lever that changes
the numbers buys, and how much it changes them (docs/explanation/performance.md).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import re
import statistics
from collections import defaultdict


def run(device: str, out: str, workers: int) -> None:
    from qkd_pl.experiments.paper import kd_study, reproduce

    def spec(*args, **kwargs):
        grid = kd_study.kd_study_spec(*args, **kwargs)
        return dataclasses.replace(grid, student=dataclasses.replace(grid.student, device=device))

    reproduce.SPECS["kd-study"] = spec
    reproduce.reproduce("kd-study", out, workers=workers, progress=False)


def compare(first: str, second: str) -> None:
    a, b = ({r["id"]: r for r in csv.DictReader(open(path))} for path in (first, second))
    if a.keys() != b.keys():
        raise SystemExit(f"the studies differ in their runs ({len(a.keys() ^ b.keys())} ids in one only)")
    students = [i for i in a if a[i]["role"] != "teacher"]
    teachers = [i for i in a if a[i]["role"] == "teacher"]
    acc = {i: (float(a[i]["test_accuracy"]), float(b[i]["test_accuracy"])) for i in a}
    print(f"{len(a)} runs: {len(teachers)} teachers ({sum(acc[i][0] == acc[i][1] for i in teachers)} with the same "
          f"test accuracy), {len(students)} students")
    for label, ids in [("all", students), *[(f"{q} qubits", [i for i in students if a[i]["qubits"] == q])
                                            for q in sorted({a[i]["qubits"] for i in students})]]:
        d = [100 * (acc[i][1] - acc[i][0]) for i in ids]
        m, s = statistics.mean(d), statistics.stdev(d)
        half = 1.96 * s / math.sqrt(len(d))
        print(f"  {label}: {len(d)} students, {sum(x == 0 for x in d)} with the same test accuracy; second - first "
              f"{m:+.3f} points (sd {s:.3f}, 95 % interval {m - half:+.3f} to {m + half:+.3f}), largest {max(d, key=abs):+.2f}")
    cells = defaultdict(list)
    for i in students:
        cells[re.sub(r"-s\d+$", "", i)].append(i)
    ratios = []
    for cell, ids in cells.items():
        first_acc = [acc[i][0] for i in ids]
        spread = statistics.stdev(first_acc) if len(ids) > 1 else math.nan
        delta = statistics.mean(acc[i][1] for i in ids) - statistics.mean(first_acc)
        ratios.append((abs(delta) / spread if spread > 0 else math.inf, cell, delta, spread))
    within = sum(r[0] <= 1 for r in ratios)
    print(f"  {len(cells)} cells: the mean difference within the first study's seed sd in {within}")
    for r, cell, delta, spread in sorted(ratios, reverse=True)[:3]:
        print(f"    largest: {cell}: {100 * delta:+.2f} points, seed sd {100 * spread:.2f}")
    seconds = {i: (float(a[i]["seconds"]), float(b[i]["seconds"])) for i in a}
    for label, ids in (("students", students), ("teachers", teachers)):
        x, y = (sum(seconds[i][k] for i in ids) for k in (0, 1))
        print(f"worker-seconds, {label}: {x:.0f} -> {y:.0f} ({x / y:.2f}x)")
    kinds = defaultdict(list)
    for i in students:
        r = a[i]
        kinds[(r["qubits"], r["dataset"] if r["qubits"] != "4" else "all datasets", r["data.per_class"],
               r["train.batch_size"] or "32")].append(i)
    for (q, dataset, per_class, batch), ids in sorted(kinds.items(), key=lambda kv: -sum(seconds[i][0] for i in kv[1])):
        x, y = (sum(seconds[i][k] for i in ids) for k in (0, 1))
        print(f"  {q} qubits, {dataset}, {per_class} per class, batch {batch}: {len(ids)} runs, {x:.0f} -> {y:.0f} s "
              f"({x / y:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    r = commands.add_parser("run", help="the study with every student on --device")
    r.add_argument("--device", default="qkd.fused32")
    r.add_argument("--out", required=True)
    r.add_argument("--workers", type=int, default=2)
    c = commands.add_parser("compare", help="two studies' results.csv, run for run")
    c.add_argument("first")
    c.add_argument("second")
    args = parser.parse_args()
    if args.command == "run":
        run(args.device, args.out, args.workers)
    else:
        compare(args.first, args.second)


if __name__ == "__main__":
    main()
