"""Grids with both transfer-pool protocols and the ceiling: which teacher each cell gets, which
cells exist, and what the report makes of them."""

from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from qkd_pl.config import DataConfig, DistillConfig, StudentConfig
from qkd_pl.errors import QkdError
from qkd_pl.experiments.sweeps.grid import CEILING, GridSpec, expand, load_spec
from qkd_pl.experiments.sweeps.grid import validate as validate_grid
from qkd_pl.experiments.sweeps.report import recovered_fraction, summarize

SETTINGS = {"kd": {"distill.alpha": 0.5}, "kd+40": {"distill.transfer": "40"},
            "pseudo+40": {"distill.transfer": "40", "distill.transfer_labels": "hard"}}


def spec(**kw) -> GridSpec:
    base = dict(datasets=["digits"], seeds=[0, 1], student=StudentConfig(qubits=2), teachers=["none", "lenet5", CEILING],
                teacher_data="all", teacher_pool=["seen", "unseen"],
                bundles={"regime": {"few": {"data.per_class": 20}, "more": {"data.per_class": 30}}, "setting": SETTINGS})
    return validate_grid(GridSpec(**{**base, **kw}))


def by_role(cells):
    out = {}
    for c in cells:
        out.setdefault(c.fields["role"], []).append(c)
    return out


def test_an_unseen_pool_gets_a_teacher_trained_without_exactly_that_pool():
    cells = {c.id: c for c in expand(spec(), Path("g"))}
    teachers = {c.id: c.config.data.without_pool for c in cells.values() if c.config.kind == "teacher"}
    assert teachers == {"teacher-digits-all-lenet5": None, "teacher-digits-all-lenet5-without-20-40": "20:40",
                        "teacher-digits-all-lenet5-without-30-40": "30:40"}
    for c in cells.values():
        if c.fields["role"] != "distilled":
            continue
        teacher = Path(c.config.distill.teacher).name
        if c.config.distill.transfer == "none":  # no pool: one cell, the teacher that saw everything
            assert c.fields["pool"] == "-" and teacher == "teacher-digits-all-lenet5"
        elif c.fields["pool"] == "unseen":
            assert teacher == f"teacher-digits-all-lenet5-without-{c.config.data.per_class}-40"
        else:
            assert c.fields["pool"] == "seen" and teacher == "teacher-digits-all-lenet5"


def test_one_ceiling_per_pool_regime_and_seed_with_true_labels_and_no_teacher():
    roles = by_role(expand(spec(), Path("g")))
    assert len(roles["ceiling"]) == 2 * 2  # regimes x seeds; soft and pseudo share it
    for c in roles["ceiling"]:
        assert c.config.distill.teacher is None and c.config.distill.transfer == "40"
        assert c.config.distill.transfer_labels == "true" and c.fields["setting"] == "-"
    assert len(roles["distilled"]) == 2 * 2 * (1 + 2 * 2)  # regimes x seeds x (kd + 2 settings x 2 pools)


def test_a_ceiling_without_a_distilled_twin_is_not_run():
    cells = expand(spec(include=[{"setting": "kd"}]), Path("g"))
    assert "ceiling" not in by_role(cells) and all("without" not in c.id for c in cells)


def test_cells_of_the_seen_protocol_keep_the_ids_they_had_before_pools():
    before = {c.id for c in expand(spec(teachers=["none", "lenet5"], teacher_pool=["seen"]), Path("g"))}
    after = {c.id for c in expand(spec(), Path("g"))}
    assert before < after
    assert all("unseen-pool" in i or i.startswith(("ceiling-", "teacher-digits-all-lenet5-without")) for i in after - before)


def test_a_teacher_trained_elsewhere_has_no_unseen_cells(tmp_path):
    run = tmp_path / "strong"
    run.mkdir()
    (run / "best.pt").write_bytes(b"")
    cells = expand(spec(teachers=["none", "strong", CEILING], teacher_runs={"digits": {"strong": str(run)}}), Path("g"))
    assert not [c for c in cells if c.fields.get("pool") == "unseen"]


@pytest.mark.parametrize("kw,needle", [
    ({"teacher_pool": ["never"]}, "teacher.pool"),
    ({"teacher_pool": []}, "teacher.pool"),
    ({"teacher_data": "same", "bundles": {"setting": SETTINGS}}, "needs \\[teacher\\] data = \"all\""),
])
def test_bad_pool_settings_are_refused(kw, needle):
    with pytest.raises(QkdError, match=needle):
        spec(**kw)


