"""A student run is planned (validated, device resolved, teacher loaded) once, then executed."""

import hashlib
from pathlib import Path

import pytest
import torch

from qkd_pl.config import DataConfig, DistillConfig, RunConfig, StudentConfig, TeacherConfig, TrainConfig
from qkd_pl.errors import QkdError
from qkd_pl.experiments import train_student, train_teacher
from qkd_pl.experiments.single.train import plan_student

DATA = DataConfig("digits", classes=[0, 1], per_class=30)


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    cfg = RunConfig("teacher", data=DATA, train=TrainConfig(epochs=1, lr=1e-3), teacher=TeacherConfig("lenet5"))
    return train_teacher(cfg, tmp_path_factory.mktemp("t"), name="teacher", progress=False).run_dir


def student(teacher: Path | None) -> RunConfig:
    return RunConfig("student", data=DATA, train=TrainConfig(epochs=1), student=StudentConfig(qubits=2),
                     distill=DistillConfig(teacher=str(teacher) if teacher else None))


def test_the_teacher_checkpoint_is_read_once(teacher_run, tmp_path, monkeypatch):
    teacher_file = (teacher_run / "best.pt").resolve()
    reads, loads = [], []
    read_bytes, load = Path.read_bytes, torch.load
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self.resolve()) or read_bytes(self))
    monkeypatch.setattr(torch, "load", lambda f, *a, **k: loads.append(f) or load(f, *a, **k))
    result = train_student(student(teacher_run), tmp_path, progress=False)
    assert reads.count(teacher_file) == 1
    assert not [f for f in loads if isinstance(f, (str, Path)) and Path(f).resolve() == teacher_file]
    metrics = __import__("json").loads((result.run_dir / "test_metrics.json").read_text())
    assert metrics["teacher_sha256"] == hashlib.sha256(teacher_file.read_bytes()).hexdigest()


def test_a_plan_holds_the_validated_config_backend_and_teacher(teacher_run):
    plan = plan_student(student(teacher_run))
    assert plan.backend.device == "qkd.fused" and plan.teacher.path == teacher_run / "best.pt"
    assert not any(p.requires_grad for p in plan.teacher.model.parameters()) and not plan.teacher.model.training
    assert plan_student(student(None)).teacher is None


def test_a_student_run_is_refused_as_teacher(teacher_run, tmp_path):
    baseline = train_student(student(None), tmp_path, name="b", progress=False).run_dir
    with pytest.raises(QkdError, match="is a student run, not a teacher"):
        plan_student(student(baseline))


def teacher_on(tmp_path, **data) -> Path:
    cfg = RunConfig("teacher", data=DataConfig("digits", classes=[0, 1], **data), train=TrainConfig(epochs=1, lr=1e-3),
                    teacher=TeacherConfig("lenet5"))
    return train_teacher(cfg, tmp_path, progress=False).run_dir


def test_a_teacher_of_the_whole_class_subset_teaches_a_capped_student_and_the_run_says_so(tmp_path):
    import json

    full = teacher_on(tmp_path)  # the notebooks' protocol: the teacher saw every training image of the classes
    result = train_student(student(full), tmp_path, name="s", progress=False)
    seen = json.loads((result.run_dir / "test_metrics.json").read_text())["teacher_data"]
    assert seen["data"]["per_class"] is None and seen["student_train_images"] == 48  # 24 of each class
    assert seen["train_images"] == seen["student_train_images"] + seen["extra_train_images"] > 200


@pytest.mark.parametrize("data,needle", [
    (dict(per_class=20), "16 of the student's 48 training images are not among the teacher's"),
    (dict(split_seed=1), "the teacher was trained on .* of the student's 12 validation images"),
    (dict(per_class=30, split="capped"), "not among the teacher's.*validation images"),
])
def test_a_teacher_that_lacks_the_students_images_or_saw_its_validation_images_is_refused(tmp_path, data, needle):
    with pytest.raises(QkdError, match=needle):
        plan_student(student(teacher_on(tmp_path, **data)))
