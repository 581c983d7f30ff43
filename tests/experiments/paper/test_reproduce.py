"""qkd reproduce v1 / v2 --quick: the presets run end to end (CI runs these) and their reports
set our numbers beside the published ones; the full presets are the paper's protocols."""

import json

import pytest
from click.testing import CliRunner

from qkd_pl.cli import cli
from qkd_pl.errors import QkdError
from qkd_pl.experiments.paper import published
from qkd_pl.experiments.paper.reproduce import v1_notebooks_spec, v1_spec, v2_spec
from qkd_pl.experiments.sweeps.grid import expand
from tests_helpers_cifar import write_cifar_fixture


@pytest.mark.slow
def test_v1_quick_runs_and_reports(tmp_path):
    r = CliRunner().invoke(cli, ["reproduce", "v1", "--quick", "--out", str(tmp_path), "--quiet"])
    assert r.exit_code == 0, r.output
    text = (tmp_path / "report.md").read_text()
    assert "Beside the published numbers" in text and "hybrid-cnn" in text and "ensemble" in text
    rows = json.loads((tmp_path / "results.json").read_text())
    assert {r["teacher"] for r in rows if r["role"] == "distilled"} == {"lenet5", "alexnet-v1", "ensemble"}


@pytest.mark.slow
def test_v1_notebooks_trains_teachers_on_the_whole_class_subsets(tmp_path):
    spec = v1_notebooks_spec()
    cells = expand(spec, tmp_path)
    teachers = [c for c in cells if c.phase < 2]
    students = [c for c in cells if c.phase == 2]
    assert {c.config.data.per_class for c in teachers} == {None}
    assert {(c.config.data.per_class, c.config.data.split) for c in students} == {(150, "nested")}
    assert len(students) == len([c for c in expand(v1_spec(), tmp_path) if c.phase == 2])
    r = CliRunner().invoke(cli, ["reproduce", "v1-notebooks", "--quick", "--out", str(tmp_path), "--quiet"])
    assert r.exit_code == 0, r.output
    rows = json.loads((tmp_path / "results.json").read_text())
    distilled = [r for r in rows if r["role"] == "distilled"]
    seen = json.loads((tmp_path / distilled[0]["run_dir"] / "test_metrics.json").read_text())["teacher_data"]
    assert seen["extra_train_images"] > 0 and seen["data"]["per_class"] is None
    assert "every training image of the class subset" in (tmp_path / "report.md").read_text()


@pytest.mark.slow
def test_v2_quick_on_a_cifar10_fixture(tmp_path, monkeypatch):
    write_cifar_fixture(tmp_path / "data", per_batch=30)  # a declared copy: loaded with its warning
    r = CliRunner().invoke(cli, ["reproduce", "v2", "--quick", "--datasets", "cifar10", "--data-dir",
                                 str(tmp_path / "data"), "--out", str(tmp_path / "v2"), "--quiet"])
    assert r.exit_code == 0, r.output
    rows = json.loads((tmp_path / "v2" / "results.json").read_text())
    methods = {(r["reducer"], r["encoding"]) for r in rows if r["role"] != "teacher"}
    assert methods == set(published.V2_METHODS.values())


def test_the_full_presets_are_the_papers_protocols(tmp_path):
    v1 = [c for c in expand(v1_spec(), tmp_path) if c.phase == 2]
    configs = {(c.fields["dataset"], c.fields["classes"], c.fields["qubits"]) for c in v1}
    assert configs == set(published.V1_STUDENTS)
    assert len(v1) == 6 * 4 * 3  # 6 (dataset, classes, qubits) x 4 teachers x 3 seeds
    assert all(c.config.data.per_class == 150 and c.config.student.arch == "hybrid-cnn" for c in v1)
    assert {c.config.data.split for c in v1} == {"capped"}  # the split docs/reproduce-v1 was made with
    distilled = [c.config.distill for c in v1 if c.config.distill.teacher]  # the paper's, not today's defaults
    assert distilled and all((d.kd_loss, d.temperature, d.alpha) == ("hinton", 3, 0.9) for d in distilled)
    assert all((d.kd_loss, d.temperature, d.alpha) == ("hinton", 3, 0.9)
               for c in expand(v2_spec(), tmp_path) if (d := c.config.distill) and d.teacher)
    v2 = [c for c in expand(v2_spec(), tmp_path) if c.phase == 2]
    quantum = [c for c in v2 if not c.fields["control"]]
    assert len(quantum) == 3 * 2 * 7 * 2 * 3  # datasets x qubits x methods x (baseline, distilled) x seeds
    controls = [c for c in v2 if c.fields["control"]]
    assert len(controls) == 3 * 2 * 2 * 3  # FC + amplitude only
    assert {(c.fields["reducer"], c.fields["encoding"]) for c in controls} == {("fc", "amplitude")}
    assert {c.config.data.classes for c in v2} == {None} and {c.fields["qubits"] for c in v2} == {4, 8}


