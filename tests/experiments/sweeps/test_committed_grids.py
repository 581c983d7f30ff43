"""Every experiment file committed under docs/ still reads and validates, cell by cell: a run's
command in the docs must not rot when an option is renamed or a rule is added."""

from pathlib import Path

import pytest

from qkd_pl.experiments.sweeps.grid import load_spec
from qkd_pl.experiments.sweeps.tune import load_tune_spec

DOCS = Path(__file__).resolve().parents[3] / "docs"
FILES = sorted(DOCS.rglob("*.toml"))


def test_there_are_committed_experiment_files():
    assert len(FILES) >= 10


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(DOCS)))
def test_a_committed_experiment_file_still_validates(path):
    if "[space]" in path.read_text():  # a qkd tune search
        spec = load_tune_spec(path)
        assert spec is not None
    else:
        spec = load_spec(path)
        assert spec.datasets and spec.seeds
