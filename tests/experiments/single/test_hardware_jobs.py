"""Real-hardware evaluation without surprises, against a fake IBM Quantum service (no network).

``FakeService`` stands in for ``QiskitRuntimeService`` and fake primitives for the cloud's
EstimatorV2 / SamplerV2: jobs run locally on a fake backend and are kept by id, as the service
keeps them, and every submission is counted. Being killed is a ``Killed`` exception raised
while the process waits on a job (after it was submitted and recorded).
"""

import itertools
import json
import re
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

import qiskit_ibm_runtime
import qkd_pl.devices.qiskit_batched  # noqa: F401 - pennylane-qiskit binds the primitives it imports before any fake
from qkd_pl.cli import cli
from tests_helpers_students import train_digits_student
from qkd_pl.devices import ibm
from qkd_pl.errors import QkdError
from qkd_pl.experiments import evaluate_run

LOCAL_ESTIMATOR, LOCAL_SAMPLER = qiskit_ibm_runtime.EstimatorV2, qiskit_ibm_runtime.SamplerV2


class Killed(BaseException):
    """The process dies here (not an Exception: nothing may catch it and carry on)."""


class FakeJob:
    def __init__(self, service, job_id, result):
        self.service, self._id, self._result = service, job_id, result
        self.failed = False

    def job_id(self):
        return self._id

    def status(self):  # what IBM's RuntimeJobV2.status() answers
        return "ERROR" if self.failed else "DONE"

    def result(self):
        self.service.waits += 1
        if self.service.kill_on_wait == self.service.waits:
            raise Killed()
        if self._id in self.service.hiccup:  # the connection drops while waiting; the job itself is fine
            self.service.hiccup.discard(self._id)
            raise ConnectionError("connection reset while waiting")
        if self._id in self.service.fail:
            self.service.fail.discard(self._id)
            self.failed = True
            raise qiskit_ibm_runtime.exceptions.RuntimeJobFailureError(f"job {self._id} failed on the device")
        return self._result


class FakeService:
    """The parts of QiskitRuntimeService qkd-pl uses; a job's result is kept by its id."""

    def __init__(self, backend="fake_manila"):
        self.hw = ibm.fake_backend(backend)
        self.jobs, self.submitted, self.options = {}, [], []
        self.kill_on_wait, self.waits, self.fail_next, self.fail, self.hiccup = None, 0, 0, set(), set()
        self._ids = itertools.count(1)

    def backend(self, name):
        return self.hw

    def least_busy(self, **kwargs):
        return self.hw

    def job(self, job_id):
        return self.jobs[job_id]

    def primitive(self, kind):
        service = self

        class Primitive:
            def __init__(self, mode):
                from qiskit_ibm_runtime.options import EstimatorOptions, SamplerOptions

                # the service's own options classes: a misspelt option fails here as it would there
                self.mode, self.options = mode, (EstimatorOptions() if kind == "estimator" else SamplerOptions())

            def run(self, pubs, shots=None):
                service.options.append(self.options)
                if kind == "estimator":
                    local = LOCAL_ESTIMATOR(mode=service.hw)
                    local.options.default_shots = self.options.default_shots
                    zne = self.options.resilience.zne_mitigation is True
                    result = _zne_result(local, pubs, self.options.resilience.zne) if zne else local.run(pubs).result()
                else:
                    result = LOCAL_SAMPLER(mode=service.hw).run(pubs, shots=shots).result()
                job = FakeJob(service, f"job-{next(service._ids)}", result)
                service.jobs[job.job_id()] = job
                service.submitted.append(job.job_id())
                if service.fail_next:
                    service.fail_next -= 1
                    service.fail.add(job.job_id())
                return job

        return Primitive


