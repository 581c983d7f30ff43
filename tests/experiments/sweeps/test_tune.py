"""qkd tune: bad study files refused up front, a small study on digits end to end (the test split
untouched until the final runs), and a study killed mid-trial that continues where it was."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from qkd_pl.cli import cli
from qkd_pl.errors import QkdError
from qkd_pl.experiments.sweeps import tune as tune_module
from qkd_pl.experiments.sweeps.tune import load_tune_spec, open_study, tune

ROOT = Path(__file__).resolve().parents[3]

STUDY = """
name = "digits-small"
trials = 3
seeds = [100]
final_seeds = [0]
[data]
dataset = "digits"
classes = [0, 1, 2]
per_class = 30
[student]
qubits = 2
[train]
epochs = 2
[space]
"train.lr" = {low = 0.001, high = 0.05, log = true}
"student.readout" = ["z", "probs"]
"""


def write(tmp_path: Path, text: str = STUDY, name: str = "study.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("edit,needle", [
    (lambda s: "colour = 1\n" + s, "unknown key 'colour'"),
    (lambda s: s.replace('"train.lr"', '"train.rate"'), "'train.rate' is not a field of a student run"),
    (lambda s: s.replace('["z", "probs"]', '["z", "zzz"]'), "student.readout = 'zzz': student.readout = 'zzz' is not"),
    (lambda s: s.replace("final_seeds = [0]", "final_seeds = [100]"), "seeds \\[100\\] are both tuning and report"),
    (lambda s: s.replace('"student.readout"', '"distill.alpha"').replace('["z", "probs"]', "[0.5, 1.0]"),
     "searches distill.\\* but \\[distill\\] has no teacher"),
    (lambda s: s.replace("low = 0.001, high = 0.05", "low = 0.05, high = 0.001"), "low must be below high"),
    (lambda s: s.replace("[student]\nqubits = 2", "[student]\nqubit = 2"), "unknown key \\[student\\] 'qubit'"),
    (lambda s: "prune = 'no'\n" + s, "prune = 'no': give true or false"),
])
def test_bad_study_files_are_refused_naming_the_file(tmp_path, edit, needle):
    path = write(tmp_path, edit(STUDY))
    with pytest.raises(QkdError, match=needle) as info:
        load_tune_spec(path)
    assert str(path) in str(info.value)
    r = CliRunner().invoke(cli, ["tune", str(path), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and not (tmp_path / "o").exists()


def test_a_study_chooses_on_validation_and_tests_only_the_chosen_configuration(tmp_path):
    out = tmp_path / "out"
    result = tune(load_tune_spec(write(tmp_path)), out, progress=False)
    trials = list((out / "trials").iterdir())
    assert trials and all((t / "selection.json").exists() and not (t / "test_metrics.json").exists() for t in trials)
    rows = (out / "trials.csv").read_text().splitlines()
    assert len(rows) == 1 + 3 and rows[0].startswith("trial,state,value")
    best = json.loads((out / "best.json").read_text())
    assert best["params"] == result.best_params and best["config"]["student"]["readout"] in ("z", "probs")
    final = json.loads((out / "final" / "seed-0" / "test_metrics.json").read_text())
    assert result.final[0]["test_accuracy"] == final["test_accuracy"]
    saved = json.loads((out / "final" / "seed-0" / "config.json").read_text())
    assert saved["train"]["lr"] == pytest.approx(result.best_params["train.lr"]) and saved["train"]["seed"] == 0
    assert (out / "history.png").stat().st_size > 0 and "report seed" in (out / "report.md").read_text()
    # started again with more trials: the finished ones are kept, only the new one runs
    stamps = {t.name: (t / "selection.json").stat().st_mtime_ns for t in trials}
    r = CliRunner().invoke(cli, ["tune", str(write(tmp_path)), "--out", str(out), "--trials", "4", "--quiet"])
    assert r.exit_code == 0, r.output
    assert all((out / "trials" / n / "selection.json").stat().st_mtime_ns == t for n, t in stamps.items())
    assert len(list((out / "trials").iterdir())) == len(trials) + 1
    study = open_study(load_tune_spec(write(tmp_path)), f"sqlite:///{out / 'study.db'}")
    lrs = [t.params["train.lr"] for t in study.trials]
    assert len(set(lrs)) == 4  # the resumed search drew new points, not its first ones again


@pytest.mark.slow
def test_a_killed_study_continues_and_tries_the_killed_trial_again(tmp_path, monkeypatch):
    # slow enough to be killed mid-trial, short enough to finish on resume: a study continues only
    # from the study file it was made from (test_tune_resume.py)
    slow = STUDY.replace("epochs = 2", "epochs = 8\nbatch_size = 1").replace("trials = 3", "trials = 2").replace(
        "final_seeds = [0]", "final_seeds = []")
    path, out = write(tmp_path, slow), tmp_path / "out"
    proc = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "tune", str(path), "--out", str(out), "--quiet"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(out.glob("trials/*/metrics.json")):  # killed in the middle of trial 0
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    killed_params = open_study(load_tune_spec(path), f"sqlite:///{out / 'study.db'}").trials[0].params

    monkeypatch.setattr(tune_module, "GRACE_S", 1)  # the killed trial's heartbeat is stale after 1 s
    monkeypatch.setattr(tune_module, "HEARTBEAT_S", 1)
    time.sleep(2)
    tune(dataclasses.replace(load_tune_spec(path), trials=1), out, progress=False)  # as --trials 1: the retry only
    study = open_study(load_tune_spec(path), f"sqlite:///{out / 'study.db'}")
    states = [t.state.name for t in study.trials]
    assert states == ["FAIL", "COMPLETE"]
    assert study.trials[1].params == killed_params  # tried again with the same parameters


@pytest.mark.slow
def test_parallel_workers_share_one_new_study(tmp_path):
    """Two worker processes on a study database that does not exist yet: neither trips over the
    other creating it, and together they run the study's trials (a worker that starts one while the
    other finishes the last may add one more: Optuna's MaxTrialsCallback counts finished trials)."""
    spec = load_tune_spec(write(tmp_path, STUDY.replace("trials = 3", "trials = 4").replace("final_seeds = [0]",
                                                                                          "final_seeds = []")))
    out = tmp_path / "out"
    tune(spec, out, workers=2, progress=False)
    study = open_study(spec, f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) in (4, 5) and all(t.state.name == "COMPLETE" for t in study.trials)
    assert type(study.pruner).__name__ == "MedianPruner"
    assert len(list((out / "trials").iterdir())) == len(study.trials) and not (out / "final").exists()



