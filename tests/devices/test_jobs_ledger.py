"""open_ledger: a ledger is found by what the work is, other work beside it is refused naming the
field (or replaced, where its jobs ran locally), and --new-evaluation numbers a second one."""

import pytest

from qkd_pl.devices.jobs import JobRecord, open_ledger, read_ledger
from qkd_pl.errors import QkdError

WORK = {"sha256": "c" * 64, "device": "ibm:ibm_x", "shots": 1024, "noise": None, "images": "d" * 64,
        "source": None, "backend": "ibm_x"}


def begun(tmp_path, batch=100, **changes):
    ledger = open_ledger(tmp_path / "evaluation-x", {**WORK, **changes}, batch, 1000)
    ledger.add(JobRecord("images 0-100/s/estimator/1024/1of1", "job-1", "ibm_x", "estimator", 100, 1024, "now"))
    return ledger


def test_the_same_work_finds_its_ledger_and_its_batch_size(tmp_path):
    first = begun(tmp_path)
    again = open_ledger(tmp_path / "evaluation-x", dict(WORK), None, 1000)
    assert again.path == first.path and again.batch_size == 100 and again.find(first.records[0].key)


@pytest.mark.parametrize("field,value", [("images", "e" * 64), ("source", {"kind": "declared copy"}),
                                         ("sha256", "f" * 64), ("backend", "ibm_y")])
def test_other_images_data_checkpoint_or_backend_are_refused_naming_the_field(tmp_path, field, value):
    begun(tmp_path)
    with pytest.raises(QkdError, match=f"{field}: .* then, .* now") as refused:
        open_ledger(tmp_path / "evaluation-x", {**WORK, field: value}, None, 1000)
    assert "--new-evaluation" in str(refused.value) and "\n" not in str(refused.value)
    assert len(read_ledger(tmp_path / "evaluation-x.jobs.json")[1]) == 1  # untouched


def test_new_evaluation_numbers_a_ledger_beside_and_each_is_found_again(tmp_path):
    begun(tmp_path)
    second = open_ledger(tmp_path / "evaluation-x", {**WORK, "shots": 2000}, None, 1000, new_evaluation=True)
    assert second.path.name == "evaluation-x.2.jobs.json" and second.batch_size == 1000
    second.add(JobRecord("k", "job-2", "ibm_x", "estimator", 1, 2000, "now"))
    assert open_ledger(tmp_path / "evaluation-x", {**WORK, "shots": 2000}, None, 1000).path == second.path
    assert open_ledger(tmp_path / "evaluation-x", dict(WORK), None, 1000).path.name == "evaluation-x.jobs.json"


def test_a_ledger_of_local_jobs_is_replaced_not_refused(tmp_path):
    begun(tmp_path)
    ledger = open_ledger(tmp_path / "evaluation-x", {**WORK, "shots": 2000}, None, 1000, local=True)
    assert ledger.path.name == "evaluation-x.jobs.json" and ledger.records == [] and ledger.batch_size == 1000


def test_a_damaged_ledger_is_refused_in_one_line(tmp_path):
    (tmp_path / "evaluation-x.jobs.json").write_text("{not json")
    with pytest.raises(QkdError, match="not a readable job ledger"):
        open_ledger(tmp_path / "evaluation-x", dict(WORK), None, 1000)


def test_a_ledger_of_the_previous_format_is_found_by_an_upgraded_qkd_pl(tmp_path):
    """Written by qkd-pl before contexts named the work: the checkpoint's path, no batch size. Its
    jobs were paid for; the same work after an upgrade retrieves them, at the batch size its keys name."""
    import json

    old = {"checkpoint": "runs/s/best.pt", "sha256": WORK["sha256"], "device": WORK["device"], "shots": 1024,
           "noise": None, "per_circuit": False}
    job = {"key": "images 0-250/abc/estimator/1024/1of1", "job_id": "job-1", "backend": "ibm_x",
           "primitive": "estimator", "rows": 250, "shots": 1024, "submitted_at": "now", "status": "submitted",
           "retrievable": True}
    (tmp_path / "evaluation-x.jobs.json").write_text(json.dumps({"context": old, "jobs": [job]}))
    ledger = open_ledger(tmp_path / "evaluation-x", {**WORK, "per_circuit": False}, None, 1000)
    assert ledger.path.name == "evaluation-x.jobs.json" and ledger.batch_size == 250
    assert ledger.find(job["key"]).job_id == "job-1"
    with pytest.raises(QkdError, match="shots"):  # other work is still refused
        open_ledger(tmp_path / "evaluation-x", {**WORK, "per_circuit": False, "shots": 2000}, None, 1000)
