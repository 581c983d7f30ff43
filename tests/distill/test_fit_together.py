"""Several students fitted at once (Distiller.fit_many, fit_together) end as their lone fits do."""

import json
import time

import pytest
import torch

from qkd_pl import Distiller, FitJob, KD, fit_together
from qkd_pl.config import DataConfig, StudentConfig, TrainConfig
from qkd_pl.data import load_data
from qkd_pl.devices import resolve_backend
from qkd_pl.errors import QkdError
from qkd_pl.students.quantum import QuantumStudent
from qkd_pl.teachers import build_teacher

DATA = DataConfig("digits", classes=[0, 1, 2], per_class=30)


@pytest.fixture(scope="module")
def data():
    return load_data(DATA)


def student(data, seed, qubits=2, device="auto"):
    torch.manual_seed(seed)
    return QuantumStudent(StudentConfig(qubits=qubits, device=device),
                          resolve_backend(device, qubits, None, None, training=True),
                          data.image_shape, data.n_classes, data.mean, data.std)


def history(run_dir):
    return [(r["epoch"], pytest.approx(r["train_loss"], rel=1e-5), r["val_accuracy"])
            for r in json.loads((run_dir / "metrics.json").read_text())]


def test_fit_many_equals_fitting_one_by_one_and_each_student_tests_its_own_run(tmp_path, data):
    torch.manual_seed(0)
    teacher = build_teacher("lenet5", data.image_shape, data.n_classes, data.mean, data.std)
    distiller = Distiller(teacher, KD("hinton", temperature=2.0, alpha=0.5), TrainConfig(epochs=2, batch_size=16),
                          progress=False)
    train, val = (data.x_train, data.y_train), (data.x_val, data.y_val)
    together = [student(data, s) for s in range(3)]
    runs = distiller.fit_many(together, train, val, [tmp_path / f"t{s}" for s in range(3)], seeds=range(3))
    assert [r.stacked_with for r in runs] == [3, 3, 3]  # they did train as one
    lone = [student(data, s) for s in range(3)]
    alone = distiller.fit_many(lone, train, val, [tmp_path / f"a{s}" for s in range(3)], seeds=range(3), stack=False)
    assert [r.stacked_with for r in alone] == [1, 1, 1]
    plain = student(data, 2)  # and as a plain fit would
    seeded = Distiller(teacher, KD("hinton", temperature=2.0, alpha=0.5),
                       TrainConfig(epochs=2, batch_size=16, seed=2), progress=False)
    seeded.fit(plain, train, val, tmp_path / "plain")
    assert history(tmp_path / "plain") == history(tmp_path / "t2")
    for s in range(3):
        assert history(tmp_path / f"t{s}") == history(tmp_path / f"a{s}")
        assert runs[s].best == alone[s].best and runs[s].run_dir == (tmp_path / f"t{s}").absolute()
        config = json.loads((tmp_path / f"t{s}" / "config.json").read_text())
        assert config["distiller"]["train"]["seed"] == s
        score = distiller.test(together[s], (data.x_test, data.y_test))  # finds this student's own run
        assert score.accuracy == pytest.approx(distiller.test(lone[s], (data.x_test, data.y_test)).accuracy, abs=1e-6)
    assert history(tmp_path / "t0") != history(tmp_path / "t1")  # seeds differ: they are not one student thrice


def test_students_that_cannot_stack_are_fitted_one_by_one_and_say_why(tmp_path, data, capsys, monkeypatch):
    monkeypatch.setenv("QKD_COMPILE", "off")
    distiller = Distiller(None, None, TrainConfig(epochs=1, batch_size=16))
    runs = distiller.fit_many([student(data, s) for s in range(2)], (data.x_train, data.y_train),
                              (data.x_val, data.y_val), [tmp_path / "a", tmp_path / "b"], seeds=[0, 1])
    assert [r.best["epoch"] for r in runs] == [1, 1] and [r.stacked_with for r in runs] == [1, 1]
    assert "training 2 students one by one" in capsys.readouterr().out


def test_fit_together_groups_students_by_shape(tmp_path, data):
    train, val = (data.x_train, data.y_train), (data.x_val, data.y_val)
    cfg = TrainConfig(epochs=1, batch_size=16)
    jobs = [FitJob(Distiller(None, None, cfg, progress=False), student(data, seed, qubits), train, val,
                   tmp_path / f"q{qubits}-{seed}") for qubits, seed in ((2, 0), (3, 0), (2, 1))]
    t0 = time.perf_counter()
    results = fit_together(jobs)
    wall = time.perf_counter() - t0
    assert sum(r.seconds for r in results) <= wall  # each its share of the time, not the whole call's
    assert [r.parameters["quantum"] for r in results] == [12, 18, 12]
    assert [r.stacked_with for r in results] == [2, 1, 2]  # the two 2-qubit students as one, the other alone


def test_students_of_one_shape_on_two_simulators_stack_with_their_own_kind_and_say_so(tmp_path, data, capsys):
    train, val = (data.x_train, data.y_train), (data.x_val, data.y_val)
    cfg = TrainConfig(epochs=1, batch_size=16)
    kinds = ("auto", "qkd.fused32", "auto", "qkd.fused32", "qkd.fused32")
    jobs = [FitJob(Distiller(None, None, cfg), student(data, seed, device=device), train, val, tmp_path / f"{seed}")
            for seed, device in enumerate(kinds)]
    results = fit_together(jobs)
    assert [r.stacked_with for r in results] == [2, 3, 2, 3, 3]  # not one group of 5, refused
    assert "5 students of one shape form 2 groups, each stepped on its own" in capsys.readouterr().out


def test_fit_many_wants_one_run_folder_and_seed_per_student(tmp_path, data):
    with pytest.raises(QkdError, match="2 students, 1 run folders and 2 seeds"):
        Distiller(None).fit_many([student(data, 0), student(data, 1)], (data.x_train, data.y_train),
                                 (data.x_val, data.y_val), [tmp_path / "a"], seeds=[0, 1])
