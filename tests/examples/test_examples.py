"""The examples run as a user runs them, at digits scale, and do what they say."""

import importlib
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from qkd_pl.cli.app import cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def example(monkeypatch):
    """Import an example module the way running it from its folder would."""

    def load(folder: Path, name: str):
        monkeypatch.syspath_prepend(str(folder))
        monkeypatch.delitem(sys.modules, name, raising=False)
        return importlib.import_module(name)

    return load


@pytest.mark.slow
def test_own_qnode_student_distilled_from_own_cnn_with_a_transfer_set(tmp_path, example):
    module = example(EXAMPLES, "own_qnode_student")
    results = module.main(out=str(tmp_path), teacher_epochs=3, student_epochs=2, progress=False)
    assert set(results) == {"baseline", "distilled"} and all(a > 0.2 for a in results.values())  # chance: 0.1
    config = json.loads((tmp_path / "distilled" / "config.json").read_text())
    assert config["student"]["class"] == "own_qnode_student.QNodeStudent"
    assert config["student"]["parameters"]["quantum"] == 24 and config["data"]["transfer"]["n"] > 0
    assert config["teacher"]["class"] == "own_qnode_student.SmallCNN"
    assert config["distiller"]["loss"]["objective"] == "hinton-classic"


@pytest.mark.slow
def test_a_custom_objective_from_a_grid_file(tmp_path, example, monkeypatch, request):
    from qkd_pl.losses import OBJECTIVES

    # the example registers its objective in the process-wide registry: undone after this test
    monkeypatch.setattr(OBJECTIVES, "_records", dict(OBJECTIVES._records))
    monkeypatch.setattr(OBJECTIVES, "_imported", dict(OBJECTIVES._imported))
    request.addfinalizer(lambda: sys.modules.pop("my_objectives", None))
    folder = EXAMPLES / "custom_objective"
    monkeypatch.chdir(folder)  # the grid names my_objectives:CosineKD, importable from here as from the shell
    monkeypatch.syspath_prepend(str(folder))
    result = CliRunner().invoke(cli, ["grid", "grid.toml", "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "results.json").read_text())
    cosine = [r for r in rows if r.get("distill.kd_loss") == "my_objectives:CosineKD"]
    assert len(rows) == 4 and len(cosine) == 1 and cosine[0]["distill.kd_params"] == "margin=0.05"
    saved = json.loads((tmp_path / cosine[0]["run_dir"] / "config.json").read_text())
    assert saved["distill"]["kd_params"] == {"margin": 0.05}
    assert "my_objectives:CosineKD" in (tmp_path / "report.md").read_text()
    assert "cosine-kd" in OBJECTIVES  # registered by the decorator once its module was imported


def test_own_dataset_from_python_and_from_the_command_line(tmp_path, example, monkeypatch):
    folder = EXAMPLES / "own_dataset"
    module = example(folder, "my_data")
    assert module.main(out=str(tmp_path / "py"), epochs=3, progress=False) > 0.5  # ten classes
    monkeypatch.chdir(folder)
    result = CliRunner().invoke(cli, ["train-student", "--dataset", "py:my_data:load", "--classes", "0-3",
                                      "--epochs", "2", "--qubits", "2", "--out", str(tmp_path / "cli"), "--quiet"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(next((tmp_path / "cli").glob("*/test_metrics.json")).read_text())
    assert metrics["test_accuracy"] > 0.4 and metrics["data_source"]["loader"] == "my_data:load"  # four classes
