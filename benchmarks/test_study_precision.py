"""benchmarks/study_precision.py: its comparison is the committed one, and its run trains the
study's students on the device it is given."""

import csv
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import study_precision  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs/performance"


@pytest.mark.smoke
def test_the_committed_comparison_is_what_the_script_prints_from_the_committed_studies():
    report = study_precision.compare(str(RESULTS / "kd-study-full-2026-12-04/kd-study.csv"),
                                     str(RESULTS / "kd-study-fused32-2026-12-04/kd-study.csv"))
    assert report == (RESULTS / "kd-study-fused32-2026-12-04/compare.txt").read_text()


@pytest.mark.smoke
def test_the_quick_study_runs_every_student_on_the_device_given(tmp_path, monkeypatch):
    from qkd_pl.experiments.paper import reproduce

    monkeypatch.setitem(reproduce.SPECS, "kd-study", reproduce.SPECS["kd-study"])  # run() replaces it: put it back
    monkeypatch.setenv("QKD_CACHE_DIR", str(tmp_path / "cache"))  # its teachers' logits: not in the user's cache
    study_precision.main(["run", "--device", "qkd.fused32", "--out", str(tmp_path / "s"), "--workers", "1", "--quick"])
    rows = list(csv.DictReader(open(tmp_path / "s/results.csv")))
    students = [r for r in rows if r["role"] != "teacher"]
    assert students and {r["device"] for r in students} == {"qkd.fused32"}
    stacked = [json.loads((tmp_path / "s" / r["run_dir"] / "test_metrics.json").read_text())["stacked_with"]
               for r in students]
    assert max(stacked) > 1  # students of one shape stacked, as on qkd.fused
    report = study_precision.compare(str(tmp_path / "s/results.csv"), str(tmp_path / "s/results.csv"))
    assert f"{len(students)} students, {len(students)} with the same test accuracy, 0 up, 0 down" in report
