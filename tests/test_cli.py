"""The command line end to end: real short runs, and one-line errors with exit status 2."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from qkd_pl.cli import cli
from qkd_pl.errors import QkdError

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--dataset", "digits", "--classes", "0-3", "--per-class", "40", "--quiet"]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_one_line_error(result, *needles):
    assert result.exit_code == 2, (result.exit_code, result.output)
    err = result.stderr.strip()
    assert err.startswith("Error: ") and "\n" not in err and "Traceback" not in result.output, err
    for needle in needles:
        assert needle in err, err


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A teacher, a baseline and a distilled student on 4 digit classes, trained through the CLI."""
    out = tmp_path_factory.mktemp("runs")
    r = invoke("train-teacher", *SMALL, "--epochs", 3, "--out", out, "--name", "teacher")
    assert r.exit_code == 0, r.output
    for name, extra in [("baseline", []), ("distilled", ["--teacher", out / "teacher"])]:
        r = invoke("train-student", *SMALL, "--epochs", 2, "--qubits", 3, "--out", out, "--name", name, *extra)
        assert r.exit_code == 0, r.output
    return out


def test_run_folders_hold_config_metrics_checkpoint_and_plot(runs):
    for name in ("teacher", "baseline", "distilled"):
        folder = runs / name
        assert {"config.json", "metrics.json", "test_metrics.json", "best.pt", "last.pt", "curves.png"} <= {
            p.name for p in folder.iterdir()}
        test = json.loads((folder / "test_metrics.json").read_text())
        # 4 classes (chance 25 %): in 3 (teacher: 74 %) and 2 (students: 43 %) epochs all three learn
        assert test["test_accuracy"] >= (0.6 if name == "teacher" else 0.35) and test["n_test"] == 144
    student = json.loads((runs / "distilled" / "test_metrics.json").read_text())
    assert student["trained_on"] == "qkd.fused" and "auto" in student["backend_reason"]
    assert student["parameters"] == {"classical": 64 * 8 + 8 + 3 * 4 + 4, "quantum": 2 * 3 * 3, "total": 554}
    cfg = json.loads((runs / "distilled" / "config.json").read_text())
    assert cfg["distill"]["teacher"].endswith("teacher") and cfg["student"]["qubits"] == 3
    metrics = json.loads((runs / "distilled" / "metrics.json").read_text())
    assert len(metrics) == 2 and all(r["train_kd"] > 0 for r in metrics)


@pytest.mark.slow
def test_evaluate_with_readout_mitigation_and_another_transpiler_level_writes_its_own_file(runs):
    r = invoke("evaluate", runs / "baseline", "--device", "noisy:fake_manila", "--limit", 24)
    assert r.exit_code == 0, r.output
    r = invoke("evaluate", runs / "baseline", "--device", "noisy:fake_manila", "--limit", 24, "--mitigation", "readout",
               "--optimization-level", 2)
    assert r.exit_code == 0, r.output
    assert "readout mitigation" in r.stdout and "circuit on fake_manila" in r.stdout
    raw = json.loads((runs / "baseline" / "evaluation-noisy-fake_manila.json").read_text())
    fixed = json.loads((runs / "baseline" / "evaluation-noisy-fake_manila-readout-o2.json").read_text())
    assert raw["mitigation"] == "none" and raw["optimization_level"] == 1  # the level it ran at, recorded
    assert fixed["mitigation"] == "readout" and fixed["optimization_level"] == 2 and fixed["n_test"] == 24
    assert_one_line_error(invoke("evaluate", runs / "baseline", "--mitigation", "readout"), "noisy:<fake backend>")
    assert_one_line_error(invoke("evaluate", runs / "baseline", "--optimization-level", 2), "transpiles")


