"""Experiment grids: the TOML file, the cells it expands to, running, skipping, resuming."""

import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from qkd_pl.cli import cli
from qkd_pl.config import DataConfig, DistillConfig, StudentConfig
from qkd_pl.errors import QkdError
from qkd_pl.experiments.sweeps.grid import GridSpec, expand, load_spec, run_grid
from qkd_pl.experiments.sweeps.grid import validate as validate_grid

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
    spec = GridSpec(datasets=["digits"], axes={"student.arch": ["hybrid-cnn"], "student.reducer": ["fc", "pca"]},
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
    ("[data]\ndatasets = ['svhn']\n", "unknown --dataset 'svhn'; choose one of: digits"),
    ("[data]\ndatasets = ['digits']\n[[include]]\nqbits = 2\n", "names ['qbits']"),
    ("[data]\ndatasets = ['digits']\n[teacher.epochs_by_arch]\nlenet = 5\n", "epochs_by_arch: lenet = 5"),
    ("[data]\ndatasets = ['digits']\n[teacher.epochs_by_arch]\nlenet5 = 0\n", "epochs_by_arch: lenet5 = 0"),
    ("[data]\ndatasets = ['digits']\n[student]\nencoding = ['amplitud']\n",
     "grid.toml: cell baseline-digits-all-4q-v2-fc-amplitud-strong-s0: student.encoding = 'amplitud' is not one of: "
     "amplitude, angle, qubit"),
    ("[data]\ndatasets = ['digits']\n[sweep]\n'student.rotaton' = ['X']\n", "'student.rotaton' is not a student-run field"),
    ("[data]\ndatasets = ['digits']\n[sweep]\n'data.dataset' = ['mnist']\n", "'data.dataset' is not a student-run field"),
    ("[data]\ndatasets = ['digits']\n[sweep]\n'student.rotation' = ['X', 'W']\n",
     "student.rotation = 'W' is not one of: X, Y, Z"),
    ("[data]\ndatasets = ['digits']\n[sweep]\n'distill.alpha' = 0.5\n", "give a list of one or more values"),
    ("[data]\ndatasets = ['digits']\n[student]\nqubits = [2]\n[sweep]\n'student.qubits' = [3]\n",
     "'student.qubits' is also set in its own table"),
    ("seed = 3\n[data]\ndatasets = ['digits']\n", "unknown key 'seed'; known at the top: name, seeds"),
    ("[data]\ndatasets = ['digits']\nseed = 3\n", "unknown key [data] 'seed'; known: per_class"),
    ("[data]\ndatasets = ['digits']\n[teacher]\nlayers = 3\n", "unknown key [teacher] 'layers'"),
    ("[data]\ndatasets = ['digits']\n[student]\nrotaton = 'X'\n", "unknown key [student] 'rotaton'; known: arch"),
    ("[data]\ndatasets = ['digits']\n[train]\naugment = 'auto'\n", "unknown table [train]; known: [data]"),
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
    for r in rows:  # every row is its run folder's own result
        assert r["test_accuracy"] == json.loads((out / r["run_dir"] / "test_metrics.json").read_text())["test_accuracy"]
    assert {r["params_control"] for r in students if r["control"]} == {12}  # 2 qubits, strong, 2 layers
    # A killed grid: one cell lost its result mid-way (its last epoch is still there).
    victim = out / "runs" / "baseline-digits-0-3-2q-v2-fc-amplitude-strong-s1"
    (victim / "test_metrics.json").unlink()
    # A cell finished by an older qkd-pl, before TrainConfig had its optimizer fields: still finished.
    older = next(p for p in (out / "runs").glob("*/config.json") if p.parent != victim)
    saved = json.loads(older.read_text())
    saved["train"] = {k: v for k, v in saved["train"].items() if k not in ("optimizer", "schedule", "augment")}
    older.write_text(json.dumps(saved))
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
    # A moved (or committed) grid folder keeps its training curves: run paths are relative to it.
    moved = out.rename(tmp_path / "moved")
    rows = json.loads((moved / "results.json").read_text())
    assert all((moved / r["run_dir"] / "metrics.json").exists() for r in rows)
    assert all(r["teacher_run"] in (None, "runs/teacher-digits-0-3-lenet5") for r in rows)


@pytest.mark.slow
def test_process_workers_give_the_same_numbers_as_one_process(tmp_path):
    spec = GridSpec(datasets=["digits"], classes=["0-2"], data=DataConfig(per_class=15), student=StudentConfig(qubits=2),
                    teachers=["none"], seeds=[0, 1])
    spec.student_train.epochs = 1
    one = run_grid(spec, tmp_path / "one", workers=1, progress=False)
    two = run_grid(spec, tmp_path / "two", workers=2, progress=False)
    assert [r["test_accuracy"] for r in one] == [r["test_accuracy"] for r in two]


@pytest.mark.slow
def test_ray_executor_on_a_local_instance(tmp_path):
    ray = pytest.importorskip("ray") if not os.environ.get("CI") else __import__("ray")
    spec = GridSpec(datasets=["digits"], classes=["0-2"], data=DataConfig(per_class=15), student=StudentConfig(qubits=2),
                    teachers=["none"], seeds=[0, 1])
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


def test_the_grid_tutorials_example_is_a_valid_grid(tmp_path):
    page = (Path(__file__).resolve().parents[3] / "docs/tutorials/grid-and-report.md").read_text()
    example = page.split("```toml\n")[1].split("```")[0]
    cells = expand(load_spec(write(tmp_path, example)), tmp_path / "out")
    assert {c.config.teacher.arch: c.config.train.epochs for c in cells if c.phase == 0} == {
        "lenet5": 30, "alexnet-v1": 5}


def _die(cell, out, data_dir, threads):
    os._exit(9)  # as the OOM killer or a signal would end a worker


@pytest.mark.slow
def test_a_killed_worker_process_ends_the_grid_in_one_line(tmp_path):
    from qkd_pl.experiments.sweeps.grid import _pool

    spec = GridSpec(datasets=["digits"], classes=["0-2"], data=DataConfig(per_class=15), student=StudentConfig(qubits=2),
                    teachers=["none"], seeds=[0, 1])
    with pytest.raises(QkdError, match="worker process was killed .* run the same command again"):
        list(_pool(expand(spec, tmp_path), str(tmp_path), None, 2, task=_die))


def test_a_bad_grid_file_is_one_line_and_exit_status_2_before_any_cell(tmp_path):
    path = write(tmp_path, TINY.replace('reducer = ["fc", "avgpool"]', 'reducer = ["fc", "avgpol"]'))
    r = CliRunner().invoke(cli, ["grid", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert r.output.count("\n") == 1 and str(path) in r.output and "student.reducer = 'avgpol' is not one of" in r.output
    assert not (tmp_path / "out").exists()  # no teacher was trained


def test_any_student_field_sweeps_by_its_dotted_path(tmp_path):
    text = """
seeds = [0]
[data]
datasets = ["digits"]
classes = ["0-1"]
per_class = 20
[student]
qubits = [2]
encoding = ["angle"]
epochs = 1
[teacher]
arch = ["none"]
[sweep]
"student.rotation" = ["X", "Z"]
"train.lr" = [0.01, 0.05]
"""
    spec = load_spec(write(tmp_path, text))
    cells = expand(spec, tmp_path / "out")
    assert {(c.config.student.rotation, c.config.train.lr) for c in cells} == {
        ("X", 0.01), ("X", 0.05), ("Z", 0.01), ("Z", 0.05)}
    assert len({c.id for c in cells}) == 4 and all("-rotation-" in c.id and "-lr-" in c.id for c in cells)
    out = tmp_path / "out"
    rows = run_grid(spec, out, progress=False)
    assert {(r["student.rotation"], r["train.lr"]) for r in rows} == {("X", 0.01), ("X", 0.05), ("Z", 0.01), ("Z", 0.05)}
    from qkd_pl.experiments.sweeps.report import summarize

    configs = summarize(rows)["configs"]
    assert len(configs) == 4 and all(c["n"] == 1 for c in configs)  # four configurations, not one with four seeds


def test_other_student_fields_are_set_or_swept_in_their_own_tables(tmp_path):
    text = TINY.replace("epochs = 1\n[teacher]", 'epochs = 1\nrotation = "Z"\nencoding = ["angle"]\n[teacher]', 1)
    text = text.replace('reducer = ["fc", "avgpool"]', 'reducer = ["fc"]').replace("control = [false, true]", "")
    text += "[distill]\ntemperature = [1.0, 4.0]\n"
    cells = [c for c in expand(load_spec(write(tmp_path, text)), tmp_path / "o") if c.phase == 2]
    assert {c.config.student.rotation for c in cells} == {"Z"}
    distilled = [c for c in cells if c.fields["teacher"] != "none"]
    assert sorted({c.config.distill.temperature for c in distilled}) == [1.0, 4.0]
    assert all(c.fields["distill.temperature"] == c.config.distill.temperature for c in distilled)
    assert {c.fields["distill.temperature"] for c in cells if c not in distilled} == {"-"}  # one baseline for both


@pytest.mark.slow
def test_distillation_axes_make_one_baseline_that_every_setting_is_paired_with(tmp_path):
    from qkd_pl.experiments.sweeps.report import summarize

    spec = GridSpec(datasets=["digits"], classes=["0-2"], data=DataConfig(per_class=12),
                    student=StudentConfig(qubits=2), teachers=["none", "lenet5"], seeds=[0, 1],
                    axes={"distill.kd_loss": ["hinton", "dist"], "distill.transfer": ["none", "5"]},
                    teacher_data="all")
    spec.student_train.epochs = 1
    spec.teacher_train.epochs = 1
    cells = expand(spec, tmp_path)
    baselines = [c for c in cells if c.fields.get("role") == "baseline"]
    distilled = [c for c in cells if c.fields.get("role") == "distilled"]
    assert len(baselines) == 2 and len(distilled) == 2 * 2 * 2  # seeds; objectives x transfer x seeds
    assert all(c.config.distill == type(c.config.distill)() for c in baselines)  # no teacher, no transfer set
    assert {c.config.data.per_class for c in cells if c.phase == 0} == {None}  # teacher_data = "all"
    rows = run_grid(spec, tmp_path, progress=False)
    gains = [c for c in summarize(rows)["configs"] if c["teacher"] != "none"]
    assert len(gains) == 4 and all(c["gain"] and c["gain"]["n"] == 2 for c in gains)
    from qkd_pl.experiments.sweeps.report import write_report

    text = write_report(tmp_path).read_text().split("## Distillation settings against the baseline")[1]
    table = [line for line in text.split("## ")[0].splitlines() if line.startswith("| lenet5")]
    assert len(table) == 4 and text.count("| teacher, kd_loss, transfer | digits qubits=2 |") == 1
    r = CliRunner().invoke(cli, ["report", str(tmp_path), "--contrast", "distill.kd_loss=dist,hinton"])
    assert r.exit_code == 0, r.output
    contrast = (tmp_path / "report.md").read_text().split("## kd_loss = dist against hinton")[1]
    assert sorted(line.split(",")[2].strip() for line in contrast.splitlines() if line.startswith("| digits")) == [
        "transfer=5", "transfer=none"]
    for bad, needle in (("distill.colour=a,b", "no such column"), ("distill.kd_loss=dkd,hinton", "no configuration"),
                        ("distill.kd_loss", "write COLUMN=A,B")):
        r = CliRunner().invoke(cli, ["report", str(tmp_path), "--contrast", bad])
        assert r.exit_code == 2 and needle in r.output, r.output


def test_include_rules_on_distillation_fields_keep_the_baselines(tmp_path):
    spec = GridSpec(datasets=["digits"], classes=["0-2"], data=DataConfig(per_class=12), seeds=[0, 1],
                    axes={"distill.kd_loss": ["hinton", "dist"], "distill.transfer": ["none", "5"]},
                    include=[{"distill.kd_loss": "hinton", "distill.transfer": "none"},
                             {"distill.kd_loss": "dist", "distill.transfer": "5"}],
                    exclude=[{"distill.kd_loss": "dist", "seed": 1}])
    roles = [(c.fields["role"], c.fields["distill.kd_loss"], c.fields["seed"]) for c in expand(spec, tmp_path)
             if c.phase == 2]
    assert sorted(roles) == [("baseline", "-", 0), ("baseline", "-", 1), ("distilled", "dist", 0),
                             ("distilled", "hinton", 0), ("distilled", "hinton", 1)]


def test_a_teacher_trained_elsewhere_is_used_as_it_is(tmp_path):
    from qkd_pl.config import RunConfig, TeacherConfig, TrainConfig
    from qkd_pl.experiments import train_teacher

    cfg = RunConfig("teacher", data=DataConfig("digits", classes=[0, 1, 2]), train=TrainConfig(epochs=1, lr=1e-3),
                    teacher=TeacherConfig("lenet5"))
    run = train_teacher(cfg, tmp_path / "elsewhere", name="strong", progress=False).run_dir
    spec = GridSpec(datasets=["digits"], classes=["0-2"], data=DataConfig(per_class=12), seeds=[0],
                    teachers=["none", "strong"], teacher_runs={"digits": {"strong": str(run)}})
    cells = expand(validate_grid(spec), tmp_path / "grid")
    assert [c.phase for c in cells] == [2, 2]  # nothing to train for the teacher
    assert [c.config.distill.teacher for c in cells if c.fields["role"] == "distilled"] == [str(run)]
    with pytest.raises(QkdError, match="teacher.runs.digits.strong = .*no trained teacher there"):
        validate_grid(GridSpec(datasets=["digits"], teacher_runs={"digits": {"strong": str(tmp_path / "none")}}))


def test_labelled_images_per_class_is_an_axis_with_one_teacher_for_every_size(tmp_path):
    text = """
seeds = [0]
[data]
datasets = ["digits"]
classes = ["0-2"]
per_class = [12, "all"]
[student]
qubits = [2]
epochs = 1
[teacher]
arch = ["none", "lenet5"]
data = "all"
epochs = 1
[sweep]
"train.batch_size" = [8, 64]
[[exclude]]
"data.per_class" = 12
"train.batch_size" = 64
[[exclude]]
"data.per_class" = "all"
"train.batch_size" = 8
"""
    spec = load_spec(write(tmp_path, text))
    cells = expand(spec, tmp_path / "out")
    teachers = [c for c in cells if c.phase == 0]
    assert len(teachers) == 1 and teachers[0].config.data.per_class is None
    students = {(c.fields["data.per_class"], c.fields["role"]): c for c in cells if c.phase == 2}
    assert set(students) == {(12, "baseline"), (12, "distilled"), ("all", "baseline"), ("all", "distilled")}
    assert students[(12, "distilled")].config.data.per_class == 12
    assert students[("all", "baseline")].config.data.per_class is None
    assert students[("all", "baseline")].config.train.batch_size == 64
    assert len({c.id for c in cells}) == len(cells) and "per_class-all" in students[("all", "baseline")].id
    rows = run_grid(spec, tmp_path / "out", progress=False)
    from qkd_pl.experiments.sweeps.report import summarize

    configs = summarize(rows)["configs"]  # the size is part of a configuration: no pooling across sizes
    assert {(c["data.per_class"], c["teacher"], c["n"]) for c in configs} == {
        (12, "lenet5", 1), (12, "none", 1), ("all", "lenet5", 1), ("all", "none", 1)}


@pytest.mark.parametrize("text,needle", [
    ("[data]\ndatasets = ['digits']\nper_class = [10, 0]\n", "data.per_class = 0: give whole numbers"),
    ("[data]\ndatasets = ['digits']\nper_class = [10, 'half']\n", "data.per_class = 'half'"),
    ("[data]\ndatasets = ['digits']\nper_class = [10, 20]\n[teacher]\narch = ['none', 'lenet5']\n",
     "needs [teacher] data = \"all\""),
])
def test_bad_per_class_axes(tmp_path, text, needle):
    with pytest.raises(QkdError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        load_spec(write(tmp_path, text))


BUNDLES = """
seeds = [0, 1]
[data]
datasets = ["digits"]
classes = ["0-2"]
[student]
qubits = [2]
epochs = 1
batch_size = 8
[teacher]
arch = ["none", "lenet5"]
data = "all"
epochs = 1
[bundles.regime.few]
"data.per_class" = 12
[bundles.regime.all]
"data.per_class" = "all"
"train.batch_size" = 64
[bundles.setting.paper]
"distill.temperature" = 3.0
"distill.alpha" = 0.9
[bundles.setting.dist]
"distill.kd_loss" = "dist"
"distill.temperature" = 1.0
"distill.alpha" = 1.0
[bundles.setting.pseudo]
"distill.transfer" = "4"
"distill.transfer_labels" = "hard"
[[exclude]]
regime = "all"
setting = "pseudo"
[[include]]
setting = "paper"
[[include]]
regime = "few"
"""


def test_bundles_vary_fields_together_and_keep_one_baseline(tmp_path):
    spec = load_spec(write(tmp_path, BUNDLES))
    cells = expand(spec, tmp_path / "out")
    students = [c for c in cells if c.phase == 2]
    kinds = sorted({(c.fields["regime"], c.fields["setting"]) for c in students})
    # every setting in the few regime; the paper's alone with all the data (include), never pseudo there (exclude)
    assert kinds == [("all", "-"), ("all", "paper"), ("few", "-"), ("few", "dist"), ("few", "paper"),
                     ("few", "pseudo")]
    assert len(students) == 6 * 2 and len({c.id for c in students}) == 12
    by = {(c.fields["regime"], c.fields["setting"], c.fields["seed"]): c for c in students}
    dist = by[("few", "dist", 0)].config
    assert (dist.distill.kd_loss, dist.distill.temperature, dist.distill.alpha) == ("dist", 1.0, 1.0)
    assert dist.distill.transfer == "none" and dist.data.per_class == 12 and dist.train.batch_size == 8  # base values
    pseudo = by[("few", "pseudo", 0)].config.distill  # a field the bundle leaves out keeps the grid's base value
    base = DistillConfig()
    assert (pseudo.kd_loss, pseudo.temperature, pseudo.transfer, pseudo.transfer_labels) == (
        base.kd_loss, base.temperature, "4", "hard")
    everything = by[("all", "-", 1)]
    assert everything.config.data.per_class is None and everything.config.train.batch_size == 64
    assert everything.config.distill.teacher is None and everything.fields["distill.alpha"] == "-"
    assert everything.id.endswith("-regime-all-s1") and by[("few", "dist", 0)].id.endswith("-regime-few-setting-dist-s0")
    assert {"regime", "setting", "data.per_class", "distill.kd_loss"} <= set(spec.columns())


def test_bundled_settings_are_reported_against_their_own_regimes_baseline(tmp_path):
    from qkd_pl.experiments.sweeps.report import summarize

    text = BUNDLES.replace("[[include]]\nsetting = \"paper\"\n", "").replace('"data.per_class" = "all"',
                                                                           '"data.per_class" = 24')
    spec = load_spec(write(tmp_path, text))
    spec.exclude.append({"regime": "few", "setting": "pseudo"})
    spec.include = [{"setting": "dist"}]
    rows = run_grid(spec, tmp_path / "out", progress=False)
    configs = summarize(rows)["configs"]
    assert sorted((c["data.per_class"], c["teacher"]) for c in configs) == [
        (12, "lenet5"), (12, "none"), (24, "lenet5"), (24, "none")]
    for c in configs:
        if c["teacher"] == "lenet5":
            base = next(b for b in configs if b["teacher"] == "none" and b["data.per_class"] == c["data.per_class"])
            assert c["gain"]["n"] == 2 and c["gain"]["mean"] == pytest.approx(
                sum(c["by_seed"][s] - base["by_seed"][s] for s in (0, 1)) / 2)


@pytest.mark.parametrize("edit,needle", [
    (lambda s: s.replace("[bundles.setting.paper]", "[bundles.qubits.paper]"), "bundle axis 'qubits'"),
    (lambda s: s.replace('"distill.alpha" = 0.9', '"distill.colour" = 0.9'), "'distill.colour' is not a student"),
    (lambda s: s.replace('"distill.alpha" = 0.9', '"data.per_class" = 5'), "set by the bundle axes"),
    (lambda s: s + '[sweep]\n"distill.alpha" = [0.5]\n', "'distill.alpha' is also an axis"),
    (lambda s: s.replace('"data.per_class" = 12', '"data.per_class" = -1'), "data.per_class = -1"),
    (lambda s: s + "[bundles]\nsize = 3\n", "give named tables of fields"),
])
def test_bad_bundles(tmp_path, edit, needle):
    with pytest.raises(QkdError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        load_spec(write(tmp_path, edit(BUNDLES)))