def test_the_study_exists_before_its_workers_start_and_they_share_the_cores(tmp_path, monkeypatch):
    """Two processes creating a new SQLite study at the same moment fail ("table alembic_version
    already exists", seen in a real 2-worker search); so the parent creates it first. And each
    worker gets its share of the cores, as a grid's do."""
    import optuna

    spec = load_tune_spec(write(tmp_path, STUDY.replace("final_seeds = [0]", "final_seeds = []")))
    out = tmp_path / "out"
    seen = []

    class Inline:  # the pool, run in this process, noting what exists when it starts
        def __init__(self, workers, mp_context=None):
            seen.append(optuna.study.get_all_study_names(f"sqlite:///{(out / 'study.db').resolve()}"))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def submit(self, fn, *args):
            threads.append(args[-2])
            fn(*args[:-1], os.getppid())  # as a worker, whose parent is this process

            return type("Done", (), {"result": lambda self: None})()

    import torch

    threads, before = [], torch.get_num_threads()
    monkeypatch.setattr(tune_module, "worker_pool", Inline)
    monkeypatch.setattr(tune_module.os, "cpu_count", lambda: 2)
    try:
        tune(spec, out, workers=2, progress=False)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert seen == [[spec.name]]
    assert threads == [1, 1]  # each of two workers takes one of the two cores: all of them each is 10x slower



