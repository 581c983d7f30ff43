"""qkd report: means and spreads over seeds, paired gains with their interval, the report files."""

import json
import math

import pytest
from scipy import stats

from qkd_pl.errors import QkdError
from qkd_pl.experiments.sweeps.report import overall_gains, paired_gain, summarize, write_report


def row(teacher, seed, acc, control=False, role=None):
    return {"role": role or ("baseline" if teacher == "none" else "distilled"), "dataset": "digits", "classes": "0-3",
            "qubits": 2, "student": "v2", "reducer": "fc", "encoding": "amplitude", "ansatz": "strong",
            "control": control, "teacher": teacher, "seed": seed, "test_accuracy": acc, "params_classical": 100,
            "params_quantum": 0 if control else 12, "params_control": 12 if control else 0, "run_dir": "/nowhere"}


ROWS = [row("none", 0, 0.80), row("none", 1, 0.70), row("none", 2, 0.75),
        row("lenet5", 0, 0.85), row("lenet5", 1, 0.80), row("lenet5", 2, 0.74),
        row("none", 0, 0.60, control=True), row("none", 1, 0.65, control=True), row("none", 2, 0.50, control=True)]


def test_paired_gain_is_the_mean_difference_with_a_t_interval():
    g = paired_gain({0: 0.85, 1: 0.80, 2: 0.74}, {0: 0.80, 1: 0.70, 2: 0.75})
    d = [0.05, 0.10, -0.01]
    sd = math.sqrt(sum((x - sum(d) / 3) ** 2 for x in d) / 2)
    half = stats.t.ppf(0.975, 2) * sd / math.sqrt(3)
    assert g["n"] == 3 and g["mean"] == pytest.approx(sum(d) / 3)
    assert (g["low"], g["high"]) == pytest.approx((sum(d) / 3 - half, sum(d) / 3 + half))
    assert paired_gain({0: 0.9}, {1: 0.8}) is None
    assert math.isnan(paired_gain({0: 0.9}, {0: 0.8})["low"])


def test_summary_pairs_distilled_with_baseline_and_quantum_with_its_control():
    configs = {(c["teacher"], c["control"]): c for c in summarize(ROWS)["configs"]}
    base, kd, ctrl = configs[("none", False)], configs[("lenet5", False)], configs[("none", True)]
    assert base["mean"] == pytest.approx(0.75) and base["std"] == pytest.approx(0.05) and base["n"] == 3
    assert kd["gain"]["mean"] == pytest.approx((0.05 + 0.10 - 0.01) / 3)
    assert ctrl["quantum_over_control"]["mean"] == pytest.approx((0.20 + 0.05 + 0.25) / 3)
    assert "gain" not in base and ctrl["parameters"]["control"] == 12


def test_the_report_has_tables_plots_and_published_rows(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(ROWS + [
        {"role": "teacher", "dataset": "digits", "classes": "0-3", "teacher": "lenet5", "test_accuracy": 0.9,
         "params_classical": 44000}]))
    published = [{"label": "paper's FC", "accuracy": 70.0,
                  "match": {"dataset": "digits", "qubits": 2, "teacher": "lenet5", "control": False}}]
    path = write_report(tmp_path, "T", published, ["a note"])
    text = path.read_text()
    assert text.startswith("# T") and "a note" in text and "| digits | 0-3 | lenet5 | 90.00 | 44,000 |" in text
    assert "| 75.00 +- 5.00 | 3 |" in text and "+4.67 [" in text and "(control: 12 classical)" in text
    assert "| paper's FC | lenet5 | 70.00 | 79.67 +- 5.51 | +9.67 |" in text
    # distilled - baseline: +4.67, its interval includes 0; quantum - control: +16.67, [-15.6, +48.9] includes 0
    assert "| digits | distilled - baseline | 1 | +4.67 | 0 | 0 | 1 |" in text
    assert "| digits | quantum - classical control | 1 | +16.67 | 0 | 0 | 1 |" in text
    for name in ("error_by_method", "baseline_vs_distilled"):
        assert (tmp_path / "plots" / f"{name}.png").stat().st_size > 5000 and f"plots/{name}.png" in text


