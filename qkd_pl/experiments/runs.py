"""Run folders: their names, their files, and refusing to mix runs of different configurations.

A run folder holds ``config.json`` (the resolved configuration), ``metrics.json`` (one row
per epoch), ``best.pt`` / ``last.pt`` (checkpoints), ``test_metrics.json`` (the one test
evaluation) and ``curves.png``. Its default name carries a hash of the configuration
(epochs excluded), so the same command resumes the same folder.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import RunConfig, config_differences
from ..errors import QkdError
from ..training import atomic_write_json


@dataclass
class RunResult:
    run_dir: Path
    test: dict[str, Any]
    best: dict[str, Any]
    parameters: dict[str, int]
    seconds: float
    device: str | None = None


def config_hash(cfg: RunConfig) -> str:
    d = cfg.to_dict()
    d["train"] = {k: v for k, v in d["train"].items() if k != "epochs"}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:8]


def default_run_name(cfg: RunConfig) -> str:
    role = cfg.kind if cfg.kind == "teacher" else ("distilled" if cfg.distill and cfg.distill.teacher else "baseline")
    return f"{role}-{cfg.data.dataset}-{config_hash(cfg)}"


def open_run_dir(out: str | Path, name: str | None, cfg: RunConfig, resume: bool) -> tuple[Path, bool]:
    """Create (or, with ``resume``, reopen) the run folder; returns (folder, resuming)."""
    run_dir = Path(out) / (name or default_run_name(cfg))
    saved = run_dir / "config.json"
    if saved.exists():
        if not resume:
            raise QkdError(f"run folder {run_dir} already exists; pass --resume to continue it "
                           f"or --name to start another")
        check_same_config(json.loads(saved.read_text()), cfg, str(run_dir), ignore=("train.epochs",))
        resuming = (run_dir / "last.pt").exists()
    else:
        resuming = False
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(saved, cfg.to_dict())
    return run_dir, resuming


def check_same_config(saved: dict[str, Any], cfg: RunConfig, what: str, ignore: tuple[str, ...] = ()) -> None:
    diffs = [d for d in config_differences(saved, cfg.to_dict()) if d.split(":")[0] not in ignore]
    if diffs:
        raise QkdError(f"{what} was made with another configuration ({'; '.join(diffs)})")