def test_pruning_can_be_turned_off(tmp_path):
    spec = load_tune_spec(write(tmp_path, "prune = false\n" + STUDY))
    study = open_study(spec, f"sqlite:///{tmp_path / 'study.db'}")
    assert spec.prune is False and type(study.pruner).__name__ == "NopPruner"



@pytest.mark.slow
def test_workers_stop_when_qkd_tune_is_killed(tmp_path):
    """A killed qkd tune leaves no worker searching on alone (found running beside the next
    search once): within an epoch its workers stop writing."""
    slow = STUDY.replace("epochs = 2", "epochs = 200\nbatch_size = 1").replace("trials = 3", "trials = 4")
    path, out = write(tmp_path, slow), tmp_path / "out"
    # no pipes: a worker outliving its parent would hold them open
    proc = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "tune", str(path), "--out", str(out), "--quiet",
                             "--workers", "2"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while len(list(out.glob("trials/*/metrics.json"))) < 2:  # both workers are training
        assert proc.poll() is None
        assert time.monotonic() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(5)

    def stamps():
        return {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}

    before = stamps()
    time.sleep(5)
    assert stamps() == before


def test_a_study_searches_function_matching_settings(tmp_path):
    teacher = ROOT / "docs" / "teachers" / "fashion-mnist-compact-cnn"
    text = STUDY.replace("[space]", f'[distill]\nteacher = "{teacher.as_posix()}"\nteacher_outputs = "on-the-fly"\n'
                                    '[space]\n"train.mixup" = {low = 0.1, high = 1.0}\n'
                                    '"train.augment" = ["none", "shift-rotate"]')
    spec = load_tune_spec(write(tmp_path, text))
    assert spec.base.distill.teacher_outputs == "on-the-fly"
    assert {p.path for p in spec.space} >= {"train.mixup", "train.augment"}
    with pytest.raises(QkdError, match="--mixup blends the images"):
        load_tune_spec(write(tmp_path, text.replace('teacher_outputs = "on-the-fly"', "")))


def test_opening_the_storage_outlasts_a_table_creation_race_and_no_more(tmp_path, monkeypatch):
    # Two processes creating a new database's tables at once: one's CREATE fails (seen on PostgreSQL,
    # test_tune_postgres.py); opening again finds the tables. A lasting error is not retried forever.
    import optuna.storages
    from sqlalchemy.exc import IntegrityError

    from qkd_pl.experiments.sweeps import tune as tune_module

    real, calls = optuna.storages.RDBStorage, []

    def racing(*args, fail_times, **kwargs):
        calls.append(1)
        if len(calls) <= fail_times:
            raise IntegrityError("CREATE TYPE studydirection", {}, Exception("duplicate key value"))
        return real(*args, **kwargs)

    monkeypatch.setattr(tune_module.time, "sleep", lambda s: None)
    monkeypatch.setattr(optuna.storages, "RDBStorage", lambda *a, **k: racing(*a, fail_times=1, **k))
    assert isinstance(tune_module._storage(f"sqlite:///{tmp_path}/a.db"), real) and len(calls) == 2
    calls.clear()
    monkeypatch.setattr(optuna.storages, "RDBStorage", lambda *a, **k: racing(*a, fail_times=99, **k))
    with pytest.raises(IntegrityError):
        tune_module._storage(f"sqlite:///{tmp_path}/b.db")
    assert len(calls) == 5


def test_a_negative_sampler_seed_is_refused_before_any_trial(tmp_path):
    from qkd_pl.errors import QkdError
    from qkd_pl.experiments.sweeps.tune import load_tune_spec

    study = tmp_path / "s.toml"
    study.write_text('sampler_seed = -1\nseeds = [1]\n[data]\ndataset = "digits"\n[space]\n'
                     '"train.lr" = {low = 0.001, high = 0.05, log = true}\n')
    with pytest.raises(QkdError, match="sampler_seed = -1: give a whole number, 0 or more"):
        load_tune_spec(study)
