"""Teacher vs baseline student vs distilled student, side by side, over several seeds.

``run_comparison`` (behind ``qkd compare`` and ``qkd demo``) is a grid of one configuration:
one teacher, and a baseline and a distilled student per seed, run by ``run_grid`` and
summarized by the report's own rules (``report.mean_std``, ``report.paired_gain``), so a
comparison and a grid say the same thing about the same runs, one seed included. The two
students differ only in the distillation term: same data, split, seeds, circuit, optimizer
and epochs.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...config import DataConfig, DistillConfig, RunConfig, StudentConfig, TeacherConfig, TrainConfig
from ...training import atomic_write_json
from ...training.checkpoint import atomic_write_text
from ..sweeps.grid import BASELINE, GridSpec, run_grid
from ..sweeps.report import format_gain, mean_std, paired_gain, write_report


@dataclass
class ModelSummary:
    """One row of the comparison: test accuracy per seed, their mean and sample std (NaN for one
    seed), the parameter counts, and the wall time of all its runs."""

    test_accuracy: list[float]
    mean: float
    std: float
    n: int
    parameters: dict[str, int]
    seconds: float


@dataclass
class Comparison:
    """What ``qkd compare`` / ``qkd demo`` print and write to summary.json."""

    title: str
    seeds: list[int]
    device: str
    run_folder: str
    teacher: ModelSummary
    baseline: ModelSummary
    distilled: ModelSummary
    gain: dict[str, float] | None  # distilled - baseline, paired by seed, with a 95 % interval
    distill: dict[str, float]


# The regime where distillation pays (docs/kd-study): few labels and a pool of unlabelled images
# the teacher never saw. On digits: 20 labelled images per class (16 to train, 4 to validate) and
# 50 unlabelled ones per class; the teacher learns from the rest of the train part.
DEMO_PER_CLASS, DEMO_TRANSFER = 20, "50"


def demo_configs(qubits: int, layers: int, teacher_epochs: int, student_epochs: int,
                 per_class: int = DEMO_PER_CLASS, transfer: str = DEMO_TRANSFER) -> tuple[RunConfig, RunConfig]:
    """The demo: digits, a LeNet5 teacher trained on the train part less the students' pool, and
    v2 students with the defaults of ``qkd train-student`` on ``per_class`` labelled images per
    class, the distilled one also learning the pool of ``transfer`` images per class through the
    teacher; tested on the whole test split (360 images)."""
    data = DataConfig(dataset="digits", per_class=per_class, full_test=True)
    teacher = RunConfig(kind="teacher", data=dataclasses.replace(data, per_class=None,
                                                                 without_pool=f"{per_class}:{transfer}"),
                        teacher=TeacherConfig("lenet5"),
                        train=TrainConfig(epochs=teacher_epochs, batch_size=32, lr=1e-3, seed=0))
    student = RunConfig(kind="student", data=data, student=StudentConfig(qubits=qubits, layers=layers),
                        train=TrainConfig(epochs=student_epochs, batch_size=32, lr=1e-2, seed=0),
                        distill=DistillConfig(transfer=transfer))
    return teacher, student


def comparison_spec(teacher_cfg: RunConfig, student_cfg: RunConfig, seeds: list[int]) -> GridSpec:
    """The grid of one comparison: the student's configuration with and without the teacher.

    With a transfer set the teacher is trained on the whole train part less the pool (the
    protocol of truly unlabelled images: it never saw them, nor their labels); without one, on
    the students' images.
    """
    d = student_cfg.data
    distill = student_cfg.distill or DistillConfig()
    pool = distill.transfer != "none"
    return GridSpec(datasets=[d.dataset], classes=[classes_text(d.classes)], data=d, seeds=list(seeds),
                    student=student_cfg.student, student_train=student_cfg.train,
                    distill=distill, teachers=[BASELINE, teacher_cfg.teacher.arch],
                    teacher_train=teacher_cfg.train, name="comparison", teacher_data="all" if pool else "same",
                    teacher_pool=["unseen"] if pool else ["seen"])


def classes_text(classes: list[int] | None) -> str | None:
    """[0, 1, 2, 3] -> "0-3", [0, 3, 5] -> "0,3,5": the form grids (and cell names) take."""
    if classes is None:
        return None
    if classes == list(range(classes[0], classes[-1] + 1)):
        return f"{classes[0]}-{classes[-1]}"
    return ",".join(map(str, classes))


def run_comparison(teacher_cfg: RunConfig, student_cfg: RunConfig, seeds: list[int], out: str | Path,
                   data_dir: str | None = None, progress: bool = True, torch_device: str = "auto",
                   workers: int = 1) -> Comparison:
    """Train one teacher, then a baseline and a distilled student per seed, as a grid in ``out``.

    Args:
        teacher_cfg: the teacher's run configuration.
        student_cfg: the students' configuration (its ``distill.teacher`` is set here).
        seeds: the students' seeds.
        out: the grid folder: runs/, results.json / .csv, report.md, summary.json / .md.
        data_dir: where the datasets live.
        progress: progress bars.
        torch_device: where the teacher runs (``run_grid``).
        workers: students trained at once (processes).

    Returns:
        The comparison table's numbers (also in summary.json).
    """
    out = Path(out)
    rows = run_grid(comparison_spec(teacher_cfg, student_cfg, seeds), out, workers=workers, data_dir=data_dir,
                    progress=progress, torch_device=torch_device)
    s = student_cfg.student
    d, k = student_cfg.data, student_cfg.distill or DistillConfig()
    title = (f"{d.dataset}, {s.arch} student, {s.qubits} qubits, {s.layers} layers"
             + (f", {d.per_class} labelled images per class" if d.per_class else "")
             + (f" + {k.transfer} unlabelled per class seen only through a teacher that never saw them"
                if k.transfer != "none" else ""))
    write_report(out, title=title)
    teacher = [r for r in rows if r["role"] == "teacher"]
    by_role = {role: {r["seed"]: r for r in rows if r["role"] == role} for role in ("baseline", "distilled")}
    k = student_cfg.distill or DistillConfig()
    comparison = Comparison(
        title=title, seeds=list(seeds), device=rows[-1]["device"], run_folder=str(out),
        teacher=_summary(teacher), baseline=_summary([by_role["baseline"][x] for x in seeds]),
        distilled=_summary([by_role["distilled"][x] for x in seeds]),
        gain=paired_gain(*({x: r["test_accuracy"] for x, r in by_role[role].items()}
                           for role in ("distilled", "baseline"))),
        distill={"temperature": k.temperature, "alpha": k.alpha})
    atomic_write_json(out / "summary.json", dataclasses.asdict(comparison))
    atomic_write_text(out / "summary.md", format_table(comparison) + "\n")
    return comparison


def run_demo(out: str | Path, seeds: list[int], qubits: int = 4, layers: int = 2, teacher_epochs: int = 10,
             student_epochs: int = 15, progress: bool = True, torch_device: str = "auto",
             per_class: int = DEMO_PER_CLASS, transfer: str = DEMO_TRANSFER) -> Comparison:
    teacher, student = demo_configs(qubits, layers, teacher_epochs, student_epochs, per_class, transfer)
    return run_comparison(teacher, student, seeds, Path(out) / time.strftime("demo-%Y%m%d-%H%M%S"),
                          progress=progress, torch_device=torch_device, workers=min(2, os.cpu_count() or 1))


def _summary(rows: list[dict[str, Any]]) -> ModelSummary:
    accs = [r["test_accuracy"] for r in rows]
    mean, std = mean_std(accs)
    return ModelSummary(accs, mean, std, len(accs), {"classical": rows[0]["params_classical"],
                                                     "quantum": rows[0]["params_quantum"]},
                        sum(r["seconds"] for r in rows))


def format_table(c: Comparison) -> str:
    lines = [f"{c.title}, students on {c.device}, seeds {c.seeds} "
             f"(test accuracy %: mean +- sample std over seeds)",
             "", "| model | test accuracy | classical params | quantum params | wall time |", "|---|---|---|---|---|"]
    for role in ("teacher", "baseline", "distilled"):
        r: ModelSummary = getattr(c, role)
        if role == "teacher" or r.n == 1:
            acc = f"{100 * r.mean:.2f}" + ("" if role == "teacher" else " (n=1)")
        else:
            acc = f"{100 * r.mean:.2f} +- {100 * r.std:.2f} (n={r.n})"
        lines.append(f"| {role} | {acc} | {r.parameters['classical']:,} | {r.parameters['quantum']:,} | "
                     f"{r.seconds:.1f} s |")
    lines += ["", f"distilled - baseline, paired by seed (points, 95 % interval): {format_gain(c.gain)}"]
    return "\n".join(lines)
