"""Experiment grids: the TOML file, the cells it expands to, running, skipping, resuming."""

import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import cli
from qkd_pl.errors import QkdError
from qkd_pl.experiments.grid import GridSpec, expand, load_spec, run_grid

TINY = """
name = "tiny"
seeds = [0, 1]
[data]
datasets = ["digits"]
classes = ["0-3"]
per_class = 20
[student]
qubits = [2]
reducer = ["fc", "avgpool"]
control = [false, true]
epochs = 1
[teacher]
arch = ["none", "lenet5"]
epochs = 1
[[exclude]]
reducer = "avgpool"
control = true
"""


def write(tmp_path, text=TINY) -> Path:
    path = tmp_path / "grid.toml"
    path.write_text(text)
    return path


def test_the_toml_expands_to_teachers_first_then_every_kept_student(tmp_path):
    spec = load_spec(write(tmp_path))
    cells = expand(spec, tmp_path / "out")
    assert [c.phase for c in cells] == sorted(c.phase for c in cells)
    assert [c.id for c in cells if c.phase == 0] == ["teacher-digits-0-3-lenet5"]
    students = [c for c in cells if c.phase == 2]
    # 2 reducers x 2 controls - (avgpool, control) = 3 configurations, x 2 teachers x 2 seeds
    assert len(students) == 12 and len({c.id for c in students}) == 12
    distilled = [c for c in students if c.fields["teacher"] == "lenet5"]
    assert all(c.config.distill.teacher.endswith("runs/teacher-digits-0-3-lenet5") for c in distilled)
    assert {c.config.train.seed for c in students} == {0, 1} and all(c.config.train.epochs == 1 for c in students)


def test_hybrid_cnn_cells_ignore_the_circuit_axes_and_ensembles_come_after_their_members(tmp_path):
    spec = GridSpec(datasets=["digits"], students=["hybrid-cnn"], reducers=["fc", "pca"], qubits=[4],
                    teachers=["none", "ensemble"], ensemble=["lenet5", "alexnet-v1"], seeds=[0])
    cells = expand(spec, tmp_path)
    assert [(c.phase, c.id) for c in cells if c.phase < 2] == [
        (0, "teacher-digits-all-alexnet-v1"), (0, "teacher-digits-all-lenet5"), (1, "teacher-digits-all-ensemble")]
    assert len([c for c in cells if c.phase == 2]) == 2  # the two reducers collapse into one hybrid-cnn cell


def test_teacher_epochs_can_differ_by_architecture(tmp_path):
    text = TINY.replace('[teacher]\narch = ["none", "lenet5"]', '[teacher]\narch = ["none", "lenet5", "alexnet-v1"]')
    text += '[teacher.epochs_by_arch]\nlenet5 = 7\n'
    cells = expand(load_spec(write(tmp_path, text)), tmp_path / "out")
    epochs = {c.config.teacher.arch: c.config.train.epochs for c in cells if c.phase == 0}
    assert epochs == {"lenet5": 7, "alexnet-v1": 1}