def _zne_result(local, pubs, zne):
    """What IBM's Estimator returns with ZNE, computed here: each pub's folded circuits run locally under the
    fake backend's noise, extrapolated by qkd-pl's fit of the same name (the service's own fits differ in
    detail), with the per-factor values beside them as ``evs_noise_factors``."""
    import numpy as np
    import torch

    from qkd_pl.devices.mitigation import extrapolate, fold_two_qubit_gates

    (circuit, observables, values), = pubs
    factors = [int(f) for f in zne.noise_factors]
    per = [local.run([(fold_two_qubit_gates(circuit, f), observables, values)]).result()[0].data.evs for f in factors]
    raw = np.stack([np.asarray(e, dtype=np.float64) for e in per], axis=-1)  # (observables, batch, factors)
    how = {"linear": "linear", "polynomial_degree_2": "richardson"}.get(zne.extrapolator, "exponential")
    flat = torch.from_numpy(raw.reshape(-1, raw.shape[-1]))[:, :, None]  # (all values, factors, 1)
    evs = extrapolate(flat, tuple(factors), how).numpy().reshape(raw.shape[:-1])
    return [SimpleNamespace(data=SimpleNamespace(evs=evs, evs_noise_factors=raw))]


@pytest.fixture
def service(monkeypatch, tmp_path):
    fake = FakeService()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("QISKIT_IBM_TOKEN", "tok-test-not-a-secret")
    monkeypatch.setattr(ibm, "runtime_service", lambda: fake)
    monkeypatch.setattr(qiskit_ibm_runtime, "EstimatorV2", fake.primitive("estimator"))
    monkeypatch.setattr(qiskit_ibm_runtime, "SamplerV2", fake.primitive("sampler"))
    return fake


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    return train_digits_student(tmp_path_factory.mktemp("jobs"), qubits=3, epochs=2)


def clean(student):
    for p in student.glob("evaluation-*"):
        p.unlink()


ARGS = ["--device", "ibm:ibm_hardware", "--limit", "60", "--batch-size", "20", "--yes"]


def test_a_killed_evaluation_resumes_by_job_id_and_submits_no_job_twice(student, service):
    clean(student)
    service.kill_on_wait = 2  # batch 1 finishes; batch 2's job is submitted, recorded, then the process dies
    with pytest.raises(Killed):
        CliRunner().invoke(cli, ["evaluate", str(student), *ARGS], catch_exceptions=False)
    ledger = json.loads((student / "evaluation-ibm-ibm_hardware.jobs.json").read_text())
    assert [j["job_id"] for j in ledger["jobs"]] == service.submitted == ["job-1", "job-2"]
    assert [j["status"] for j in ledger["jobs"]] == ["done", "submitted"]

    service.kill_on_wait = None
    r = CliRunner().invoke(cli, ["evaluate", str(student), *ARGS])
    assert r.exit_code == 0, r.output
    assert "continuing: 20 of 60" in r.output and "1 job(s) submitted, 1 retrieved by id" in r.output
    assert service.submitted == ["job-1", "job-2", "job-3"]  # one job per batch, none twice
    ledger = json.loads((student / "evaluation-ibm-ibm_hardware.jobs.json").read_text())
    keys = [j["key"] for j in ledger["jobs"]]
    assert len(keys) == len(set(keys)) == 3 and all(j["status"] == "done" for j in ledger["jobs"])
    report = json.loads((student / "evaluation-ibm-ibm_hardware.json").read_text())
    assert report["n_test"] == 60 and report["jobs_submitted"] == 1 and report["jobs_retrieved"] == 1
    assert "tok-test" not in (student / "evaluation-ibm-ibm_hardware.jobs.json").read_text()


def test_jobs_submitted_under_one_limit_are_retrieved_under_another(student, service):
    clean(student)
    service.kill_on_wait = 2
    with pytest.raises(Killed):
        CliRunner().invoke(cli, ["evaluate", str(student), *ARGS], catch_exceptions=False)  # --limit 60
    service.kill_on_wait = None
    args = [a if a != "60" else "40" for a in ARGS]
    r = CliRunner().invoke(cli, ["evaluate", str(student), *args])
    assert r.exit_code == 0, r.output
    assert service.submitted == ["job-1", "job-2"] and "0 job(s) submitted, 2 retrieved by id" in r.output


