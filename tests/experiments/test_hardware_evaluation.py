"""A trained 4-qubit student evaluated on an IBM fake backend and on Aer, through the CLI."""

import json

import pytest
from click.testing import CliRunner

from cli import cli


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    out = tmp_path_factory.mktemp("hw")
    r = CliRunner().invoke(cli, ["train-student", "--dataset", "digits", "--classes", "0-3", "--per-class", "40",
                                 "--qubits", "4", "--epochs", "3", "--quiet", "--out", str(out), "--name", "s"])
    assert r.exit_code == 0, r.output
    return out / "s"


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