@pytest.mark.slow
def test_evaluate_with_zne_stores_the_raw_readouts_and_another_fit_can_be_refitted_from_them(runs):
    import numpy as np

    from qkd_pl.experiments.single.evaluate import refit_zne

    r = invoke("evaluate", runs / "baseline", "--device", "noisy:fake_manila", "--limit", 24, "--mitigation", "zne",
               "--extrapolator", "linear")
    assert r.exit_code == 0, r.output
    assert "zne mitigation (linear extrapolation" in r.stdout
    report = json.loads((runs / "baseline" / "evaluation-noisy-fake_manila-zne-linear.json").read_text())
    assert report["mitigation"] == "zne" and report["zne"]["factors"] == [1, 3, 5]
    stored = runs / "baseline" / report["zne"]["values"]
    with np.load(stored) as z:
        assert z["values"].shape == (24, 3, 3) and str(z["extrapolator"]) == "linear"  # images, factors, <Z_q>
    assert refit_zne(stored, "linear") == pytest.approx(report["test_accuracy"], abs=1e-6)  # the stored readouts are the evaluated ones
    r = invoke("evaluate", runs / "baseline", "--device", "noisy:fake_manila", "--limit", 24, "--mitigation", "zne",
               "--recalibrate", 30)
    assert r.exit_code == 0, r.output
    report = json.loads((runs / "baseline" / "evaluation-noisy-fake_manila-zne-recal30.json").read_text())
    stored = runs / "baseline" / report["zne"]["values"]
    with np.load(stored) as z:
        assert z["values"].shape == (24, 3, 3)  # the test images' values only: the calibration's are not kept
    # read by the head that read them at the time: the recalibrated one, stored beside them
    assert refit_zne(stored, "exponential") == pytest.approx(report["test_accuracy"], abs=1e-6)
    assert_one_line_error(invoke("evaluate", runs / "teacher", "--mitigation", "zne"), "this run is a teacher")
    assert_one_line_error(invoke("evaluate", runs / "baseline", "--device", "noisy:fake_manila", "--extrapolator",
                                 "linear"), "add --mitigation zne")


def test_evaluate_with_a_recalibrated_head_records_it_and_refuses_where_it_cannot(runs):
    r = invoke("evaluate", runs / "baseline", "--device", "noisy:fake_manila", "--limit", 24, "--recalibrate", 30)
    assert r.exit_code == 0, r.output
    assert "head recalibrated on 30 validation images" in r.stdout
    report = json.loads((runs / "baseline" / "evaluation-noisy-fake_manila-recal30.json").read_text())
    assert report["recalibrated"]["images"] == 30 and report["n_test"] == 24
    assert len(report["correct"]) == 24 and report["correct"].count("1") / 24 == pytest.approx(report["test_accuracy"])
    assert_one_line_error(invoke("evaluate", runs / "baseline", "--device", "ibm:fake_manila", "--recalibrate", 30),
                          "no ledger records")
    assert_one_line_error(invoke("evaluate", runs / "baseline", "--device", "noisy:fake_manila", "--recalibrate",
                                 100000), "the validation split holds")


def test_evaluate_on_another_simulator_gives_the_same_accuracy(runs):
    r = invoke("evaluate", runs / "baseline", "--device", "lightning.qubit")
    assert r.exit_code == 0, r.output
    on_lightning = json.loads((runs / "baseline" / "evaluation-lightning.qubit.json").read_text())
    trained = json.loads((runs / "baseline" / "test_metrics.json").read_text())
    assert on_lightning["evaluated_on"] == "lightning.qubit" and on_lightning["trained_on"] == "qkd.fused"
    assert on_lightning["test_accuracy"] == pytest.approx(trained["test_accuracy"])


def test_resume_extends_a_finished_run(runs):
    r = invoke("train-student", *SMALL, "--epochs", 3, "--qubits", 3, "--out", runs, "--name", "baseline", "--resume")
    assert r.exit_code == 0, r.output
    assert len(json.loads((runs / "baseline" / "metrics.json").read_text())) == 3


def test_existing_run_without_resume(runs):
    r = invoke("train-student", *SMALL, "--epochs", 2, "--qubits", 3, "--out", runs, "--name", "baseline")
    assert_one_line_error(r, "already holds a run", "--resume", "--overwrite")


def test_resume_with_another_configuration(runs):
    r = invoke("train-student", *SMALL, "--epochs", 2, "--qubits", 4, "--out", runs, "--name", "baseline", "--resume")
    assert_one_line_error(r, "another configuration", "student.qubits: 3 (saved) vs 4 (now)")


