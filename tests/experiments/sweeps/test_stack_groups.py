"""A grid's students of one shape train as one stacked model, with the numbers of --no-stack."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from qkd_pl.cli import cli
from qkd_pl.experiments.paper.kd_study import kd_study_spec
from qkd_pl.errors import QkdInterrupted
from qkd_pl.experiments.sweeps.grid import STACK_WORK, expand, run_cells, stack_groups

GRID = """
name = "stacked"
seeds = [0, 1, 2]
[data]
datasets = ["digits"]
classes = ["0-3"]
per_class = 20
[student]
qubits = [2, 3]
epochs = 2
batch_size = 16
[teacher]
arch = ["none", "lenet5"]
epochs = 1
[sweep]
"distill.kd_loss" = ["hinton", "dkd"]
"""


def test_seeds_and_loss_settings_stack_and_other_shapes_do_not():
    cells = [c for c in expand(kd_study_spec(), Path("g")) if c.config.kind == "student"]
    groups = stack_groups(cells)
    assert sum(len(g) for g in groups) == len(cells)
    for group in groups:
        configs = [c.config for c in group]
        if len(group) > 1:
            assert len({c.student.qubits for c in configs}) == 1
            assert 2 ** configs[0].student.qubits * configs[0].train.batch_size <= STACK_WORK
            assert len({repr(c.data) for c in configs}) == 1 and len({repr(c.student) for c in configs}) == 1
            assert len({c.distill.transfer for c in configs}) == 1
            assert len({(c.train.epochs, c.train.batch_size, c.train.lr) for c in configs}) == 1
    stacked = [g for g in groups if len(g) > 1]
    alone = [g[0].config for g in groups if len(g) == 1]
    assert {(c.student.qubits, c.train.batch_size, c.data.dataset) for c in alone} == {
        (8, 256, "mnist"), (8, 256, "fashion-mnist")}  # all the data at 8 qubits: alone (batch 256 x 256 amplitudes)
    assert any(g[0].config.data.dataset == "cifar10" and g[0].config.student.qubits == 8 for g in stacked)  # 786,432
    # FC weights: at most STACK_WEIGHTS
    biggest = max(stacked, key=len)
    assert len({c.config.train.seed for c in biggest}) == 5  # seeds ...
    assert len({c.config.distill.kd_loss for c in biggest}) > 1  # ... and objectives
    assert len({c.config.distill.teacher for c in biggest}) > 1  # ... and teachers, baselines among them
    assert all(len(g) == 1 for g in stack_groups(cells, stack=False))


def rows(out):
    return {r["id"]: r for r in json.loads((out / "results.json").read_text())}


@pytest.mark.slow
def test_a_stacked_grid_gives_the_numbers_of_an_unstacked_one(tmp_path):
    (tmp_path / "grid.toml").write_text(GRID)
    for out, flag in (("stacked", "--stack"), ("alone", "--no-stack")):
        r = CliRunner().invoke(cli, ["grid", str(tmp_path / "grid.toml"), "--out", str(tmp_path / out), "--quiet",
                                     "--no-report", flag])
        assert r.exit_code == 0, r.output
    stacked, alone = rows(tmp_path / "stacked"), rows(tmp_path / "alone")
    assert stacked.keys() == alone.keys() and len(stacked) == 1 + 2 * 9
    for cell, row in stacked.items():
        assert row["test_accuracy"] == pytest.approx(alone[cell]["test_accuracy"], abs=1e-6), cell
        assert row["best_epoch"] == alone[cell]["best_epoch"], cell
    together = {json.loads((tmp_path / "stacked" / r["run_dir"] / "test_metrics.json").read_text()).get("stacked_with")
                for r in stacked.values() if r["role"] != "teacher"}
    assert together == {9}  # per qubit count: 3 seeds x (baseline, hinton, dkd)


@pytest.mark.slow
def test_a_failing_stacked_group_runs_its_cells_alone_so_only_the_bad_one_fails(tmp_path):
    (tmp_path / "grid.toml").write_text(GRID.replace("qubits = [2, 3]", "qubits = [2]"))
    r = CliRunner().invoke(cli, ["grid", str(tmp_path / "grid.toml"), "--out", str(tmp_path / "out"), "--quiet",
                                 "--no-report"])
    assert r.exit_code == 0, r.output
    cells = [c for c in expand_tiny(tmp_path) if c.config.kind == "student"]
    runs = tmp_path / "fresh"
    bad = next(c for c in cells if c.config.distill.teacher)
    bad.config.distill.temperature = 1e-40  # logits / T overflow: its loss is NaN at once, the others are fine
    out = run_cells(cells, str(tmp_path / "fresh"), None)
    failed = [(c.id, error) for c, row, error in out if error]
    assert [c for c, _ in failed] == [bad.id] and "loss became nan" in failed[0][1]
    assert all(row is not None for c, row, error in out if c is not bad)
    assert not (runs / "runs" / bad.id / "test_metrics.json").exists()


def expand_tiny(tmp_path):
    from qkd_pl.experiments.sweeps.grid import load_spec

    cells = expand(load_spec(tmp_path / "grid.toml"), tmp_path / "fresh")
    for c in cells:  # the teacher the first run trained
        if c.config.distill and c.config.distill.teacher:
            c.config.distill.teacher = str(tmp_path / "out" / "runs" / Path(c.config.distill.teacher).name)
    return cells


def test_ctrl_c_in_a_cell_stops_the_grid(tmp_path, monkeypatch):
    from qkd_pl.experiments.sweeps import grid

    def interrupted(*args, **kwargs):
        raise QkdInterrupted("stopped during epoch 1")

    monkeypatch.setattr(grid, "run_cell", interrupted)
    (tmp_path / "grid.toml").write_text(GRID)
    cell = next(c for c in expand(grid.load_spec(tmp_path / "grid.toml"), tmp_path) if c.config.kind == "student")
    with pytest.raises(QkdInterrupted):
        run_cells([cell], str(tmp_path), None)


def test_pca_and_rotation_encodings_are_not_stacked():
    from qkd_pl.experiments.sweeps.grid import GridSpec

    spec = GridSpec(datasets=["digits"], classes=["0-3"], teachers=["none"], seeds=[0, 1, 2],
                    axes={"student.reducer": ["fc", "pca"], "student.encoding": ["amplitude", "angle"]})
    groups = stack_groups([c for c in expand(spec, Path("g")) if c.config.kind == "student"])
    stacked = [g for g in groups if len(g) > 1]
    assert len(stacked) == 1 and {(c.config.student.reducer, c.config.student.encoding) for c in stacked[0]} == {
        ("fc", "amplitude")}


def test_students_stack_on_either_fused_simulator_never_across_them_nor_on_lightning():
    from qkd_pl.experiments.sweeps.grid import GridSpec

    spec = GridSpec(datasets=["digits"], classes=["0-3"], teachers=["none"], seeds=[0, 1, 2],
                    axes={"student.device": ["auto", "qkd.fused32", "lightning.qubit"]})
    groups = stack_groups([c for c in expand(spec, Path("g")) if c.config.kind == "student"])
    stacked = sorted((g[0].config.student.device, len({c.config.student.device for c in g}), len(g))
                     for g in groups if len(g) > 1)
    assert stacked == [("auto", 1, 3), ("qkd.fused32", 1, 3)]
    assert sum(len(g) == 1 for g in groups) == 3  # lightning.qubit: one by one


def test_tasks_are_ordered_longest_first_and_keep_every_cell():
    cells = [c for c in expand(kd_study_spec(), Path("g")) if c.config.kind == "student"]
    groups = stack_groups(cells)
    assert sorted(c.id for g in groups for c in g) == sorted(c.id for c in cells)
    first, last = groups[0][0].config, groups[-1][0].config
    assert first.student.qubits == 8 and first.distill.transfer == "500" and len(groups[0]) > 1  # stacked
    assert last.student.qubits == 4 and last.data.per_class == 50  # 4 qubits on 50 images per class


def test_the_help_and_the_tutorial_state_the_stacking_limits_the_grid_applies():
    from click.testing import CliRunner

    from qkd_pl.cli.app import cli
    from qkd_pl.experiments.sweeps.grid import STACK_WEIGHTS

    shown = " ".join(CliRunner().invoke(cli, ["grid", "--help"], terminal_width=400).output.split())
    assert f"batch up to {STACK_WORK}" in shown and f"FC weights up to {STACK_WEIGHTS}" in shown
    tutorial = " ".join((Path(__file__).parents[3] / "docs/tutorials/grid-and-report.md").read_text().split())
    assert f"batch up to {STACK_WORK:,}" in tutorial and f"FC weights up to {STACK_WEIGHTS:,}" in tutorial