def test_a_failed_job_is_submitted_again_and_the_ledger_says_so(student, service, monkeypatch):
    from qkd_pl.devices import retry

    monkeypatch.setattr(retry, "BASE_DELAY_S", 0.0)
    clean(student)
    service.fail_next = 1
    r = CliRunner().invoke(cli, ["evaluate", str(student), *ARGS])
    assert r.exit_code == 0, r.output
    assert "retry 1/3" in r.output and len(service.submitted) == 4
    statuses = [j["status"] for j in json.loads((student / "evaluation-ibm-ibm_hardware.jobs.json").read_text())["jobs"]]
    assert statuses == ["failed", "done", "done", "done"]


def test_without_a_terminal_a_paid_plan_needs_yes_and_nothing_is_submitted(student, service):
    clean(student)
    r = CliRunner().invoke(cli, ["evaluate", str(student), *ARGS[:-1]])
    assert r.exit_code == 2 and "\n" not in r.stderr.strip()
    assert "no terminal to ask" in r.stderr and "--yes" in r.stderr
    assert "plan: ibm_hardware" not in r.stderr and "3 estimator job(s) in batch mode" in r.output
    assert "60 circuit executions" in r.output and "QPU seconds" in r.output
    assert service.submitted == []  # the ledger, written before the plan, holds no job
    assert json.loads((student / "evaluation-ibm-ibm_hardware.jobs.json").read_text())["jobs"] == []


def test_the_plan_is_asked_about_and_a_no_submits_nothing(student, service):
    clean(student)
    questions = []
    with pytest.raises(QkdError, match="declined"):
        evaluate_run(student, "ibm:ibm_hardware", limit=60, batch_size=20,
                     ask=lambda q: questions.append(q) or False)
    assert questions and service.submitted == []
    report = evaluate_run(student, "ibm:ibm_hardware", limit=60, batch_size=20, ask=lambda q: True)
    assert report.jobs_submitted == 3 == len(service.submitted)


def test_a_session_the_account_cannot_open_is_refused_in_one_line(student, service, monkeypatch):
    clean(student)

    def no_session(*args, **kwargs):
        raise qiskit_ibm_runtime.exceptions.IBMRuntimeError("You are not authorized to run a session when using the "
                                                             "open plan. tok-test-not-a-secret")

    monkeypatch.setattr(qiskit_ibm_runtime, "Session", no_session)
    r = CliRunner().invoke(cli, ["evaluate", str(student), *ARGS, "--mode", "session"])
    assert r.exit_code == 2 and "\n" not in r.stderr.strip()
    assert "could not open a session" in r.stderr and "--mode batch" in r.stderr
    assert "tok-test" not in r.output + r.stderr and service.submitted == []


def test_local_fake_backends_need_no_confirmation(student):
    clean(student)
    r = CliRunner().invoke(cli, ["evaluate", str(student), "--device", "ibm:fake_manila", "--limit", "40",
                                 "--batch-size", "20"])
    assert r.exit_code == 0, r.output
    assert "plan:" not in r.output and "2 job(s) submitted" in r.output


def test_the_per_circuit_path_on_hardware_needs_yes(student, service):
    clean(student)
    r = CliRunner().invoke(cli, ["evaluate", str(student), "--device", "ibm:ibm_hardware", "--per-circuit",
                                 "--limit", "2"])
    assert r.exit_code == 2 and "records none of them" in r.stderr and "--yes" in r.stderr
    assert service.submitted == []


