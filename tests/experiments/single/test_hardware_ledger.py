"""A paid job is never submitted twice, whatever the spelling of the run's path, the working
folder or the options of the rerun; a ledger of other work is refused, never set aside; a job
the service no longer knows is marked lost and resubmitted only on request. Against the fake
IBM Quantum service of test_hardware_jobs (no network)."""

import json

import pytest
from click.testing import CliRunner

import qiskit_ibm_runtime
from qkd_pl.cli import cli
from test_hardware_jobs import ARGS, FakeService, Killed, clean, service, student  # noqa: F401 - fixtures

LEDGER = "evaluation-ibm-ibm_hardware.jobs.json"


def evaluate(run, *args, catch=True):
    return CliRunner().invoke(cli, ["evaluate", str(run), *args], catch_exceptions=catch)


def killed_after_first_submission(run, service: FakeService, *args):
    """Batch 1's job is submitted and recorded, then the process dies waiting on it."""
    service.kill_on_wait = 1
    with pytest.raises(Killed):
        evaluate(run, *(args or ARGS), catch=False)
    service.kill_on_wait = None
    assert service.submitted == ["job-1"]


def one_line_refusal(r) -> str:
    assert r.exit_code == 2, r.output
    assert "\n" not in r.stderr.strip() and "Traceback" not in r.output + r.stderr
    return r.stderr


def test_the_ledger_names_the_work_not_the_path(student, service):
    clean(student)
    killed_after_first_submission(student, service)
    context = json.loads((student / LEDGER).read_text())["context"]
    assert str(student) not in json.dumps(context) and "checkpoint" not in context
    assert context["batch_size"] == 20 and len(context["sha256"]) == len(context["images"]) == 64
    assert context["backend"] == "fake_manila"  # the backend the service resolved
    assert context["shots"] == 1024 and context["data"] == "digits"


@pytest.mark.slow
@pytest.mark.parametrize("spelling", ["absolute", "from-another-folder", "relative-with-dots"])
def test_a_rerun_spelled_otherwise_retrieves_the_job_it_paid_for(student, service, monkeypatch, tmp_path, spelling):
    clean(student)
    monkeypatch.chdir(student.parent)
    killed_after_first_submission(student.name, service)  # as typed: a relative folder name
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if spelling == "absolute":
        run = student.resolve()
    elif spelling == "from-another-folder":
        monkeypatch.chdir(elsewhere)
        run = student.resolve()
    else:
        monkeypatch.chdir(student)
        run = f"../{student.name}/."
    r = evaluate(run, *ARGS)
    assert r.exit_code == 0, r.output
    assert service.submitted == ["job-1", "job-2", "job-3"]  # job-1 retrieved by id, never submitted again
    assert "2 job(s) submitted, 1 retrieved by id" in r.output
    assert not list(student.glob("evaluation-*.other-*"))  # nothing set aside


def test_another_batch_size_is_refused_after_a_kill_on_batch_one_and_the_ledger_s_is_kept(student, service):
    clean(student)
    killed_after_first_submission(student, service)
    other = [a if a != "20" else "30" for a in ARGS]
    err = one_line_refusal(evaluate(student, *other))
    assert "batch_size: 20 then, 30 now" in err and "rerun as it was" in err and "--new-evaluation" in err
    assert service.submitted == ["job-1"]
    # without --batch-size, the rerun takes the ledger's and retrieves batch 1's job
    r = evaluate(student, *[a for a in ARGS if a not in ("--batch-size", "20")])
    assert r.exit_code == 0, r.output
    assert service.submitted == ["job-1", "job-2", "job-3"] and "1 retrieved by id" in r.output


def test_new_evaluation_begins_a_second_ledger_beside_the_first(student, service):
    clean(student)
    killed_after_first_submission(student, service)
    other = [a if a != "20" else "30" for a in ARGS]
    r = evaluate(student, *other, "--new-evaluation")
    assert r.exit_code == 0, r.output
    assert service.submitted == ["job-1", "job-2", "job-3"]  # 60 images in two new jobs of 30
    second = json.loads((student / "evaluation-ibm-ibm_hardware.2.jobs.json").read_text())
    assert second["context"]["batch_size"] == 30 and [j["job_id"] for j in second["jobs"]] == ["job-2", "job-3"]
    assert json.loads((student / LEDGER).read_text())["jobs"][0]["job_id"] == "job-1"  # the first kept as it was
    r = evaluate(student, *other)  # the second evaluation's rerun finds its own ledger without the flag
    assert r.exit_code == 0, r.output
    assert service.submitted == ["job-1", "job-2", "job-3"]
    assert "0 job(s) submitted, 2 retrieved by id" in r.output


