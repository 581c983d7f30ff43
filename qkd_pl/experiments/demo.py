"""Teacher vs baseline student vs distilled student, side by side, over several seeds.

``run_comparison`` is the experiment runner behind ``qkd compare`` and ``qkd demo``. The two
students differ only in the distillation term: same data, split, seeds, circuit, optimizer
and epochs. Several seeds are run so the table shows a mean and a spread, not one lucky
number. Everything is trained for real; the table is computed from the runs' files.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..config import DataConfig, DistillConfig, RunConfig, StudentConfig, TeacherConfig, TrainConfig
from ..training import atomic_write_json
from ..training.checkpoint import atomic_write_text
from .train import train_student, train_teacher


def demo_configs(qubits: int, layers: int, teacher_epochs: int, student_epochs: int) -> tuple[RunConfig, RunConfig]:
    """The demo: digits, LeNet5 teacher, v2 student with the defaults of ``qkd train-student``."""
    data = DataConfig(dataset="digits")
    teacher = RunConfig(kind="teacher", data=data, teacher=TeacherConfig("lenet5"),
                        train=TrainConfig(epochs=teacher_epochs, batch_size=32, lr=1e-3, seed=0))
    student = RunConfig(kind="student", data=data, student=StudentConfig(qubits=qubits, layers=layers),
                        train=TrainConfig(epochs=student_epochs, batch_size=32, lr=1e-2, seed=0),
                        distill=DistillConfig())
    return teacher, student


def run_comparison(teacher_cfg: RunConfig, student_cfg: RunConfig, seeds: list[int], out: str | Path,
                   data_dir: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Train one teacher, then a baseline and a distilled student per seed; write summary.json/.md."""
    out = Path(out)
    teacher = train_teacher(teacher_cfg, out, name="teacher", data_dir=data_dir, progress=progress)
    rows: dict[str, list] = {"baseline": [], "distilled": []}
    for seed in seeds:
        for role in rows:
            distill = replace(student_cfg.distill, teacher=str(teacher.run_dir) if role == "distilled" else None)
            cfg = replace(student_cfg, train=replace(student_cfg.train, seed=seed), distill=distill)
            rows[role].append(train_student(cfg, out, name=f"{role}-seed{seed}", data_dir=data_dir,
                                            progress=progress))
    s = student_cfg.student
    summary = {
        "data": teacher_cfg.to_dict()["data"], "seeds": seeds, "student": student_cfg.to_dict()["student"],
        "distill": {"temperature": student_cfg.distill.temperature, "alpha": student_cfg.distill.alpha},
        "teacher": _row([teacher]), "baseline": _row(rows["baseline"]), "distilled": _row(rows["distilled"]),
        "device": rows["baseline"][0].device, "run_folder": str(out),
        "title": f"{teacher_cfg.data.dataset}, {s.arch} student, {s.qubits} qubits, {s.layers} layers",
    }
    atomic_write_json(out / "summary.json", summary)
    atomic_write_text(out / "summary.md", format_table(summary) + "\n")
    return summary


def run_demo(out: str | Path, seeds: list[int], qubits: int = 4, layers: int = 2, teacher_epochs: int = 10,
             student_epochs: int = 15, progress: bool = True) -> dict[str, Any]:
    teacher, student = demo_configs(qubits, layers, teacher_epochs, student_epochs)
    return run_comparison(teacher, student, seeds, Path(out) / time.strftime("demo-%Y%m%d-%H%M%S"),
                          progress=progress)


def _row(results) -> dict[str, Any]:
    accs = [r.test["accuracy"] for r in results]
    return {"test_accuracy": accs, "mean": statistics.fmean(accs),
            "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
            "parameters": results[0].parameters, "seconds": sum(r.seconds for r in results)}


def format_table(summary: dict[str, Any]) -> str:
    n = len(summary["seeds"])
    lines = [f"{summary['title']}, students on {summary['device']}, seeds {summary['seeds']} "
             f"(test accuracy %: mean +- sample std over seeds)",
             "", "| model | test accuracy | classical params | quantum params | wall time |",
             "|---|---|---|---|---|"]
    for role in ("teacher", "baseline", "distilled"):
        r = summary[role]
        acc = f"{100 * r['mean']:.2f}" if role == "teacher" else f"{100 * r['mean']:.2f} +- {100 * r['std']:.2f} (n={n})"
        lines.append(f"| {role} | {acc} | {r['parameters']['classical']:,} | {r['parameters']['quantum']:,} | "
                     f"{r['seconds']:.1f} s |")
    return "\n".join(lines)