def test_missing_cifar10_is_refused_up_front(tmp_path):
    r = CliRunner().invoke(cli, ["reproduce", "v2", "--out", str(tmp_path / "o"), "--data-dir", str(tmp_path)])
    assert r.exit_code == 2 and "files not found" in r.stderr and not (tmp_path / "o").exists()


@pytest.mark.parametrize("which,spec", [("v1", v1_spec()), ("v2", v2_spec())])
def test_the_presets_expand_to_the_cells_of_the_committed_reproductions(which, spec):
    """docs/reproduce-*/results.csv lists the runs of the committed reports: the presets must
    still expand to exactly those cells, with the same axis values, so a rerun resumes them."""
    import csv
    from pathlib import Path

    docs = Path(__file__).resolve().parents[3] / "docs" / f"reproduce-{which}" / "results.csv"
    committed = {r["id"]: r for r in csv.DictReader(docs.open())}
    cells = {c.id: c for c in expand(spec, Path("out"))}
    assert set(cells) == set(committed)
    for cid, cell in cells.items():
        for key, value in cell.fields.items():
            assert str(value) == committed[cid][key], (cid, key)


@pytest.mark.slow
def test_kd_study_quick_runs_and_pairs_every_setting_with_its_regimes_baseline(tmp_path):
    r = CliRunner().invoke(cli, ["reproduce", "kd-study", "--quick", "--out", str(tmp_path), "--quiet"])
    assert r.exit_code == 0, r.output
    rows = json.loads((tmp_path / "results.json").read_text())
    from qkd_pl.experiments.sweeps.report import summarize

    configs = summarize(rows)["configs"]
    distilled = [c for c in configs if c["teacher"] == "lenet5"]
    assert distilled and all(c["gain"] and c["gain"]["n"] == 2 for c in distilled)
    assert {c["data.per_class"] for c in distilled} == {30, "all"}
    controls = [c for c in configs if c["control"]]
    assert controls and all(c["quantum_over_control"]["n"] == 2 for c in controls)
    text = (tmp_path / "report.md").read_text()
    assert text.startswith("# When does distillation help a quantum student?") and "Controls (" in text
    # settings and regimes are named by their bundles, not by the dozen fields behind them
    table = text.split("## Distillation settings against the baseline")[1].split("\n## ")[0].splitlines()
    header = next(line for line in table if line.startswith("| teacher"))
    assert header.startswith("| teacher, pool, setting | digits qubits=2, regime=all, variant=circuit |")
    assert any(line.startswith("| lenet5, -, paper |") for line in table)
    from qkd_pl.experiments.paper.kd_study import BEST
    from qkd_pl.experiments.sweeps.report import write_report

    text = write_report(tmp_path, contrasts=[("setting", f"{BEST}+5", "pseudo+5"),
                                             ("variant", "circuit", "control")]).read_text()
    # a variant bundle sets standard columns (student.control is the column control)
    assert "## variant = circuit against control" in text
    contrast = text.split(f"## setting = {BEST}+5 against pseudo+5")[1].split("\n## ")[0].splitlines()
    assert [line.split(" | ")[0] for line in contrast if line.startswith("| digits")] == [
        "| digits, 2q, pool=seen, regime=few, variant=circuit, teacher lenet5",
        "| digits, 2q, pool=unseen, regime=few, variant=circuit, teacher lenet5"]
    # a preset's contrast that these rows never ran (kd-study --datasets mnist: no compact-cnn) is left out
    never = [("teacher", "compact-cnn", "lenet5")]
    with pytest.raises(QkdError, match="no configuration was run with both values"):
        write_report(tmp_path, contrasts=never)
    text = write_report(tmp_path, contrasts=never, contrasts_where_run=True).read_text()
    assert "## teacher = compact-cnn against lenet5\n\nNot run here" in text
    with pytest.raises(QkdError, match="no such column"):  # a misspelled column is still refused
        write_report(tmp_path, contrasts=[("techer", "compact-cnn", "lenet5")], contrasts_where_run=True)