def test_other_shots_are_refused_naming_the_field(student, service):
    clean(student)
    killed_after_first_submission(student, service)
    err = one_line_refusal(evaluate(student, *ARGS, "--shots", "4000"))
    assert "shots: 1024 then, 4000 now" in err and service.submitted == ["job-1"]


@pytest.mark.slow
def test_a_lost_job_is_marked_reported_and_resubmitted_only_on_request(student, service, monkeypatch):
    clean(student)
    killed_after_first_submission(student, service)
    asked = []

    def job(job_id):
        asked.append(job_id)
        raise qiskit_ibm_runtime.exceptions.RuntimeJobNotFound(f"Job not found: {job_id}")

    monkeypatch.setattr(service, "job", job)
    err = one_line_refusal(evaluate(student, *ARGS))
    assert "job-1" in err and "lost" in err and "--resubmit-lost" in err
    assert service.submitted == ["job-1"]
    assert [j["status"] for j in json.loads((student / LEDGER).read_text())["jobs"]] == ["lost"]
    err = one_line_refusal(evaluate(student, *ARGS))  # every rerun says so, without paying
    assert "lost" in err and service.submitted == ["job-1"] and asked == ["job-1"]  # not asked about again
    r = evaluate(student, *ARGS, "--resubmit-lost")
    assert r.exit_code == 0, r.output
    assert service.submitted == ["job-1", "job-2", "job-3", "job-4"]
    statuses = [(j["job_id"], j["status"]) for j in json.loads((student / LEDGER).read_text())["jobs"]]
    assert statuses == [("job-1", "lost"), ("job-2", "done"), ("job-3", "done"), ("job-4", "done")]


def test_the_plan_counts_the_jobs_it_retrieves_by_key(student, service):
    clean(student)
    service.kill_on_wait = 2  # batch 1 done, batch 2 submitted and recorded
    with pytest.raises(Killed):
        evaluate(student, *ARGS, catch=False)
    service.kill_on_wait = None
    # --limit 20: batch 2's job is in the ledger but not in this evaluation: nothing to submit, nothing to ask
    short = [a if a != "60" else "20" for a in ARGS[:-1]]
    r = evaluate(student, *short)
    assert r.exit_code == 0, r.output + r.stderr
    assert "plan:" not in r.output and service.submitted == ["job-1", "job-2"]
    for p in student.glob("*.partial.json"):  # the short run finished: its partial results are gone anyway
        p.unlink()
    r = evaluate(student, *ARGS)  # 60 images: batch 1 and 2 retrieved, batch 3 submitted
    assert r.exit_code == 0, r.output
    assert "plan: fake_manila: 1 estimator job(s)" in r.output and "2 job(s) submitted before are retrieved" in r.output
    assert "20 circuit executions" in r.output and service.submitted == ["job-1", "job-2", "job-3"]


@pytest.mark.parametrize("damaged", ["jobs", "partial"])
def test_a_damaged_ledger_or_partial_file_is_refused_in_one_line(student, service, damaged):
    clean(student)
    service.kill_on_wait = 2
    with pytest.raises(Killed):
        evaluate(student, *ARGS, catch=False)
    service.kill_on_wait = None
    path = student / f"evaluation-ibm-ibm_hardware.{damaged}.json"
    path.write_text('{"context": {"sha256": "ab')
    err = one_line_refusal(evaluate(student, *ARGS))
    assert str(path) in err and "JSONDecodeError" in err
    assert path.read_text() == '{"context": {"sha256": "ab'  # never overwritten: it may be the only record
    assert service.submitted == ["job-1", "job-2"]