def test_teacher_trained_on_other_classes(runs, tmp_path):
    r = invoke("train-student", "--dataset", "digits", "--classes", "0-5", "--per-class", "40", "--quiet",
               "--epochs", 1, "--out", tmp_path, "--teacher", runs / "teacher")
    assert_one_line_error(r, "the teacher was trained on digits classes [0, 1, 2, 3]",
                          "the student uses digits classes [0, 1, 2, 3, 4, 5]")


def test_student_as_teacher(runs, tmp_path):
    r = invoke("train-student", *SMALL, "--epochs", 1, "--out", tmp_path, "--teacher", runs / "baseline")
    assert_one_line_error(r, "not a teacher")


def test_unknown_dataset(tmp_path):
    assert_one_line_error(invoke("train-teacher", "--dataset", "svhn", "--out", tmp_path), "'svhn' is not one of",
                          "'fashion-mnist'")


def test_compile_mode(tmp_path, monkeypatch):
    """--compile sets QKD_COMPILE for the run; a mistyped QKD_COMPILE is refused before any work."""
    monkeypatch.setenv("QKD_COMPILE", "trace")
    assert invoke("--compile", "off", "backends", "--help").exit_code == 0
    assert os.environ["QKD_COMPILE"] == "off"
    assert_one_line_error(invoke("--compile", "fast", "backends", "--help"), "'fast' is not one of")
    monkeypatch.setenv("QKD_COMPILE", "inducter")
    assert_one_line_error(invoke("train-student", "--out", tmp_path), "QKD_COMPILE='inducter'", "inductor")
    assert not any(tmp_path.iterdir())


def test_missing_data(tmp_path):
    r = invoke("train-teacher", "--dataset", "mnist", "--data-dir", tmp_path / "empty", "--out", tmp_path)
    assert_one_line_error(r, "mnist files not found", "downloads it on first use", "docs/howto/data.md")


@pytest.mark.parametrize("args,needle", [
    (["train-student", "--qubits", "0"], "--qubits"),
    (["train-student", "--qubits", "25"], "--qubits"),
    (["train-student", "--dataset", "mnist", "--qubits", "24"], "needs about"),  # memory, before any data is read
    (["train-student", "--device", "nope"], "unknown --device"),
    (["train-student", "--reducer", "nope"], "--reducer"),
    (["train-student", "--encoding", "nope"], "--encoding"),
    (["train-student", "--ansatz", "nope"], "--ansatz"),
    (["train-teacher", "--dataset", "nope"], "'nope' is not one of"),
    (["train-student", "--classes", "3"], "fewer than two classes"),
    (["train-student", "--classes", "8-11"], "this dataset has classes 0-9"),
    (["train-student", "--dataset", "mnist", "--data-dir", "/nonexistent", "--classes", "8-11"], "classes 0-9"),
    (["train-student", "--per-class", "1"], "leaves no training image of a class"),
    (["train-student", "--resume", "--overwrite"], "pass one of them"),
    (["evaluate", "/no/such/run"], "does not exist"),
])
def test_bad_options(tmp_path, args, needle):
    assert_one_line_error(invoke(*args, "--out", tmp_path) if args[0] != "evaluate" else invoke(*args), needle)
    assert args[0] == "evaluate" or not any(tmp_path.iterdir())  # refused before any run folder was made


def test_shots_on_an_exact_device_and_truncated_checkpoints(runs, tmp_path):
    assert_one_line_error(invoke("evaluate", runs / "baseline", "--device", "default.qubit", "--shots", 100),
                          "--shots applies to shot-based devices")
    truncated = tmp_path / "best.pt"
    truncated.write_bytes((runs / "baseline" / "best.pt").read_bytes()[:1000])
    assert_one_line_error(invoke("evaluate", truncated), "not a checkpoint qkd-pl can read safely")


def test_a_teacher_on_another_dataset_is_refused_before_loading_data(runs, tmp_path):
    r = invoke("train-student", "--dataset", "fashion-mnist", "--data-dir", tmp_path / "none", "--out", tmp_path,
               "--teacher", runs / "teacher")
    assert_one_line_error(r, "the teacher was trained on digits", "the student uses fashion-mnist")