def test_the_kd_study_grid_is_the_designed_study(tmp_path):
    import tomllib
    from pathlib import Path

    from qkd_pl.experiments.paper import kd_study

    cells = expand(kd_study.kd_study_spec(), tmp_path)
    students = [c for c in cells if c.phase == 2]
    assert sorted(c.id for c in cells if c.phase == 0) == sorted(
        [f"teacher-{d}-all-lenet5" for d in ("cifar10", "fashion-mnist", "mnist")]
        + [f"teacher-{d}-all-lenet5-without-{n}-500" for d, n in (("cifar10", 150), ("fashion-mnist", 150),
                                                                  ("fashion-mnist", 50), ("mnist", 150), ("mnist", 50))])
    assert {c.config.data.per_class for c in cells if c.phase == 0} == {None}
    assert {c.fields["seed"] for c in students} == {0, 1, 2, 3, 4}
    tuning_seeds = {s for f in (Path(kd_study.__file__).parents[3] / "docs/kd-study/tune").glob("*.toml")
                    for s in tomllib.loads(f.read_text())["seeds"]}
    assert tuning_seeds and not tuning_seeds & {0, 1, 2, 3, 4}
    keys = ("dataset", "regime", "qubits", "student.readout", "variant", "seed")
    baselines = {tuple(c.fields[k] for k in keys) for c in students if c.fields["teacher"] == "none"}
    assert all(tuple(c.fields[k] for k in keys) in baselines for c in students)  # every setting is paired
    core = {c.fields["setting"] for c in students if c.fields["regime"] == "150" and c.fields["teacher"] == "lenet5"
            and c.fields["student.readout"] == "z" and c.fields["variant"] == "circuit"}
    assert core == {"paper", *kd_study.TUNED, f"{kd_study.BEST}+500", "pseudo+500"}
    for c in students:
        d = c.config.distill
        if c.fields["setting"] == "paper":
            assert (d.kd_loss, d.temperature, d.alpha) == ("hinton", 3.0, 0.9)
        elif c.fields["setting"] in kd_study.TUNED:
            assert d.kd_loss == c.fields["setting"] and d.transfer == "none"
            assert all(getattr(d, p.split(".")[1]) == v for p, v in kd_study.TUNED[d.kd_loss].items())
        elif c.fields["setting"] == "pseudo+500":
            assert (d.transfer, d.transfer_labels, d.kd_loss) == ("500", "hard", kd_study.BEST)
        if c.fields["regime"] == "all":
            assert (c.config.data.per_class, c.config.train.epochs, c.config.train.batch_size) == (None, 10, 256)
            assert c.fields["qubits"] == 8 and d.transfer == "none"
        else:
            assert c.config.data.per_class == int(c.fields["regime"]) and c.config.train.batch_size == 32
    strong = [c for c in students if c.fields["teacher"] == "compact-cnn"]
    assert {c.fields["dataset"] for c in strong} == {"cifar10", "fashion-mnist"} and {c.fields["setting"] for c in strong} == {
        "paper", kd_study.BEST, f"{kd_study.BEST}+500"}
    assert all(Path(c.config.distill.teacher, "best.pt").is_file() for c in strong)
    variants = {(c.fields["variant"], c.config.student.ansatz, c.config.student.control,
                 c.config.student.control_match) for c in students}
    assert variants == {("circuit", "strong", False, "parameters"), ("no-entanglement", "strong-local", False,
                                                                       "parameters"),
                        ("control", "strong", True, "parameters"), ("width-control", "strong", True, "width")}


def test_the_kd_study_uses_what_its_searches_chose():
    """The tuned settings in kd_study.py are the committed searches' best trials (to the 3 decimals
    written there), and BEST is the objective whose search reached the highest validation accuracy."""
    from pathlib import Path

    from qkd_pl.experiments.paper import kd_study

    docs = Path(kd_study.__file__).resolve().parents[3] / "docs" / "kd-study" / "tune"
    found = {o: json.loads((docs / o / "best.json").read_text()) for o in kd_study.TUNED}
    for objective, best in found.items():
        assert best["config"]["distill"]["kd_loss"] == objective
        assert kd_study.TUNED[objective] == pytest.approx(best["params"], abs=5e-4)
    assert kd_study.BEST == max(found, key=lambda o: found[o]["mean_val_accuracy"])


