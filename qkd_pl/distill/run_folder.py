"""A run folder's record of the sessions that worked on it (``environment.json``).

Why every session and not the first: a resumed run may have been continued under other library
versions, another thread count or another compile mode, and a number that moved should be
traceable to that.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

from ..files import atomic_write_json

LIBRARIES = ("qkd-pl", "torch", "torchvision", "pennylane", "pennylane-lightning", "pennylane-qiskit", "qiskit",
             "qiskit-aer", "qiskit-ibm-runtime", "scikit-learn", "numpy", "click")


def library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version(), "platform": platform.platform()}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = None
    return out


def record_session(run_dir: Path, seed: int, resuming: bool, split_seed: int | None = None) -> None:
    """Append this session (seed, command line, threads, compile mode, versions) to environment.json."""
    import torch

    path = run_dir / "environment.json"
    sessions = json.loads(path.read_text()) if resuming and path.exists() else []
    sessions.append({"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "resumed": resuming, "seed": seed,
                     "split_seed": split_seed, "argv": sys.argv, "torch_threads": torch.get_num_threads(),
                     "compile": os.environ.get("QKD_COMPILE", "trace"),
                     "compile_step": os.environ.get("QKD_COMPILE_STEP", "auto"), "versions": library_versions()})
    atomic_write_json(path, sessions)