def test_overwrite_replaces_a_finished_run(runs, tmp_path):
    args = [*SMALL, "--epochs", 1, "--qubits", 2, "--out", tmp_path, "--name", "r"]
    assert invoke("train-student", *args).exit_code == 0
    assert_one_line_error(invoke("train-student", *args), "already holds a run")
    r = invoke("train-student", *args, "--overwrite", "--seed", 5)
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "r" / "config.json").read_text())["train"]["seed"] == 5


@pytest.mark.slow
def test_per_class_beyond_what_a_class_has_warns_in_one_line_and_uses_all(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "train-teacher", "--classes", "0-1", "--per-class",
                           "500", "--epochs", "1", "--quiet", "--out", str(tmp_path)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 2 and "--per-class 500 is more than some classes have" in warnings[0]
    assert "train split" in warnings[0] and "test split" in warnings[1] and "using all" in warnings[1]


def test_real_process_prints_one_line_and_exits_2(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "train-student", "--qubits", "0"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_help_explains_every_command():
    r = invoke("--help")
    assert r.exit_code == 0
    for command in ("train-teacher", "train-student", "evaluate", "demo"):
        assert command in r.output
        sub = invoke(command, "--help")
        assert sub.exit_code == 0 and "Usage" in sub.output
    assert "--temperature" in invoke("train-student", "--help").output


def test_compare_reports_mean_and_spread_over_seeds(tmp_path):
    r = invoke("compare", *SMALL, "--qubits", 2, "--epochs", 1, "--teacher-epochs", 1, "--seeds", "0,1",
               "--out", tmp_path, "--name", "cmp")
    assert r.exit_code == 0, r.output
    folder = tmp_path / "cmp"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["seeds"] == [0, 1] and len(summary["baseline"]["test_accuracy"]) == 2
    rows = json.loads((folder / "results.json").read_text())  # a comparison is a grid: same files, same report
    for role in ("baseline", "distilled"):
        accs = summary[role]["test_accuracy"]
        assert summary[role]["mean"] == pytest.approx(sum(accs) / 2) and summary[role]["n"] == 2
        per_seed = [json.loads((folder / r["run_dir"] / "test_metrics.json").read_text())
                    for s in (0, 1) for r in rows if r["role"] == role and r["seed"] == s]
        assert accs == [m["test_accuracy"] for m in per_seed]
    gain = [summary["distilled"]["test_accuracy"][i] - summary["baseline"]["test_accuracy"][i] for i in (0, 1)]
    assert summary["gain"]["mean"] == pytest.approx(sum(gain) / 2) and summary["gain"]["n"] == 2
    distilled = [r for r in rows if r["role"] == "distilled" and r["seed"] == 1][0]
    assert json.loads((folder / distilled["run_dir"] / "config.json").read_text())["train"]["seed"] == 1
    assert "+-" in (folder / "summary.md").read_text() and (folder / "report.md").exists()


def test_one_seed_is_summarized_by_the_same_rule_as_a_grid(tmp_path):
    r = invoke("compare", *SMALL, "--qubits", 2, "--epochs", 1, "--teacher-epochs", 1, "--seeds", "0",
               "--out", tmp_path, "--name", "one")
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "one" / "summary.json").read_text())
    assert summary["baseline"]["n"] == 1 and summary["baseline"]["std"] != summary["baseline"]["std"]  # NaN
    assert "(1 seed, no interval)" in r.output and "(n=1)" in r.output


def test_demo_rejects_bad_seeds(tmp_path):
    assert_one_line_error(invoke("demo", "--seeds", "a,b", "--out", tmp_path), "--seeds")