def test_the_kd_study_runs_every_transfer_row_under_both_protocols_with_its_ceiling(tmp_path):
    import csv
    from collections import Counter
    from pathlib import Path

    from qkd_pl.experiments.paper import kd_study

    docs = Path(__file__).resolve().parents[3] / "docs" / "kd-study" / "results.csv"
    committed = {r["id"] for r in csv.DictReader(docs.open())}
    cells = expand(kd_study.kd_study_spec(), tmp_path)
    assert committed <= {c.id for c in cells}  # the study's runs keep their folders: a rerun resumes them
    students = [c for c in cells if c.config.kind == "student"]
    transfer = [c for c in students if c.fields["role"] == "distilled" and c.config.distill.transfer != "none"]
    pools = Counter(c.fields["pool"] for c in transfer)
    lenet = [c for c in transfer if c.fields["teacher"] == "lenet5"]
    assert pools["unseen"] == len(lenet) // 2 and all(c.fields["teacher"] == "lenet5" for c in transfer
                                                      if c.fields["pool"] == "unseen")
    for c in lenet:
        if c.fields["pool"] == "unseen":
            assert Path(c.config.distill.teacher).name.endswith(f"-without-{c.config.data.per_class}-500")
    ceilings = [c for c in students if c.fields["role"] == "ceiling"]
    def where(c):
        return tuple(c.fields[k] for k in ("dataset", "qubits", "regime", "student.readout", "variant", "seed"))

    assert sorted(map(where, ceilings)) == sorted(set(map(where, transfer)))  # one per pool, and only there
    assert all(c.config.distill.teacher is None and c.config.distill.transfer_labels == "true" for c in ceilings)
    part = expand(kd_study.kd_study_spec(part="pool", qubits=[4]), tmp_path)
    assert {c.fields.get("qubits") for c in part if c.config.kind == "student"} == {4}
    assert {c.fields["role"] for c in part} == {"teacher", "baseline", "distilled", "ceiling"}


@pytest.mark.slow
@pytest.mark.parametrize("args,needle", [(["--qubits", "5"], "the study's students have 4 and 8 qubits"),
                                         (["--quick", "--qubits", "8"], "--quick has 2"),
                                         (["--part", "pool"], None)])
def test_kd_study_parts_are_checked_before_any_work(tmp_path, args, needle):
    if needle is None:  # the quick pool part runs and reports its fractions
        r = CliRunner().invoke(cli, ["reproduce", "kd-study", "--quick", *args, "--out", str(tmp_path), "--quiet"])
        assert r.exit_code == 0, r.output
        report = (tmp_path / "report.md").read_text()
        assert "what the teacher recovers" in report and "| lenet5 | unseen |" in report
        assert "| ceiling - baseline |" in report
        return
    r = CliRunner().invoke(cli, ["reproduce", "kd-study", *args, "--out", str(tmp_path / "x"), "--quiet"])
    assert r.exit_code == 2 and needle in r.output and not (tmp_path / "x").exists()


def test_kd_study_without_the_committed_teachers_says_where_they_are(tmp_path, monkeypatch):
    # An installed wheel carries no docs/teachers/: the study is refused in one line before any work,
    # naming the folder and what to do; MNIST alone, or the pool part, needs none.
    from qkd_pl.experiments.paper import kd_study

    monkeypatch.setattr(kd_study, "STRONG", {d: f"docs/no-such-teachers/{d}" for d in kd_study.STRONG})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(QkdError, match="docs/no-such-teachers/cifar10 is not here: run it from a clone"):
        kd_study.kd_study_spec()
    assert kd_study.kd_study_spec(datasets=["mnist"]).teacher_runs == {}
    kd_study.kd_study_spec(part="pool")
    (tmp_path / "docs/no-such-teachers/fashion-mnist").mkdir(parents=True)
    (tmp_path / "docs/no-such-teachers/fashion-mnist/best.pt").write_bytes(b"")
    spec = kd_study.kd_study_spec(datasets=["fashion-mnist"])  # found under the working folder
    assert spec.teacher_runs == {"fashion-mnist": {"compact-cnn": str(tmp_path / "docs/no-such-teachers/fashion-mnist")}}