def test_the_toml_pool_key(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text('seeds = [0]\n[data]\ndatasets = ["digits"]\nper_class = 20\n[student]\nqubits = [2]\n'
                    '[teacher]\narch = ["none", "lenet5", "ceiling"]\ndata = "all"\npool = ["seen", "unseen"]\n'
                    '[sweep]\n"distill.transfer" = ["40"]\n')
    cells = expand(load_spec(path), Path("g"))
    assert {c.fields["role"] for c in cells} == {"teacher", "baseline", "distilled", "ceiling"}
    path.write_text(path.read_text().replace('pool = ["seen", "unseen"]', 'pool = "unseen"'))
    with pytest.raises(QkdError, match="teacher.pool"):
        load_spec(path)


def half_of(ceiling, base):
    return {s: base[s] + (ceiling[s] - base[s]) / 2 for s in base}


def test_the_fraction_recovered_is_the_ratio_of_mean_gains_with_a_fieller_interval():
    base = {0: 0.50, 1: 0.60, 2: 0.55}
    ceiling = {0: 0.60, 1: 0.69, 2: 0.66}  # gains 10, 9, 11: clear of zero
    r = recovered_fraction(half_of(ceiling, base), ceiling, base)
    assert r["mean"] == pytest.approx(0.5) and r["low"] == pytest.approx(0.5) and r["high"] == pytest.approx(0.5)
    noisy = {0: 0.58, 1: 0.60, 2: 0.56}  # gains 8, 0, 1: 9 of 30
    r = recovered_fraction(noisy, ceiling, base)
    assert r["mean"] == pytest.approx(0.3) and r["low"] < 0.3 < r["high"] and r["ceiling_gain"] == pytest.approx(0.1)
    gain = np.array([noisy[s] - base[s] for s in base])
    top = np.array([ceiling[s] - base[s] for s in base])
    critical = scipy.stats.t.ppf(0.975, 2)
    for end in (r["low"], r["high"]):  # at each end the paired t-test of gain - R * top = 0 sits on its critical value
        d = gain - end * top
        assert abs(d.mean()) / (d.std(ddof=1) / np.sqrt(3)) == pytest.approx(critical)
    assert recovered_fraction(noisy, base, base) is None  # a ceiling that gains nothing has no fraction
    shaky = {0: 0.45, 1: 0.64, 2: 0.61}  # ceiling gains -5, 4, 6: not clear of zero, so no bound
    r = recovered_fraction(noisy, shaky, base)
    assert r["mean"] == pytest.approx(9 / 5) and r["low"] is None and r["high"] is None
    proportional = {0: 0.60, 1: 0.64, 2: 0.61}  # gains 10, 4, 6, each exactly twice the student's: still no bound,
    r = recovered_fraction(half_of(proportional, base), proportional, base)  # the ceiling's gain is not clear of 0
    assert r["mean"] == pytest.approx(0.5) and r["low"] is None
    assert recovered_fraction({0: 0.6}, {0: 0.7}, {0: 0.5}) is None  # one seed: no interval


def test_the_summary_finds_each_distilled_students_ceiling_and_baseline():
    rows = []
    for seed, (b, c, seen, unseen) in enumerate([(0.5, 0.7, 0.65, 0.6), (0.52, 0.7, 0.66, 0.58)]):
        common = {"dataset": "digits", "classes": "all", "qubits": 2, "student": "v2", "reducer": "fc",
                  "encoding": "amplitude", "ansatz": "strong", "control": False, "seed": seed, "params_classical": 1,
                  "params_quantum": 1, "run_dir": "r"}
        rows += [{**common, "role": "baseline", "teacher": "none", "setting": "-", "pool": "-", "distill.transfer": "-",
                  "distill.transfer_labels": "-", "test_accuracy": b},
                 {**common, "role": "ceiling", "teacher": "ceiling", "setting": "-", "pool": "-",
                  "distill.transfer": "40", "distill.transfer_labels": "true", "test_accuracy": c}]
        rows += [{**common, "role": "distilled", "teacher": "lenet5", "setting": "kd+40", "pool": pool,
                  "distill.transfer": "40", "distill.transfer_labels": "soft", "test_accuracy": acc}
                 for pool, acc in (("seen", seen), ("unseen", unseen))]
    configs = {(c["teacher"], c["pool"]): c for c in summarize(rows)["configs"]}
    assert configs[("lenet5", "seen")]["recovered"]["mean"] == pytest.approx((0.15 + 0.14) / (0.2 + 0.18))
    assert configs[("lenet5", "unseen")]["recovered"]["mean"] == pytest.approx((0.1 + 0.06) / (0.2 + 0.18))
    assert configs[("ceiling", "-")]["gain"]["mean"] == pytest.approx(0.19)
    assert "recovered" not in configs[("none", "-")]


def test_augment_auto_is_resolved_in_the_cells_as_validate_records_it():
    cells = expand(spec(axes={"train.augment": ["auto"]}), Path("g"))
    assert {c.config.train.augment for c in cells if c.config.kind == "student"} == {"shift-rotate"}
    assert all("augment-auto" in c.id for c in cells if c.config.kind == "student")


def test_a_fixed_transfer_set_still_gives_the_report_its_pool_columns():
    cells = expand(spec(bundles={}, distill=DistillConfig(transfer="40"), data=DataConfig(per_class=20)), Path("g"))
    by = {c.fields["role"]: c.fields for c in cells if c.config.kind == "student"}
    assert (by["baseline"]["distill.transfer"], by["baseline"]["distill.transfer_labels"]) == ("-", "-")
    assert (by["ceiling"]["distill.transfer"], by["ceiling"]["distill.transfer_labels"]) == ("40", "true")
    assert (by["distilled"]["distill.transfer"], by["distilled"]["distill.transfer_labels"]) == ("40", "soft")


def test_unseen_alone_with_teachers_trained_elsewhere_is_refused(tmp_path):
    run = tmp_path / "strong"
    run.mkdir()
    (run / "best.pt").write_bytes(b"")
    with pytest.raises(QkdError, match="every teacher of this grid was trained elsewhere"):
        spec(teachers=["none", "strong"], teacher_pool=["unseen"], teacher_runs={"digits": {"strong": str(run)}})


def test_rows_of_a_grid_made_before_pools_are_read_as_what_they_were():
    common = {"dataset": "d", "classes": "all", "qubits": 2, "student": "v2", "reducer": "fc", "encoding": "a",
              "ansatz": "s", "control": False, "params_classical": 1, "params_quantum": 1, "run_dir": "r"}
    old = [{**common, "seed": s, "role": "baseline", "teacher": "none", "distill.transfer": "-", "test_accuracy": 0.5}
           for s in (0, 1)]
    old += [{**common, "seed": s, "role": "distilled", "teacher": "t", "distill.transfer": "40",
             "test_accuracy": 0.6 + s / 100} for s in (0, 1)]
    new = [{**common, "seed": s, "role": "distilled", "teacher": "t", "distill.transfer": "40", "pool": "unseen",
            "test_accuracy": 0.7} for s in (0, 1)]
    configs = {(c["teacher"], c["pool"]): c for c in summarize(old + new)["configs"]}
    assert configs[("t", "seen")]["gain"]["mean"] == pytest.approx(0.105)
    assert configs[("t", "unseen")]["gain"]["mean"] == pytest.approx(0.2)


def test_a_ceiling_saved_before_a_default_changed_is_the_same_ceiling():
    from qkd_pl.config import DistillConfig as D, RunConfig, normalized

    def saved(**distill):
        return RunConfig("student", student=StudentConfig(), distill=D(transfer="40", transfer_labels="true",
                                                                        **distill)).to_dict()
    assert normalized(saved(alpha=0.5, kd_loss="dist")) == normalized(saved())
    assert normalized(saved()) != normalized(RunConfig("student", student=StudentConfig(), distill=D()).to_dict())


def test_the_recovered_table_is_well_formed_without_bundle_columns():
    from qkd_pl.experiments.sweeps.report import recovered_table

    c = {"dataset": "d", "qubits": 2, "teacher": "t", "pool": "unseen", "gain": {"mean": 0.1, "low": 0.0, "high": 0.2,
                                                                                "n": 3},
         "recovered": {"mean": 0.5, "low": 0.2, "high": 0.8, "n": 3, "ceiling_gain": 0.2}}
    table = [line for line in recovered_table([c]) if line.startswith("|")]
    assert len({line.count("|") for line in table}) == 1 and "| d | 2 | t | unseen |" in table[2]