def test_demo_quick_shrinks_what_was_not_given(tmp_path, monkeypatch):
    from qkd_pl.experiments.paper import demo

    calls = []
    monkeypatch.setattr(demo, "run_demo", lambda *a, **k: calls.append(a) or (_ for _ in ()).throw(QkdError("stop")))
    invoke("demo", "--quick", "--out", tmp_path)
    invoke("demo", "--quick", "--seeds", "3", "--student-epochs", "5", "--out", tmp_path)
    invoke("demo", "--out", tmp_path)
    # (out, seeds, qubits, layers, teacher epochs, student epochs)
    assert [c[1:] for c in calls] == [([0, 1], 4, 2, 2, 3), ([3], 4, 2, 2, 5), ([0, 1, 2, 3, 4], 4, 2, 10, 15)]


def test_backends_lists_every_device_with_its_capabilities(tmp_path):
    r = invoke("backends", "--no-measure", "--json", tmp_path / "b.json")
    assert r.exit_code == 0, r.output
    rows = {row["device"]: row for row in json.loads((tmp_path / "b.json").read_text())}
    assert rows["default.qubit"]["gradients"] == "backprop" and rows["lightning.qubit"]["gradients"] == "adjoint"
    assert rows["qkd.fused"]["gradients"] == "backprop" and rows["qkd.fused"]["installed"]
    assert rows["ibm:fake_manila"]["max_qubits"] == "5" and rows["qiskit.aer"]["use"] == "evaluate"
    assert "ibm:least_busy" in r.output
    # a long value several rows share is written once, under the table, and the JSON keeps it whole
    assert r.output.count("a student that would not fit is refused before it starts") == 1
    assert "| memory-bound [1] |" in r.output and "\n[1] memory-bound (a student" in r.output
    assert rows["qkd.fused"]["max_qubits"].startswith("memory-bound (")


def test_backends_measures_speed():
    from qkd_pl.experiments.tools.backends_report import measure

    assert measure("default.qubit", True, 8) > 0 and measure("qiskit.aer", False, 2) > 0


def test_bench_times_each_device_and_explains_refusals(tmp_path):
    r = invoke("bench", "--student", "hybrid-cnn", "--qubits", 4, "--dataset", "digits", "--batch-size", "8,16",
               "--devices", "qkd.fused,lightning.qubit,qiskit.aer", "--budget", 1, "--json", tmp_path / "b.json")
    assert r.exit_code == 0, r.output
    rows = json.loads((tmp_path / "b.json").read_text())
    assert [(row["device"], row["batch"]) for row in rows] == [
        ("qkd.fused", 8), ("qkd.fused", 16), ("lightning.qubit", 8), ("lightning.qubit", 16), ("qiskit.aer", 8),
        ("qiskit.aer", 16)]
    fused, lightning, aer = rows[0], rows[2], rows[4]
    assert fused["train_samples_per_s"] > 0 and fused["inference_samples_per_s"] > 0
    assert lightning["train_samples_per_s"] is None and "adjoint" in lightning["note"]  # hybrid-cnn refused there
    assert aer["train_samples_per_s"] is None and aer["inference_samples_per_s"] > 0  # shot-based: evaluation only
    assert "| qkd.fused | backprop | 8 |" in r.output


def test_bench_defaults_to_the_installed_exact_simulators():
    from qkd_pl.experiments.tools.bench import default_devices

    assert default_devices()[:4] == ["qkd.fused", "qkd.fused32", "default.qubit", "lightning.qubit"]


def test_bench_rejects_bad_batch_sizes():
    assert_one_line_error(invoke("bench", "--batch-size", "0,8"), "--batch-size")
    assert_one_line_error(invoke("bench", "--batch-size", "x"), "--batch-size")


def test_draw_prints_the_circuit_and_saves_a_png(tmp_path):
    r = invoke("draw", "--qubits", 3, "--ansatz", "paper", "--png", tmp_path / "c.png")
    assert r.exit_code == 0, r.output
    assert r.output.count("<Z>") == 3 and "RX" in r.output and (tmp_path / "c.png").stat().st_size > 1000
    r = invoke("draw", "--qubits", 2, "--encoding", "angle", "--ansatz", "basic", "--expand")
    assert r.exit_code == 0 and "RY" in r.output


