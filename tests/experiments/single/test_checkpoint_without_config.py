"""A checkpoint qkd-pl wrote without a run configuration (training.fit with an empty
checkpoint_meta) is refused in one line, exit 2, by every command that rebuilds a model from it."""

import pytest
import torch
from click.testing import CliRunner

from qkd_pl.cli import cli
from qkd_pl.training import save_checkpoint


@pytest.fixture
def bare(tmp_path):
    run = tmp_path / "bare"
    save_checkpoint(run / "best.pt", {"epoch": 1, "state_dict": {"w": torch.zeros(2)}, "val_accuracy": 0.5})
    return run


@pytest.mark.parametrize("args", [
    ["evaluate", "{run}"],
    ["evaluate", "{run}/best.pt", "--device", "lightning.qubit"],
    ["draw", "--run", "{run}"],
    ["train-student", "--dataset", "digits", "--teacher", "{run}", "--epochs", "1", "--out", "{out}"],
], ids=["evaluate", "evaluate-file", "draw", "teacher"])
def test_a_checkpoint_without_a_configuration_is_refused_in_one_line(bare, tmp_path, args):
    r = CliRunner().invoke(cli, [a.format(run=bare, out=tmp_path / "runs") for a in args])
    assert r.exit_code == 2, r.output
    err = r.stderr.strip()
    assert "\n" not in err and "Traceback" not in r.output + r.stderr and "KeyError" not in err
    assert "holds no config" in err and str(bare) in err