@pytest.mark.parametrize("text,needle", [
    ("[data]\ndatasets = ['digits']\n[student]\nqbits = [2]\n", "unknown key [student] 'qbits'"),
    ("[student]\nqubits = [2]\n", "datasets is required"),
    ("[data\n", "not valid TOML"),
    ("[data]\ndatasets = ['svhn']\n", "unknown dataset 'svhn'"),
    ("[data]\ndatasets = ['digits']\n[[include]]\nqbits = 2\n", "names ['qbits']"),
    ("[data]\ndatasets = ['digits']\n[teacher.epochs_by_arch]\nlenet = 5\n", "epochs_by_arch: lenet = 5"),
    ("[data]\ndatasets = ['digits']\n[teacher.epochs_by_arch]\nlenet5 = 0\n", "epochs_by_arch: lenet5 = 0"),
])
def test_bad_grid_files(tmp_path, text, needle):
    with pytest.raises(QkdError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        load_spec(write(tmp_path, text))


def test_a_grid_runs_skips_finished_cells_and_resumes_a_killed_one(tmp_path):
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["grid", str(write(tmp_path)), "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    rows = json.loads((out / "results.json").read_text())
    assert len(rows) == 13 and (out / "results.csv").read_text().count("\n") == 14
    assert (out / "report.md").exists()
    students = [r for r in rows if r["role"] != "teacher"]
    assert all(0 <= r["test_accuracy"] <= 1 for r in students)
    assert {r["params_control"] for r in students if r["control"]} == {12}  # 2 qubits, strong, 2 layers
    # A killed grid: one cell lost its result mid-way (its last epoch is still there).
    victim = out / "runs" / "baseline-digits-0-3-2q-v2-fc-amplitude-strong-s1"
    (victim / "test_metrics.json").unlink()
    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/test_metrics.json")}
    time.sleep(0.01)
    r = CliRunner().invoke(cli, ["grid", str(write(tmp_path)), "--out", str(out), "--quiet", "--no-report"])
    assert r.exit_code == 0, r.output
    assert (victim / "test_metrics.json").exists()
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())  # nothing else was trained again
    sessions = json.loads((victim / "environment.json").read_text())
    assert [s["resumed"] for s in sessions] == [False, True]
    def timeless(rs):  # wall time is the one field a resumed cell may change
        return [{k: v for k, v in r.items() if k != "seconds"} for r in rs]

    assert timeless(json.loads((out / "results.json").read_text())) == timeless(rows)


def test_process_workers_give_the_same_numbers_as_one_process(tmp_path):
    spec = GridSpec(datasets=["digits"], classes=["0-2"], per_class=15, qubits=[2], teachers=["none"], seeds=[0, 1])
    spec.student_train.epochs = 1
    one = run_grid(spec, tmp_path / "one", workers=1, progress=False)
    two = run_grid(spec, tmp_path / "two", workers=2, progress=False)
    assert [r["test_accuracy"] for r in one] == [r["test_accuracy"] for r in two]


def test_ray_executor_on_a_local_instance(tmp_path):
    ray = pytest.importorskip("ray") if not os.environ.get("CI") else __import__("ray")
    spec = GridSpec(datasets=["digits"], classes=["0-2"], per_class=15, qubits=[2], teachers=["none"], seeds=[0, 1])
    spec.student_train.epochs = 1
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        rows = run_grid(spec, tmp_path / "ray", executor="ray", progress=False)
    finally:
        ray.shutdown()
    local = run_grid(spec, tmp_path / "local", progress=False)
    assert [r["test_accuracy"] for r in rows] == [r["test_accuracy"] for r in local]


def test_missing_data_stops_the_grid_before_any_cell(tmp_path):
    spec = GridSpec(datasets=["digits", "mnist"], teachers=["none"], seeds=[0])
    with pytest.raises(QkdError, match="mnist files not found"):
        run_grid(spec, tmp_path / "g", data_dir=str(tmp_path / "nothing"), progress=False)
    assert not (tmp_path / "g").exists()


def test_the_readme_grid_example_is_a_valid_grid(tmp_path):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = readme.split("```toml\n")[1].split("```")[0]
    cells = expand(load_spec(write(tmp_path, example)), tmp_path / "out")
    assert {c.config.teacher.arch: c.config.train.epochs for c in cells if c.phase == 0} == {
        "lenet5": 30, "alexnet-v1": 5}


def _die(cell, out, data_dir, threads):
    os._exit(9)  # as the OOM killer or a signal would end a worker


def test_a_killed_worker_process_ends_the_grid_in_one_line(tmp_path):
    from qkd_pl.experiments.grid import _pool

    spec = GridSpec(datasets=["digits"], classes=["0-2"], per_class=15, qubits=[2], teachers=["none"], seeds=[0, 1])
    with pytest.raises(QkdError, match="worker process was killed .* run the same command again"):
        list(_pool(expand(spec, tmp_path), str(tmp_path), None, 2, task=_die))