def test_draw_says_what_the_circuit_costs_on_an_ibm_device():
    from qkd_pl.errors import QkdWarning

    with pytest.warns(QkdWarning, match="less than half of its outputs") as seen:
        r = invoke("draw", "--qubits", 8, "--encoding", "amplitude", "--device", "ibm:fake_brisbane")
    assert r.exit_code == 0, r.output
    assert sum(issubclass(w.category, QkdWarning) for w in seen) == 1
    cost = [line for line in r.stdout.splitlines() if line.startswith("circuit on fake_brisbane")]
    assert len(cost) == 1 and "two-qubit gates" in cost[0] and "estimated fidelity" in cost[0]
    qpu = [line for line in r.stdout.splitlines() if line.startswith("QPU time for 1,000 images")]
    raw, readout, zne = (float(qpu[0].split(f"{w} ")[1].split(" s")[0].replace(",", "")) for w in ("about", "s raw,", "readout,"))
    assert len(qpu) == 1 and 0 < raw < readout < zne  # a circuit's duration beside the delay; TREX; three folded runs
    r = invoke("draw", "--qubits", 4, "--encoding", "angle", "--ansatz", "line", "--device", "noisy:fake_torino")
    assert r.exit_code == 0 and "circuit on fake_torino: depth" in r.stdout and "less than half" not in r.output


@pytest.mark.slow
def test_the_installed_command_prints_the_noise_warning_as_one_line():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, str(Path(__file__).parents[1] / "cli.py"), "draw", "--qubits", "8", "--device", "ibm:fake_brisbane"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Warning: on fake_brisbane") and "angle or qubit" in lines[0]


@pytest.mark.parametrize("device,needle", [("lightning.qubit", "ibm:<backend> or noisy:<fake backend>"),
                                           ("ibm:fake_manila", "fake_manila has 5 qubits"),
                                           ("ibm:fake_nowhere", "unknown IBM fake backend")])
def test_draw_refuses_a_device_it_cannot_cost_before_drawing(device, needle):
    r = invoke("draw", "--qubits", 8, "--device", device)
    assert_one_line_error(r, needle)
    assert "<Z>" not in r.stdout


def test_draw_a_saved_student(runs):
    r = invoke("draw", "--run", runs / "baseline")
    assert r.exit_code == 0 and r.output.count("<Z>") == 3
    assert_one_line_error(invoke("draw", "--run", runs / "teacher"), "teacher run")


def test_the_papers_distillation_is_one_flag_away(runs, tmp_path):
    from qkd_pl.config import PAPER_DISTILL, DistillConfig

    r = invoke("train-student", *SMALL, "--epochs", 1, "--qubits", 3, "--out", tmp_path, "--name", "paper",
               "--teacher", runs / "teacher", "--paper-kd")
    assert r.exit_code == 0, r.output
    saved = json.loads((tmp_path / "paper" / "config.json").read_text())["distill"]
    assert {k: saved[k] for k in PAPER_DISTILL} == PAPER_DISTILL
    assert {k: getattr(DistillConfig(), k) for k in PAPER_DISTILL} != PAPER_DISTILL  # not the defaults any more
    r = invoke("train-student", *SMALL, "--out", tmp_path, "--teacher", runs / "teacher", "--paper-kd", "--alpha", 0.5)
    assert_one_line_error(r, "--paper-kd sets --kd-loss, --temperature and --alpha", "leave out --alpha")


def test_help_names_nothing_of_a_checkout():
    # An installed user has no checkout: no qkd_pl/*.py, docs/, benchmarks/ or ../shared/ to open;
    # help names commands and the documentation's pages instead.
    import re

    checkout = re.compile(r"\b(qkd_pl|docs|benchmarks|tests|examples)/|\.\./shared|\w\.py\b")
    for name in [None, *cli.commands]:
        r = invoke(*([name] if name else []), "--help")
        assert r.exit_code == 0, r.output
        assert not checkout.search(r.output), (name, checkout.search(r.output).group(0))


@pytest.mark.parametrize("command, key", [("grid", "[[include]]"), ("tune", "[space]")])
def test_keys_prints_the_file_layout(command, key):
    r = invoke(command, "--keys")  # no file argument needed
    assert r.exit_code == 0 and r.output.startswith("TOML layout") and key in r.output, r.output