def test_a_folder_without_results_is_refused(tmp_path):
    with pytest.raises(QkdError, match="results.json not found"):
        write_report(tmp_path)


def test_overall_gains_count_intervals_above_below_and_across_zero():
    def cfg(ds, low, high, teacher="lenet5"):
        return {"dataset": ds, "teacher": teacher, "gain": {"mean": (low + high) / 2, "low": low, "high": high, "n": 3}}

    rows = overall_gains([cfg("a", 0.01, 0.03), cfg("a", -0.05, -0.01), cfg("a", -0.01, 0.01), cfg("b", 0.0, 0.2),
                          cfg("a", 0.1, 0.3, teacher="ceiling")])  # the ceiling control is summed up apart
    assert rows[-1] == {"dataset": "a", "comparison": "ceiling - baseline", "n": 1, "mean": pytest.approx(20.0),
                        "above": 1, "below": 0, "includes": 0}
    assert rows[:-1] == [
        {"dataset": "a", "comparison": "distilled - baseline", "n": 3, "mean": pytest.approx(-1 / 3),
         "above": 1, "below": 1, "includes": 1},
        {"dataset": "b", "comparison": "distilled - baseline", "n": 1, "mean": pytest.approx(10.0),
         "above": 0, "below": 0, "includes": 1}]


def test_another_grids_table_is_reported_beside_a_folders_own(tmp_path):
    import csv
    import json

    from qkd_pl.experiments.sweeps.report import write_report

    rows = [row("none", s, 0.7 + s / 100) | {"id": f"b{s}"} for s in range(2)]
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "results.json").write_text(json.dumps(rows))
    other = [row("none", s, 0.5) | {"id": f"o{s}", "dataset": "fashion-mnist"} for s in range(2)]
    with (tmp_path / "other.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(other[0]))
        writer.writeheader()
        writer.writerows(other)
    text = write_report(tmp_path / "g", also=[tmp_path / "other.csv"]).read_text()
    assert "| fashion-mnist | 0-3 | 2 | fc+amplitude+strong | none | 50.00" in text
    assert "| digits | 0-3 | 2 | fc+amplitude+strong | none | 70.50" in text
    with pytest.raises(QkdError, match="run b0 is also in"):
        write_report(tmp_path / "g", also=[tmp_path / "g" / "results.json"])


def test_settings_are_tabled_and_mapped_per_regime_with_controls_kept_apart(tmp_path):
    """A setting's gain is shown per regime; the control's regime is not the quantum student's
    (no cell overwrites another), a width control is paired with its quantum student, and labels
    name only what varies."""
    def r(teacher, seed, acc, alpha="-", control=False, match="parameters"):
        return {**row(teacher, seed, acc, control), "distill.alpha": alpha, "student.control_match": match,
                "data.per_class": 30}

    rows = []
    for seed, (b, k, c, ck, w) in enumerate([(0.70, 0.75, 0.50, 0.52, 0.40), (0.72, 0.78, 0.55, 0.50, 0.45),
                                             (0.74, 0.80, 0.52, 0.56, 0.42)]):
        rows += [r("none", seed, b), r("lenet5", seed, k, alpha=0.5), r("none", seed, c, control=True),
                 r("lenet5", seed, ck, alpha=0.5, control=True), r("none", seed, w, control=True, match="width")]
    (tmp_path / "results.json").write_text(json.dumps(rows))
    configs = summarize(rows)["configs"]
    width = next(c for c in configs if c["student.control_match"] == "width")
    assert width["quantum_over_control"]["mean"] == pytest.approx((0.30 + 0.27 + 0.32) / 3)
    text = write_report(tmp_path).read_text().split("## Distillation settings against the baseline")[1]
    header = next(line for line in text.splitlines() if line.startswith("| teacher"))
    assert header == "| teacher, alpha | digits qubits=2, control=False | digits qubits=2, control=True |"
    gains = next(line for line in text.splitlines() if line.startswith("| lenet5, 0.5"))
    assert "**+5.67" in gains and "| +0.33" in gains  # 5, 6, 6 points (interval above 0); 2, -5, 4
    assert (tmp_path / "plots" / "gain_by_setting.png").stat().st_size > 0
