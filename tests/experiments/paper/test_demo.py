"""The demo runs the regime where distillation pays: few labels, and a pool of unlabelled images
that the teacher never saw, against labels only, paired by seed."""

import json
import pytest
from pathlib import Path

from qkd_pl.data.bundle import teacher_data_report
from qkd_pl.experiments.paper.demo import comparison_spec, demo_configs, run_demo
from qkd_pl.experiments.sweeps.grid import expand


def test_the_demos_teacher_never_saw_the_distilled_students_pool():
    teacher, student = demo_configs(4, 2, 10, 15)
    cells = expand(comparison_spec(teacher, student, [0, 1]), Path("g"))
    (t,) = [c for c in cells if c.config.kind == "teacher"]
    distilled = [c for c in cells if c.fields["role"] == "distilled"]
    baselines = [c for c in cells if c.fields["role"] == "baseline"]
    assert len(distilled) == len(baselines) == 2
    assert all(c.config.distill.transfer == "50" and Path(c.config.distill.teacher).name == t.id for c in distilled)
    assert all(c.config.distill.teacher is None and c.config.distill.transfer == "none" for c in baselines)
    seen = teacher_data_report(t.config.data, distilled[0].config.data, transfer="50")
    assert seen["pool_images"] == 500 and seen["pool_images_seen"] == 0
    assert seen["student_train_images"] == 160 and seen["train_images"] > 500  # it learnt from the rest


@pytest.mark.slow
def test_the_demo_prints_a_paired_gain_over_labels_only(tmp_path):
    c = run_demo(tmp_path, [0, 1], qubits=2, layers=1, teacher_epochs=2, student_epochs=2, progress=False)
    assert c.baseline.n == c.distilled.n == 2 and c.gain["n"] == 2
    summary = json.loads((Path(c.run_folder) / "summary.json").read_text())
    assert summary["gain"]["mean"] == c.gain["mean"]
    assert "never saw them" in c.title
    metrics = json.loads(next(Path(c.run_folder).glob("runs/distilled-*/test_metrics.json")).read_text())
    assert metrics["n_test"] == 360 and metrics["transfer_images"] == 500  # the whole test split
