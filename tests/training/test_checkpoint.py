import json

import pytest
import torch

from qkd_pl.errors import QkdError
from qkd_pl.training import atomic_write_json, load_checkpoint, save_checkpoint


class Evil:
    def __reduce__(self):
        return (print, ("unpickled arbitrary code",))


def test_round_trip(tmp_path):
    save_checkpoint(tmp_path / "a.pt", {"state_dict": {"w": torch.ones(2)}, "meta": {"classes": [0, 1]}})
    ck = load_checkpoint(tmp_path / "a.pt")
    assert ck["meta"]["classes"] == [0, 1] and torch.equal(ck["state_dict"]["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]  # no temporary file left behind


def test_arbitrary_objects_are_refused(tmp_path, capsys):
    torch.save({"format": "qkd-pl/1", "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(QkdError, match="can read safely"):
        load_checkpoint(tmp_path / "evil.pt")
    assert "unpickled" not in capsys.readouterr().out


def test_foreign_and_missing_files(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(QkdError):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"w": torch.ones(1)}, tmp_path / "plain.pt")
    with pytest.raises(QkdError, match="not a qkd-pl checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")
    with pytest.raises(QkdError, match="not found"):
        load_checkpoint(tmp_path / "none.pt")


def test_failed_write_keeps_the_previous_file(tmp_path):
    atomic_write_json(tmp_path / "m.json", {"a": 1})
    with pytest.raises(TypeError):
        atomic_write_json(tmp_path / "m.json", {"a": object()})
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_a_fitted_pca_student_is_saved_as_tensors_and_restored_without_pickle(tmp_path):
    from click.testing import CliRunner

    from qkd_pl.cli import cli
    from qkd_pl.experiments.single.train import load_model

    r = CliRunner().invoke(cli, ["train-student", "--reducer", "pca", "--qubits", "2", "--classes", "0-2", "--per-class",
                                 "30", "--epochs", "1", "--quiet", "--out", str(tmp_path), "--name", "p"])
    assert r.exit_code == 0, r.output
    raw = torch.load(tmp_path / "p" / "best.pt", weights_only=True)  # would raise on any pickled object
    fitted = {k: v for k, v in raw["state_dict"].items() if k.startswith("reduce.")}
    assert fitted and all(isinstance(v, torch.Tensor) for v in fitted.values())
    assert fitted["reduce.components"].abs().sum() > 0  # the fit itself, not an empty buffer
    model, _, _ = load_model(tmp_path / "p")
    assert torch.equal(model.reduce.components, fitted["reduce.components"])
