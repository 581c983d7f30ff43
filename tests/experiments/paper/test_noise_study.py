"""qkd reproduce noise --quick: students trained, evaluated exactly and on a fake backend's emulation
and on Aer, a report with paired intervals; a rerun evaluates nothing again."""

import json
import pytest
from pathlib import Path

from click.testing import CliRunner

from qkd_pl.cli import cli
from qkd_pl.experiments.single.per_image import paired, share_of_drop


def test_paired_drop_and_its_interval():
    c = paired("1111100000", "1110100001")  # one image lost, one gained: no drop
    assert c["mean"] == 0 and c["low"] < 0 < c["high"] and c["n"] == 10
    c = paired("1" * 100, "1" * 90 + "0" * 10)
    assert abs(c["mean"] - 0.1) < 1e-12 and 0.04 < c["low"] < 0.1 < c["high"] < 0.16
    assert paired("1" * 50, "1" * 20)["n"] == 20  # the images both have


def test_a_share_of_the_drop_only_where_the_drop_and_the_gain_are_significant():
    drop, gain = paired("1" * 100, "1" * 80 + "0" * 20), paired("1" * 90 + "0" * 10, "1" * 80 + "0" * 20)
    assert abs(share_of_drop(gain, drop) - 0.5) < 1e-12  # 10 of the 20 points back
    assert share_of_drop(paired("1" * 81 + "0" * 19, "1" * 80 + "0" * 20), drop) is None  # one image: no gain to speak of
    assert share_of_drop(gain, paired("1" * 100, "1" * 99 + "0")) is None  # one image lost: no drop to speak of
    assert share_of_drop(paired("1" * 70 + "0" * 30, "1" * 80 + "0" * 20), drop) < 0  # a significant loss says so