def test_a_dropped_connection_while_waiting_retrieves_the_job_instead_of_paying_again(student, service, monkeypatch):
    from qkd_pl.devices import retry

    monkeypatch.setattr(retry, "BASE_DELAY_S", 0.0)
    clean(student)
    service.hiccup.add("job-1")
    r = evaluate(student, *ARGS)
    assert r.exit_code == 0, r.output
    assert "retry 1/3" in r.output and service.submitted == ["job-1", "job-2", "job-3"]  # job-1 fetched again
    assert [j["status"] for j in json.loads((student / LEDGER).read_text())["jobs"]] == ["done"] * 3


@pytest.mark.slow
def test_a_job_that_fails_after_a_plan_with_nothing_to_submit_is_asked_for(student, service):
    """Every planned job was in the ledger, so nothing was asked; one of them then fails on the
    device: submitting its images again is paid, and without --yes and a terminal it is refused."""
    clean(student)
    service.kill_on_wait = 1
    with pytest.raises(Killed):
        evaluate(student, *ARGS, catch=False)
    service.kill_on_wait = None
    service.fail.add("job-1")
    r = evaluate(student, *[a if a != "60" else "20" for a in ARGS[:-1]])  # --limit 20: only job-1's images
    err = one_line_refusal(r)
    assert "plan: fake_manila: 1 estimator job(s)" in r.output and "--yes" in err
    assert service.submitted == ["job-1"]


def test_an_unwritable_run_folder_stops_before_anything_is_paid(student, service, monkeypatch):
    from qkd_pl.devices import jobs

    clean(student)

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(jobs, "atomic_write_json", full)
    err = one_line_refusal(evaluate(student, *ARGS))
    assert "cannot write the job ledger" in err and "nothing was submitted" in err
    assert service.submitted == []


def test_rerunning_with_new_evaluation_continues_the_same_work_instead_of_paying_again(student, service):
    clean(student)
    service.kill_on_wait = 2
    with pytest.raises(Killed):
        evaluate(student, *ARGS, "--new-evaluation", catch=False)
    service.kill_on_wait = None
    r = evaluate(student, *ARGS, "--new-evaluation")
    assert r.exit_code == 0, r.output
    assert service.submitted == ["job-1", "job-2", "job-3"] and not list(student.glob("*.2.jobs.json"))


def test_least_busy_names_the_backend_it_resolved_to_and_ibm_name_continues_it(student, service, monkeypatch):
    monkeypatch.setattr(service.hw, "name", "ibm_hardware")  # what least_busy picks this time
    clean(student)
    busy = [a if a != "ibm:ibm_hardware" else "ibm:least_busy" for a in ARGS]
    killed_after_first_submission(student, service, *busy)
    assert json.loads((student / LEDGER).read_text())["context"]["device"] == "ibm:ibm_hardware"
    r = evaluate(student, *ARGS)  # --device ibm:ibm_hardware: the same work
    assert r.exit_code == 0, r.output
    assert service.submitted == ["job-1", "job-2", "job-3"] and "1 retrieved by id" in r.output


def test_least_busy_picking_another_backend_does_not_pay_again_for_unfinished_jobs(student, service, monkeypatch):
    monkeypatch.setattr(service.hw, "name", "ibm_hardware")
    clean(student)
    busy = [a if a != "ibm:ibm_hardware" else "ibm:least_busy" for a in ARGS]
    killed_after_first_submission(student, service, *busy)
    monkeypatch.setattr(service.hw, "name", "ibm_other")  # least busy is another machine now
    err = one_line_refusal(evaluate(student, *busy))
    assert "unfinished jobs" in err and "--device ibm:ibm_hardware" in err and "--new-evaluation" in err
    assert service.submitted == ["job-1"]


def test_a_failed_job_beyond_the_approved_plan_is_asked_for_again(student, service, monkeypatch):
    """The plan approved three jobs; one fails on the device and its retry would be a fourth."""
    from qkd_pl.experiments import evaluate_run
    from qkd_pl.devices import retry

    monkeypatch.setattr(retry, "BASE_DELAY_S", 0.0)
    clean(student)
    service.fail_next = 1
    questions = []
    report = evaluate_run(student, "ibm:ibm_hardware", limit=60, batch_size=20,
                          ask=lambda q: questions.append(q) or True)
    assert report.jobs_submitted == 4 == len(service.submitted) and len(questions) == 2
