"""Run folders: another run is never overwritten by accident, and every session is recorded."""

import json

import pytest

from qkd_pl.config import RunConfig, TeacherConfig, TrainConfig
from qkd_pl.errors import QkdError
from qkd_pl.experiments.single.runs import open_run_dir, run_dir_for


def cfg(seed: int = 0) -> RunConfig:
    return RunConfig(kind="teacher", teacher=TeacherConfig(), train=TrainConfig(seed=seed))


def test_a_folder_holding_a_run_is_refused_unless_resumed_or_overwritten(tmp_path):
    run_dir, resuming = open_run_dir(tmp_path, "r", cfg(), resume=False)
    (run_dir / "last.pt").write_bytes(b"x")
    with pytest.raises(QkdError, match="already holds a run; pass --resume .* --overwrite"):
        run_dir_for(tmp_path, "r", cfg(), resume=False)
    assert open_run_dir(tmp_path, "r", cfg(), resume=True) == (run_dir, True)
    with pytest.raises(QkdError, match="another configuration"):
        run_dir_for(tmp_path, "r", cfg(seed=1), resume=True)
    run_dir, resuming = open_run_dir(tmp_path, "r", cfg(seed=1), resume=False, overwrite=True)
    assert not resuming and not (run_dir / "last.pt").exists()
    assert json.loads((run_dir / "config.json").read_text())["train"]["seed"] == 1


def test_resume_and_overwrite_together_and_foreign_folders_are_refused(tmp_path):
    with pytest.raises(QkdError, match="pass one of them"):
        run_dir_for(tmp_path, "r", cfg(), resume=True, overwrite=True)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("not a run")
    with pytest.raises(QkdError, match="not empty and holds no qkd-pl run"):
        run_dir_for(tmp_path, "mine", cfg())
    (tmp_path / "file").write_text("")
    with pytest.raises(QkdError, match="is a file"):
        run_dir_for(tmp_path, "file", cfg())


def test_environment_records_seed_argv_and_versions_of_every_session(tmp_path, monkeypatch):
    monkeypatch.delenv("QKD_COMPILE", raising=False)
    run_dir, _ = open_run_dir(tmp_path, "r", cfg(seed=7), resume=False)
    (run_dir / "last.pt").write_bytes(b"x")
    monkeypatch.setenv("QKD_COMPILE", "inductor")
    open_run_dir(tmp_path, "r", cfg(seed=7), resume=True)
    sessions = json.loads((run_dir / "environment.json").read_text())
    assert [s["resumed"] for s in sessions] == [False, True] and sessions[0]["seed"] == 7
    assert [s["compile"] for s in sessions] == ["trace", "inductor"]
    versions = sessions[0]["versions"]
    assert versions["torch"] and versions["pennylane"] and versions["qkd-pl"] and versions["python"]