@pytest.mark.slow
def test_quick_noise_study_reports_drops_mitigation_and_finetuning_and_resumes(tmp_path):
    out = tmp_path / "noise"
    r = CliRunner().invoke(cli, ["reproduce", "noise", "--quick", "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    assert "circuit on" not in r.output  # --quiet: the evaluations' own lines stay in their files
    report = (out / "report.md").read_text()
    assert "fake_manila" in report and "Does distillation change robustness" in report
    assert "The emulation against Aer" in report and (out / "plots" / "drop_by_backend.png").exists()
    assert "## Error mitigation" in report and "## Noise-aware fine-tuning" in report
    assert "## Placed by calibration" in report
    results = json.loads((out / "noise_results.json").read_text())
    drops = results["drops"]
    assert len(drops) == 8 and {d["qubits"] for d in drops} == {2, 3} and {d["family"] for d in drops} == {
        "amplitude", "line"}
    for d in drops:
        assert d["drop"]["low"] <= d["drop"]["mean"] <= d["drop"]["high"] and d["n"] > 100
        assert abs(d["drop"]["mean"] - (d["exact_accuracy_same_images"] - d["noisy_accuracy"])) < 1e-9
        assert d["two_qubit_gates"] >= 1 and d["depth"] > 0
    # the line family's circuit is the shallower one, and both cost QPU time that mitigation multiplies
    circuits = {(c["family"], c["qubits"]): c for c in results["circuits"] if c["level"] == 1}
    assert circuits[("line", 3)]["two_qubit_gates"] < circuits[("amplitude", 3)]["two_qubit_gates"]
    # the line students also placed at level 2, their circuits costed there too, paired with level 1's images
    assert {(c["family"], c["qubits"]) for c in results["circuits"] if c["level"] == 2} == {("line", 2), ("line", 3)}
    placed = results["placed"]
    assert {(p["qubits"], p["role"], p["readout_accuracy"] is not None) for p in placed} == {
        (q, role, role == "distilled") for q in (2, 3) for role in ("baseline", "distilled")}
    for p in placed:
        assert p["family"] == "line" and p["level"] == 2 and 0 < p["fidelity"] <= 1
        assert abs(p["drop"]["mean"] - (p["exact_same_images"] - p["accuracy"])) < 1e-6
        assert abs(p["gain_over_level1"]["mean"] - (p["accuracy"] - p["level1_accuracy"])) < 1e-6
    for c in circuits.values():
        assert 0 < c["qpu_seconds_per_1000_none"] < c["qpu_seconds_per_1000_readout"] < c["qpu_seconds_per_1000_zne"]
    # every distilled student with each mitigation, paired with its raw row on the same images
    mitigated = results["mitigation"]
    assert {(m["family"], m["qubits"], m["mitigation"]) for m in mitigated} == {
        (f, q, m) for f in ("amplitude", "line") for q in (2, 3) for m in ("readout", "zne", "recal")}
    for m in mitigated:
        assert m["role"] == "distilled" and abs(m["gain"]["mean"] - (m["accuracy"] - m["raw_accuracy"])) < 1e-6  # float32 accuracies
    recal = json.loads(next(out.glob("evaluations/distilled-*/noisy-fake_manila-recal.json")).read_text())
    assert recal["recalibrate"] == 20 and recal["recalibrated"]["images"] == 20
    zne = json.loads(next(out.glob("evaluations/distilled-*/noisy-fake_manila-zne.json")).read_text())
    assert zne["mitigation"] == "zne" and zne["zne"]["factors"] == [1, 3, 5]
    finetuned = results["finetuned"]
    assert len(finetuned) == 4
    for f in finetuned:  # on 20 images per class, tested on the source's whole test split
        assert f["device"] == "noisy:fake_manila" and f["n"] == 144 and f["per_class"] == 20
        assert abs(f["gain"]["mean"] - (f["after"] - f["before"])) < 1e-9
        assert abs(f["gain_with_readout"]["mean"] - (f["after_readout"] - f["before"])) < 1e-6
    assert len(results["contrasts"]) == 4 and len(results["checks"]) == 8
    files = sorted(f for f in out.glob("evaluations/*/*.json") if not f.name.startswith("evaluation-"))
    # exact, emulation, Aer; per distilled student 3 mitigations, a fine-tuning; per line student level 2 (readout too)
    assert len(files) == 8 * 3 + 4 * 4 + 4 + 2
    assert len(list(out.glob("evaluations/*/noisy-fake_manila-readout-o2.json"))) == 2
    # qkd evaluate's own files of the mitigated evaluations stay in the study, not beside the runs
    assert len(list(out.glob("evaluations/*/evaluation-noisy-fake_manila-*.json"))) == 4 * 3 + 4 + 2
    assert len(list(out.glob("evaluations/*/evaluation-noisy-fake_manila-zne.npz"))) == 4
    assert not list(out.glob("runs/*/evaluation-*"))
    stamps = [f.stat().st_mtime_ns for f in files]
    r = CliRunner().invoke(cli, ["reproduce", "noise", "--quick", "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    assert [f.stat().st_mtime_ns for f in files] == stamps  # nothing evaluated twice
    # a result saved for other work (here: other images) is done again, and only it
    stale = out / "evaluations" / files[0].parent.name / "noisy-fake_manila.json"
    saved = json.loads(stale.read_text())
    saved["job"]["n"] = 7
    stale.write_text(json.dumps(saved))
    r = CliRunner().invoke(cli, ["reproduce", "noise", "--quick", "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    assert json.loads(stale.read_text())["job"]["n"] is None
    assert [f.stat().st_mtime_ns != s for f, s in zip(files, stamps)] == [f == stale for f in files]
    # a fine-tuning begun and saved for other settings (as if the study's epochs had changed since): its run is
    # begun anew, not resumed, and the others stay
    tuned = sorted(out.glob("evaluations/*/finetuned-fake_manila.json"))[0]
    marker = out / "finetuned" / (Path(json.loads(tuned.read_text())["run"]).name + ".job.json")
    for path, inner in ((tuned, "job"), (marker, None)):
        saved = json.loads(path.read_text())
        (saved[inner] if inner else saved)["epochs"] = 2
        path.write_text(json.dumps(saved))
    runs = sorted((out / "finetuned").glob("*/best.pt"))
    before = {p: p.stat().st_mtime_ns for p in runs}
    r = CliRunner().invoke(cli, ["reproduce", "noise", "--quick", "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    again = Path(json.loads(tuned.read_text())["run"]) / "best.pt"
    assert json.loads(tuned.read_text())["job"]["epochs"] == 1
    assert [p.stat().st_mtime_ns != before[p] for p in runs] == [p == again for p in runs]


def test_the_goal_is_met_only_within_five_points_and_above_ninety_percent_on_both_backends():
    from qkd_pl.experiments.paper.noise_report import _goal_section

    def bits(right: int, n: int = 100) -> dict:  # the first ``right`` of n images right
        return {"correct": "1" * right + "0" * (n - right), "accuracy": right / n}

    def exact(right_of_first_100: int) -> dict:  # the whole test split: its other 900 images wrong, so that a
        return bits(right_of_first_100, 1000)    # comparison with the whole split's accuracy would fail

    student = {"dataset": "mnist", "qubits": 8, "family": "line", "role": "distilled"}
    info = {"r": student, "s": student}
    results = {("r", "exact", "exact"): exact(92), ("s", "exact", "exact"): exact(99),
               ("r", "noisy:fake_brisbane", "raw"): bits(88), ("r", "noisy:fake_torino", "raw"): bits(91),
               ("r", "noisy:fake_brisbane", "raw-o2"): bits(91), ("r", "noisy:fake_torino", "raw-o2"): bits(93),
               ("r", "noisy:fake_brisbane", "readout"): bits(90), ("r", "noisy:fake_torino", "readout"): bits(92),
               ("r", "noisy:fake_brisbane", "zne"): bits(92),  # not run on torino: no row
               ("s", "noisy:fake_brisbane", "raw"): bits(94), ("s", "noisy:fake_torino", "raw"): bits(93)}
    lines = []
    rows = {(r["run"], r["what"]): r for r in _goal_section(lines, ["r", "s"], info, results,
                                                             ("fake_brisbane", "fake_torino"))}
    assert set(rows) == {("r", "raw"), ("r", "raw-o2"), ("r", "readout"), ("s", "raw")}
    met = {k: [c["met"] for c in r["backends"]] for k, r in rows.items()}
    assert met[("r", "raw")] == [False, True]  # 4 points lost, but 88 %
    assert met[("r", "readout")] == [False, True]  # exactly 90 % is not above 90 %
    assert met[("s", "raw")] == [True, False]  # exactly 5 points lost is within 5; 6 are not
    assert [k for k, r in rows.items() if r["met"]] == [("r", "raw-o2")]
    assert "| raw-o2 | 91.00 % (+1.00, n 100) | 93.00 % (-1.00, n 100) | yes |" in "\n".join(lines)
    assert _goal_section([], ["r"], {"r": {**student, "qubits": 4}}, results, ("fake_brisbane", "fake_torino")) == []
    assert _goal_section([], ["r"], info, results, ("fake_brisbane",)) == []  # the goal needs both backends


def test_the_plan_fine_tunes_on_every_backend_and_places_only_the_line_students_at_level_two(tmp_path):
    from qkd_pl.experiments.paper.noise_study import BACKENDS, FinetuneJob, plan

    rows = [{"role": role, "qubits": 8, "family": fam, "run_dir": f"runs/{role}-{fam}"}
            for role in ("baseline", "distilled") for fam in ("amplitude", "line")]
    jobs = plan(rows, tmp_path)
    tuned = [j for j in jobs if isinstance(j, FinetuneJob)]
    assert sorted((j.run.rpartition("/")[2], j.backend) for j in tuned) == [
        ("distilled-line", b) for b in sorted(BACKENDS)]  # an 8-qubit amplitude student is not fine-tuned
    assert len({j.out for j in tuned}) == len({j.name for j in tuned}) == 3
    placed = [(j.run.rpartition("/")[2], j.mitigation) for j in jobs if getattr(j, "level", None) == 2]
    assert sorted(placed) == sorted([("baseline-line", "none")] * 3 + [("distilled-line", m) for m in
                                                                        ("none", "readout") for _ in BACKENDS])
    assert len({j.out for j in jobs}) == len(jobs)  # no two jobs write one file
