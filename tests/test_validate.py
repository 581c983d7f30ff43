"""validate(config): one check of a run's configuration, used by the CLI, the Python entry
points and grids, refusing with the field, the value and the valid choices."""

import pytest

from qkd_pl.config import DataConfig, DistillConfig, RunConfig, StudentConfig, TeacherConfig, TrainConfig
from qkd_pl.errors import QkdError
from qkd_pl.experiments import train_student
from qkd_pl.validate import validate


def student(**fields) -> RunConfig:
    data = fields.pop("data", DataConfig())
    return RunConfig("student", data=data, student=StudentConfig(**fields), distill=DistillConfig())


def test_a_dataset_alias_becomes_its_name():
    assert validate(student(data=DataConfig("fashion"))).data.dataset == "fashion-mnist"


@pytest.mark.parametrize("cfg,needle", [
    (student(encoding="amplitud"), "student.encoding = 'amplitud' is not one of: amplitude, angle, qubit"),
    (student(reducer="pool"), "student.reducer = 'pool' is not one of: fc, avgpool"),
    (student(ansatz="strongly"), "student.ansatz = 'strongly' is not one of: paper, strong"),
    (student(rotation="W"), "student.rotation = 'W' is not one of: X, Y, Z"),
    (student(arch="v3"), "student.arch = 'v3' is not one of: v2, hybrid-cnn"),
    (student(qubits=0), "student.qubits = 0 must be at least 1"),
    (student(qubits=25), "student.qubits = 25 must be at most 24"),
    (student(qubits="4"), "student.qubits = '4' is not a int"),
    (student(layers=True), "student.layers = True is not a int"),
    (student(data=DataConfig("svhn")), "unknown --dataset 'svhn'; choose one of: digits, mnist"),
    (student(data=DataConfig(val_fraction=1.0)), "data.val_fraction = 1.0 must be below 1"),
    (student(data=DataConfig(classes=[0, 12])), "classes names \\[12\\], but this dataset has classes 0-9"),
    (student(data=DataConfig(classes=[3])), "name two or more different classes"),
    (student(device="lightning.qubit", arch="hybrid-cnn"), "adjoint differentiation does not support"),
    (student(device="qiskit.aer"), "is for evaluation"),
    (student(device="lightning.qubit", readout="probs"), "--readout probs measures basis-state probabilities"),
    (student(readout="zzz"), "student.readout = 'zzz' is not one of: z, zz, probs"),
    (student(control_match="size"), "student.control_match = 'size' is not one of: parameters, width"),
    (RunConfig("student", student=StudentConfig(), distill=DistillConfig(kd_loss="hinton-classic", alpha=1.5)),
     "weights the cross-entropy by 1 - alpha; alpha = 1.5 would make it negative"),
    (RunConfig("student", student=StudentConfig(), distill=DistillConfig(kd_loss="fitnet")),
     "distill.kd_loss = 'fitnet' is not one of: hinton, hinton-classic, dist, lskd, dkd"),
    (student(device="quantum-computer"), "unknown --device 'quantum-computer'"),
    (RunConfig("student", student=StudentConfig(), distill=DistillConfig(temperature=0.0)),
     "distill.temperature = 0.0 must be above 0"),
    (RunConfig("student", train=TrainConfig(epochs=0), student=StudentConfig()), "train.epochs = 0 must be at least 1"),
    (RunConfig("teacher", teacher=TeacherConfig("vgg")), "teacher.arch = 'vgg' is not one of: lenet5, alexnet-v1"),
    (RunConfig("teacher", teacher=TeacherConfig("ensemble")), "--arch ensemble needs --members"),
    (RunConfig("teacher"), "a teacher run needs its teacher section"),
    (RunConfig("teacher", train=TrainConfig(schedule="cosine"), teacher=TeacherConfig()),
     "train.schedule = 'cosine' is not one of: constant, onecycle"),
    (RunConfig("student", train=TrainConfig(augment="rotate"), student=StudentConfig()),
     "train.augment = 'rotate' is not one of: none, auto, crop-flip, shift-rotate"),
    (RunConfig("student", train=TrainConfig(mixup=-0.5), student=StudentConfig()),
     "train.mixup = -0.5 must be at least 0"),
    (RunConfig("pupil"), "kind 'pupil' is not one of: teacher, student"),
])
def test_invalid_configurations_are_refused_naming_field_value_and_choices(cfg, needle):
    with pytest.raises(QkdError, match=needle):
        validate(cfg)


def test_the_python_entry_points_refuse_before_any_work(tmp_path):
    """The bare KeyError of an alias or a misspelling is gone, and nothing is written."""
    with pytest.raises(QkdError, match="student.encoding = 'amplitud'"):
        train_student(student(encoding="amplitud"), tmp_path)
    assert not any(tmp_path.iterdir())


def test_an_objectives_own_hyperparameters_are_checked_before_any_work():
    cfg = RunConfig("student", student=StudentConfig(), distill=DistillConfig(teacher="t", kd_params={"zeta": 1.0}))
    with pytest.raises(QkdError, match="--kd-params of hinton-classic: unknown 'zeta'"):
        validate(cfg)
