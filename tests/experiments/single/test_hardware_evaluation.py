"""A trained 4-qubit student evaluated on an IBM fake backend and on Aer, through the CLI."""

import json

import pytest
from click.testing import CliRunner

from qkd_pl.cli import cli
from tests_helpers_students import train_digits_student


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    return train_digits_student(tmp_path_factory.mktemp("hw"), qubits=4, epochs=3)


@pytest.mark.slow
def test_evaluate_on_ibm_fake_backend(student):
    r = CliRunner().invoke(cli, ["evaluate", str(student), "--device", "ibm:fake_manila", "--shots", "2000",
                                 "--limit", "24"])
    assert r.exit_code == 0, r.output
    rep = json.loads((student / "evaluation-ibm-fake_manila.json").read_text())
    assert rep["evaluated_on"] == "ibm:fake_manila" and rep["trained_on"] == "qkd.fused"
    assert rep["shots"] == 2000 and rep["n_test"] == 24
    assert rep["test_accuracy"] > 0.25  # above chance for 4 classes, despite the device's noise


def test_evaluate_on_noiseless_aer_matches_the_exact_accuracy_closely(student):
    r = CliRunner().invoke(cli, ["evaluate", str(student), "--device", "qiskit.aer", "--shots", "4000",
                                 "--limit", "40"])
    assert r.exit_code == 0, r.output
    aer = json.loads((student / "evaluation-qiskit.aer.json").read_text())
    r = CliRunner().invoke(cli, ["evaluate", str(student), "--limit", "40"])
    exact = json.loads((student / "evaluation-qkd.fused.json").read_text())
    # Shot noise flips at most a few near-tied predictions out of 40.
    assert abs(aer["test_accuracy"] - exact["test_accuracy"]) <= 0.1


def test_real_hardware_errors_never_show_the_token(student, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("QISKIT_IBM_TOKEN", "tok-SECRET-1234567890")
    r = CliRunner().invoke(cli, ["evaluate", str(student), "--device", "ibm:ibm_brisbane", "--limit", "2"])
    assert r.exit_code == 2 and "IBM Quantum" in r.stderr
    assert "SECRET" not in r.output and "\n" not in r.stderr.strip()
    assert not any("SECRET" in p.read_text() for p in student.glob("*.json"))


def test_hybrid_cnn_evaluates_on_aer(tmp_path):
    r = CliRunner().invoke(cli, ["train-student", "--student", "hybrid-cnn", "--qubits", "2", "--classes", "0-3",
                                 "--per-class", "20", "--epochs", "1", "--quiet", "--out", str(tmp_path), "--name", "h"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "h"), "--device", "qiskit.aer", "--limit", "8"])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "h" / "evaluation-qiskit.aer.json").read_text())["n_test"] == 8


def flaky_fake_backends(monkeypatch, succeed_first: int, then_fail: int):
    """Fake backends whose jobs fail on purpose: the first ``succeed_first`` circuits run, the
    next ``then_fail`` raise qiskit's JobError, and any after that run again."""
    from qiskit.providers import JobError

    from qkd_pl.devices import ibm, retry

    real = ibm.fake_backend
    calls = {"n": 0}

    def make(name):
        hw = real(name)
        run = hw.run

        def flaky_run(*args, **kwargs):
            calls["n"] += 1
            if succeed_first < calls["n"] <= succeed_first + then_fail:
                raise JobError("the job failed on purpose")
            return run(*args, **kwargs)

        hw.run = flaky_run
        return hw

    monkeypatch.setattr(ibm, "fake_backend", make)
    monkeypatch.setattr(retry, "BASE_DELAY_S", 0.0)
    return calls


PATHS = {"batched": ([], 1), "per-circuit": (["--per-circuit"], 16)}  # flags, backend.run calls per 16 images


@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS)
def test_failed_jobs_are_retried_and_the_evaluation_completes(student, monkeypatch, path):
    flaky_fake_backends(monkeypatch, succeed_first=0, then_fail=2)
    r = CliRunner().invoke(cli, ["evaluate", str(student), "--device", "ibm:fake_manila", "--limit", "20",
                                 "--batch-size", "16", *PATHS[path][0]])
    assert r.exit_code == 0, r.output
    assert "retry 1/3" in r.output and "retry 2/3" in r.output and "retry 3/3" not in r.output
    tag = "ibm-fake_manila" + ("-per-circuit" if path == "per-circuit" else "")
    assert json.loads((student / f"evaluation-{tag}.json").read_text())["n_test"] == 20
    assert not (student / f"evaluation-{tag}.partial.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS)
def test_after_the_retries_the_run_stops_keeps_what_finished_and_continues_later(student, monkeypatch, path):
    # Batches of 16: the first batch runs, then every job fails (4 attempts).
    flags, runs_per_batch = PATHS[path]
    flaky_fake_backends(monkeypatch, succeed_first=runs_per_batch, then_fail=4)
    args = ["evaluate", str(student), "--device", "ibm:fake_manila", "--limit", "40", "--batch-size", "16", *flags]
    r = CliRunner().invoke(cli, args)
    err = r.stderr.strip().splitlines()[-1]
    assert r.exit_code == 2 and err.startswith("Error: ibm:fake_manila: batch 2/3 failed after 4 attempts")
    assert "16 of 40 test images finished" in err and "run the same command again" in err
    tag = "ibm-fake_manila" + ("-per-circuit" if path == "per-circuit" else "")
    partial = student / f"evaluation-{tag}.partial.json"
    assert len(json.loads(partial.read_text())["logits"]) == 16
    r = CliRunner().invoke(cli, args)  # the device works again: only batches 2 and 3 are run
    assert r.exit_code == 0, r.output
    assert "continuing: 16 of 40" in r.output and not partial.exists()
    assert json.loads((student / f"evaluation-{tag}.json").read_text())["n_test"] == 40


@pytest.mark.slow
def test_the_token_never_reaches_output_logs_or_run_folders(monkeypatch, tmp_path):
    token = "tok-NEVER-SHOWN-0987654321"
    monkeypatch.setenv("QISKIT_IBM_TOKEN", token)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    outputs = []
    for args in (["train-student", "--classes", "0-3", "--per-class", "20", "--epochs", "1", "--out", str(tmp_path),
                  "--name", "s"],
                 ["evaluate", str(tmp_path / "s"), "--device", "ibm:fake_manila", "--limit", "4"],
                 ["evaluate", str(tmp_path / "s"), "--device", "ibm:least_busy", "--limit", "2"],
                 ["evaluate", str(tmp_path / "s"), "--device", "ibm:ibm_brisbane", "--limit", "2"]):
        r = CliRunner().invoke(cli, args)
        outputs += [r.output, r.stderr]
    assert token not in "".join(outputs)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files and not any(token.encode() in p.read_bytes() for p in files)
