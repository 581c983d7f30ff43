"""qkd reproduce noise --quick: students trained, evaluated exactly and on a fake backend's emulation
and on Aer, a report with paired intervals; a rerun evaluates nothing again."""

import json

from click.testing import CliRunner

from qkd_pl.cli import cli
from qkd_pl.experiments.single.per_image import paired


def test_paired_drop_and_its_interval():
    c = paired("1111100000", "1110100001")  # one image lost, one gained: no drop
    assert c["mean"] == 0 and c["low"] < 0 < c["high"] and c["n"] == 10
    c = paired("1" * 100, "1" * 90 + "0" * 10)
    assert abs(c["mean"] - 0.1) < 1e-12 and 0.04 < c["low"] < 0.1 < c["high"] < 0.16
    assert paired("1" * 50, "1" * 20)["n"] == 20  # the images both have


def test_quick_noise_study_reports_drops_and_resumes(tmp_path):
    out = tmp_path / "noise"
    r = CliRunner().invoke(cli, ["reproduce", "noise", "--quick", "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    report = (out / "report.md").read_text()
    assert "fake_manila" in report and "Does distillation change robustness" in report
    assert "The emulation against Aer" in report and (out / "plots" / "drop_by_backend.png").exists()
    results = json.loads((out / "noise_results.json").read_text())
    assert len(results["drops"]) == 4 and {d["qubits"] for d in results["drops"]} == {2, 3}
    for d in results["drops"]:
        assert d["drop"]["low"] <= d["drop"]["mean"] <= d["drop"]["high"] and d["n"] > 100
        assert abs(d["drop"]["mean"] - (d["exact_accuracy_same_images"] - d["noisy_accuracy"])) < 1e-9
        assert d["two_qubit_gates"] >= 1 and d["depth"] > 0
    assert len(results["contrasts"]) == 2 and len(results["checks"]) == 4
    files = sorted(out.glob("evaluations/*/*.json"))
    assert len(files) == 4 * 3  # exact, the emulation and Aer per student
    stamps = [f.stat().st_mtime_ns for f in files]
    r = CliRunner().invoke(cli, ["reproduce", "noise", "--quick", "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    assert [f.stat().st_mtime_ns for f in files] == stamps  # nothing evaluated twice
