"""The command line's catalog of components: the same as the registries, and enough for --help
and a refused choice without importing torch or PennyLane."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from qkd_pl.cli import catalog
from qkd_pl.errors import QkdError
from tests_helpers_plugins import ZERO_KD_PLUGIN


def test_catalog_file_is_what_the_registries_hold():
    # A record added, renamed or re-helped without `python -m qkd_pl.cli.catalog` fails here.
    assert json.loads(catalog.CATALOG_FILE.read_text()) == catalog.build()


def test_check_mode_names_the_fix(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "catalog.json"
    stale.write_text("{}\n")
    monkeypatch.setattr(catalog, "CATALOG_FILE", stale)
    assert catalog.main(["--check"]) == 1
    assert "python -m qkd_pl.cli.catalog" in capsys.readouterr().out
    assert catalog.main([]) == 0 and catalog.main(["--check"]) == 0


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "QKD_PLUGINS"} | env
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=environ, timeout=120)


HEAVY = "sorted(m for m in ('torch', 'pennylane', 'qiskit') if m in sys.modules)"


def test_help_and_a_refused_choice_import_no_component():
    proc = _run(f"""
        import sys
        from click.testing import CliRunner
        from qkd_pl.cli import cli
        r = CliRunner()
        for args in (["--help"], ["train-student", "--help"], ["grid", "--help"], ["bench", "--help"],
                     ["train-student", "--encoding", "foo"], ["train-student", "--qubits", "30"]):
            res = r.invoke(cli, args)
            print(args[-1], res.exit_code, repr(res.output[-300:]))
        print("HEAVY", {HEAVY})
    """)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "HEAVY []", proc.stdout
    assert any(line.startswith("foo 2 ") and "'amplitude', 'angle', 'qubit'" in line for line in lines), proc.stdout
    assert any(line.startswith("30 2 ") for line in lines), proc.stdout
    assert any(line.startswith("--help 0 ") for line in lines)


def test_help_lists_the_records_help():
    enc = catalog.Catalog("encoding")
    assert list(enc) == ["amplitude", "angle", "qubit"]
    assert enc.help().startswith("amplitude: 2^Q features")


@pytest.mark.parametrize("kind, given, expected", [
    ("dataset", "Fashion", "fashion-mnist"),          # an alias, any case
    ("dataset", "imagefolder:/some/path", "imagefolder:/some/path"),  # a family member keeps its path
    ("student", "mypkg.students:make", "mypkg.students:make"),        # a user's own, not imported yet
    ("encoding", "angle", "angle"),
])
def test_canonical_without_the_registry(kind, given, expected):
    cat = catalog.Catalog(kind)
    assert cat.canonical(given) == expected and expected in cat
    assert "registry" not in vars(cat)  # the real registry was not needed


def test_unknown_name_is_refused_without_plugins(monkeypatch):
    monkeypatch.delenv("QKD_PLUGINS", raising=False)
    cat = catalog.Catalog("encoding")
    with pytest.raises(QkdError, match="unknown encoding 'foo'"):
        cat.canonical("foo")
    assert "foo" not in cat and "encoding.path:thing" not in cat  # encodings take no import paths


def test_a_plugins_name_is_looked_up_in_the_registry(tmp_path):
    # A module in $QKD_PLUGINS registers an objective the catalog cannot know; the option accepts
    # it, and an unknown name is still refused with the choices.
    (tmp_path / "qkd_test_catalog_plugin.py").write_text(ZERO_KD_PLUGIN)
    proc = _run("""
        from click.testing import CliRunner
        from qkd_pl.cli import cli
        from qkd_pl.cli.catalog import Catalog
        cat = Catalog("objective")
        print("zero-kd" in cat, cat.canonical("zero-kd"), "other-kd" in cat)
        res = CliRunner().invoke(cli, ["train-student", "--kd-loss", "other-kd"])
        print(res.exit_code)
    """, QKD_PLUGINS="qkd_test_catalog_plugin", PYTHONPATH=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "zero-kd", "False", "2"]
