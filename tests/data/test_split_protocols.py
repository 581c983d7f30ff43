"""Data protocols: --without-pool (a teacher trained on the train part less a student's transfer
pool never sees it, and the student's run folder counts what its teacher saw of it), --full-test
and --augment auto."""

import numpy as np
import pytest

from qkd_pl.config import (DataConfig, DistillConfig, RunConfig, StudentConfig, TeacherConfig, TrainConfig,
                           parse_pool)
from qkd_pl.data.bundle import load_data, split_of, teacher_data_report, transfer_indices
from qkd_pl.errors import QkdError
from qkd_pl.validate import validate

STUDENT = DataConfig("digits", per_class=20)
ALL = DataConfig("digits")
WITHOUT = DataConfig("digits", without_pool="20:40")


def test_the_teacher_trains_on_everything_but_the_pool_and_validates_as_before():
    pool = transfer_indices(STUDENT, "40")
    fit, val, test = split_of(WITHOUT)
    fit_all, val_all, test_all = split_of(ALL)
    assert len(pool) == 400 and set(pool) <= set(fit_all)
    assert set(fit).isdisjoint(pool) and set(fit) == set(fit_all) - set(pool)
    assert np.array_equal(val, val_all) and np.array_equal(test, test_all)
    assert len(load_data(WITHOUT).y_train) == len(fit)


def test_the_report_counts_the_pool_images_a_teacher_saw():
    never = teacher_data_report(WITHOUT, STUDENT, transfer="40")
    saw = teacher_data_report(ALL, STUDENT, transfer="40")
    assert never["pool_images"] == saw["pool_images"] == 400
    assert never["pool_images_seen"] == 0 and saw["pool_images_seen"] == 400
    assert never["student_train_images"] == 160  # and it still trained on every one of the student's images
    assert "pool_images" not in teacher_data_report(ALL, STUDENT)


def test_a_teacher_without_a_larger_students_pool_cannot_teach_it():
    # the pool of a 10-per-class student starts inside a 20-per-class student's training images
    with pytest.raises(QkdError, match="training images are not among the teacher's"):
        teacher_data_report(DataConfig("digits", without_pool="10:40"), STUDENT, transfer="40")


@pytest.mark.parametrize("text,expected", [("150:500", "150:500"), (" 20 : unlabeled ", "20:unlabeled"),
                                           ("none", None), ("", None)])
def test_pool_text_is_canonical(text, expected):
    assert parse_pool(text) == expected


@pytest.mark.parametrize("text", ["150", "a:5", "0:5", "150:0", "150:many"])
def test_bad_pool_text_is_refused(text):
    with pytest.raises(QkdError, match="--without-pool|--transfer"):
        parse_pool(text)


@pytest.mark.parametrize("cfg,needle", [
    (RunConfig("teacher", data=DataConfig("digits", split="capped", without_pool="20:40"),
               teacher=TeacherConfig("lenet5")), "--without-pool needs --split nested"),
    (RunConfig("student", data=DataConfig("digits", per_class=20, without_pool="20:40"), student=StudentConfig()),
     "--without-pool is for teachers"),
    (RunConfig("student", data=STUDENT, student=StudentConfig(), distill=DistillConfig(transfer_labels="true")),
     "ceiling control.*needs --transfer N"),
    (RunConfig("student", data=STUDENT, student=StudentConfig(), distill=DistillConfig(teacher_outputs="on-the-fly")),
     "needs --teacher"),
    (RunConfig("student", data=STUDENT, student=StudentConfig(), train=TrainConfig(mixup=0.2),
               distill=DistillConfig(teacher="t")), "--mixup blends the images.*--teacher-outputs on-the-fly"),
    (RunConfig("student", data=STUDENT, student=StudentConfig(), train=TrainConfig(mixup=0.2),
               distill=DistillConfig(teacher="t", teacher_outputs="on-the-fly", transfer="40",
                                     transfer_labels="hard")), "a blend of two images has no one top class"),
    (RunConfig("student", data=STUDENT, student=StudentConfig(), train=TrainConfig(mixup=float("nan"))),
     "train.mixup = nan is not a finite number"),
])

def test_configurations_that_cannot_mean_anything_are_refused(cfg, needle):
    with pytest.raises(QkdError, match=needle):
        validate(cfg)


def test_the_ceiling_is_a_student_without_a_teacher():
    cfg = validate(RunConfig("student", data=STUDENT, student=StudentConfig(),
                             distill=DistillConfig(transfer="40", transfer_labels="true")))
    assert cfg.distill.transfer == "40" and cfg.distill.transfer_labels == "true"
    with pytest.raises(QkdError, match="ceiling control.*no teacher"):
        validate(RunConfig("student", data=STUDENT, student=StudentConfig(),
                           distill=DistillConfig(teacher="t", transfer="40", transfer_labels="true")))


def test_full_test_keeps_every_test_image_and_the_training_cap():
    capped, full = split_of(STUDENT), split_of(DataConfig("digits", per_class=20, full_test=True))
    assert np.array_equal(capped[0], full[0]) and np.array_equal(capped[1], full[1])
    assert len(capped[2]) == 200 and np.array_equal(full[2], split_of(ALL)[2])


@pytest.mark.parametrize("dataset,expected", [("digits", "shift-rotate"), ("fashion", "shift-rotate"),
                                              ("cifar10", "crop-flip")])
def test_augment_auto_becomes_the_datasets_own(dataset, expected):
    cfg = validate(RunConfig("teacher", data=DataConfig(dataset), train=TrainConfig(augment="auto"),
                             teacher=TeacherConfig("lenet5")))
    assert cfg.train.augment == expected


def test_a_pool_that_leaves_no_image_is_refused_in_one_line():
    with pytest.raises(QkdError, match="none is left for a transfer set"):
        split_of(DataConfig("digits", without_pool="200:50"))
