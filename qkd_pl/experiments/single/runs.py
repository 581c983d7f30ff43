"""Run folders: their names, their files, and refusing to mix runs of different configurations.

A run folder holds ``config.json`` (the resolved configuration), ``environment.json`` (seed,
command line and library versions of every session that worked on it), ``metrics.json`` (one
row per epoch), ``best.pt`` / ``last.pt`` (checkpoints), ``test_metrics.json`` (the one test
evaluation) and ``curves.png``. Its default name carries a hash of the configuration
(epochs excluded), so the same command resumes the same folder.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...config import RunConfig, config_differences, non_default, normalized
from ...data.sources import slug
from ...distill.run_folder import record_session
from ...errors import QkdError
from ...training import Score, atomic_write_json


@dataclass
class RunResult:
    """A finished run: its folder, its one test score, the selected epoch (``epoch``,
    ``val_accuracy``), its parameter counts, the wall time and what trained it."""

    run_dir: Path
    test: Score | None  # None for a model-selection run (train_student(test=False))
    best: dict[str, Any]
    parameters: dict[str, int]
    seconds: float
    device: str | None = None


def config_hash(cfg: RunConfig) -> str:
    d = non_default(cfg.to_dict())
    d["train"] = {k: v for k, v in d["train"].items() if k != "epochs"}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:8]


def default_run_name(cfg: RunConfig) -> str:
    role = cfg.kind if cfg.kind == "teacher" else ("distilled" if cfg.distill and cfg.distill.teacher else "baseline")
    return f"{role}-{slug(cfg.data.dataset)}-{config_hash(cfg)}"


def run_dir_for(out: str | Path, name: str | None, cfg: RunConfig, resume: bool = False,
                overwrite: bool = False) -> Path:
    """The run folder, checked before any work: another run there is refused unless resumed or overwritten."""
    if resume and overwrite:
        raise QkdError("--resume continues a run folder and --overwrite replaces it: pass one of them")
    run_dir = Path(out) / (name or default_run_name(cfg))
    saved = run_dir / "config.json"
    if run_dir.exists() and not run_dir.is_dir():
        raise QkdError(f"{run_dir} is a file, not a run folder; choose another --out or --name")
    if saved.exists() and not overwrite:
        if not resume:
            raise QkdError(f"run folder {run_dir} already holds a run; pass --resume to continue it, --overwrite "
                           f"to replace it, or --name to start another")
        check_same_config(json.loads(saved.read_text()), cfg, str(run_dir), ignore=("train.epochs",))
    elif run_dir.is_dir() and any(run_dir.iterdir()) and not overwrite:
        raise QkdError(f"{run_dir} is not empty and holds no qkd-pl run; choose another --out or --name, "
                       f"or --overwrite to empty it")
    return run_dir


def open_run_dir(out: str | Path, name: str | None, cfg: RunConfig, resume: bool,
                 overwrite: bool = False) -> tuple[Path, bool]:
    """Create (or reopen, or empty and recreate) the run folder; returns (folder, resuming)."""
    run_dir = run_dir_for(out, name, cfg, resume, overwrite)
    if overwrite and run_dir.exists():
        shutil.rmtree(run_dir)
    resuming = resume and (run_dir / "last.pt").exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / "config.json", cfg.to_dict())
    record_environment(run_dir, cfg, resuming)
    return run_dir, resuming


def record_environment(run_dir: Path, cfg: RunConfig, resuming: bool) -> None:
    """Append this session to environment.json (``distill.run_folder.record_session``)."""
    record_session(run_dir, cfg.train.seed, resuming, split_seed=cfg.data.split_seed)


def check_same_config(saved: dict[str, Any], cfg: RunConfig, what: str, ignore: tuple[str, ...] = ()) -> None:
    diffs = [d for d in config_differences(normalized(saved), normalized(cfg.to_dict()))
             if d.split(":")[0] not in ignore]
    if diffs:
        raise QkdError(f"{what} was made with another configuration ({'; '.join(diffs)})")