@pytest.mark.slow
def test_mitigation_reaches_the_service_and_its_cost_is_in_the_plan(student, service):
    clean(student)
    args = ["--device", "ibm:ibm_hardware", "--limit", "20", "--batch-size", "20", "--yes"]
    r = CliRunner().invoke(cli, ["evaluate", str(student), *args])
    assert r.exit_code == 0, r.output
    plans = re.findall(r"plan: ([^\n]*)", r.output)  # after the progress bar, on its line
    raw = service.options[-1].resilience_level
    assert raw == 0  # raw means raw: the service's default level 1 would apply TREX unasked
    r = CliRunner().invoke(cli, ["evaluate", str(student), *args, "--mitigation", "readout"])
    assert r.exit_code == 0, r.output
    trex = service.options[-1].resilience
    assert trex.measure_mitigation is True and trex.zne_mitigation is False
    assert "TREX calibrates the readouts" in r.output
    plans += re.findall(r"plan: ([^\n]*)", r.output)
    r = CliRunner().invoke(cli, ["evaluate", str(student), *args[:-2], "10", "--yes", "--mitigation", "zne",
                                 "--extrapolator", "linear"])  # two jobs of 10 images
    assert r.exit_code == 0, r.output
    zne = service.options[-1].resilience
    assert zne.zne_mitigation is True and zne.measure_mitigation is True
    assert tuple(zne.zne.noise_factors) == (1.0, 3.0, 5.0) and zne.zne.extrapolator == "linear"
    plans += re.findall(r"plan: ([^\n]*)", r.output)
    assert len(plans) == 3, r.output
    assert "20 circuit executions" in plans[1] and "60 circuit executions" in plans[2]  # 3 noise factors
    assert "2 estimator job(s)" in plans[2]
    seconds = [float(p.split("about ")[1].split(" QPU")[0].replace(",", "")) for p in plans]
    assert seconds[1] > seconds[0]  # TREX's calibration (one per job)
    assert seconds[2] - 2 * (seconds[1] - seconds[0]) > 3 * seconds[0]  # 3 circuits per image, the folded ones longer
    report = json.loads((student / "evaluation-ibm-ibm_hardware-zne-linear.json").read_text())
    import numpy as np

    from qkd_pl.experiments.single.evaluate import refit_zne

    with np.load(student / report["zne"]["values"]) as z:  # the service's per-factor values, kept
        assert z["values"].shape == (20, 3, 3)
    # in test order across both jobs: the service's fit of them gives the evaluation's accuracy again
    assert refit_zne(student / report["zne"]["values"], "linear") == pytest.approx(report["test_accuracy"], abs=1e-6)
    assert len(service.submitted) == 4


def test_mitigation_that_would_not_run_as_asked_is_refused_before_any_work(student, tmp_path):
    clean(student)
    r = CliRunner().invoke(cli, ["evaluate", str(student), "--device", "ibm:fake_manila", "--mitigation", "readout"])
    assert r.exit_code == 2 and "noisy:fake_manila" in r.output and "Traceback" not in r.output
    probs = train_digits_student_probs(tmp_path)
    r = CliRunner().invoke(cli, ["evaluate", str(probs), "--device", "ibm:fake_manila", "--mitigation", "zne"])
    assert r.exit_code == 2 and "Sampler, which has none" in r.output


def train_digits_student_probs(out):
    r = CliRunner().invoke(cli, ["train-student", "--dataset", "digits", "--classes", "0-3", "--per-class", "20",
                                 "--qubits", "3", "--epochs", "1", "--readout", "probs", "--quiet", "--out", str(out),
                                 "--name", "probs"])
    assert r.exit_code == 0, r.output
    return out / "probs"


def test_a_killed_zne_evaluation_resumes_with_every_images_per_factor_values_in_order(student, service):
    clean(student)
    args = ["evaluate", str(student), "--device", "ibm:ibm_hardware", "--limit", "30", "--batch-size", "10", "--yes",
            "--mitigation", "zne", "--extrapolator", "linear"]
    service.kill_on_wait = 2  # batch 1 finishes (its values kept with its logits), batch 2's job is out
    with pytest.raises(Killed):
        CliRunner().invoke(cli, args, catch_exceptions=False)
    service.kill_on_wait = None
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    assert "1 retrieved by id" in r.output
    report = json.loads((student / "evaluation-ibm-ibm_hardware-zne-linear.json").read_text())
    import numpy as np

    from qkd_pl.experiments.single.evaluate import refit_zne

    with np.load(student / report["zne"]["values"]) as z:
        assert z["values"].shape == (30, 3, 3)
    assert refit_zne(student / report["zne"]["values"], "linear") == pytest.approx(report["test_accuracy"], abs=1e-6)
    assert len(report["correct"]) == 30
