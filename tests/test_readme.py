"""The README's first distillation and the tutorials' Python run as written, and their students learn.

The README is a front page: its Python block and its command line are the first distillation of
docs/start/first-distillation.md (the same text, checked here), and the Distiller example lives in
docs/tutorials/own-circuit.md. Each is run here as a user would copy it.
"""

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FIRST_DISTILLATION = ROOT / "docs/start/first-distillation.md"
DISTILLER_TUTORIAL = ROOT / "docs/tutorials/own-circuit.md"


def section(path: Path, heading: str) -> str:
    return path.read_text().split(heading + "\n", 1)[1].split("\n## ", 1)[0]


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def run_block(code: str, where: Path, tmp_path, monkeypatch) -> dict:
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme"}
    exec(compile(code, str(where), "exec"), namespace)
    return namespace


def test_the_distiller_example_runs_and_its_student_learns(tmp_path, monkeypatch, capsys):
    code = blocks(DISTILLER_TUTORIAL.read_text(), "python")[0]
    ns = run_block(code, DISTILLER_TUTORIAL, tmp_path, monkeypatch)
    assert ns["run"].run_dir == tmp_path / "runs/mine" and (tmp_path / "runs/mine/test_metrics.json").is_file()
    assert ns["score"].accuracy > 0.5  # four classes: chance is 1/4
    assert ns["run"].parameters["quantum"] == 2 * 4 * 3
    assert "runs/mine" in capsys.readouterr().out


def test_the_first_distillation_in_python_runs(tmp_path, monkeypatch, capsys):
    code = blocks(section(README, "## A first distillation"), "python")[0]
    assert len(code.strip().splitlines()) <= 10  # the README promises ten lines
    assert code in blocks(FIRST_DISTILLATION.read_text(), "python")  # the page explains the same code
    ns = run_block(code, README, tmp_path, monkeypatch)
    assert (tmp_path / "runs").is_dir() and ns["student"].run_dir.parent == Path("runs")
    assert ns["teacher"].test.accuracy > 0.8 and ns["student"].test.accuracy > 0.5  # 4 classes
    assert "teacher" in capsys.readouterr().out


def first_command_line() -> str:
    return blocks(section(README, "## A first distillation"), "bash")[0].strip()


def test_the_first_distillation_on_the_command_line_is_one_line_the_pages_own():
    line = first_command_line()
    assert "\n" not in line and line in blocks(FIRST_DISTILLATION.read_text(), "bash")[0]


@pytest.mark.slow  # two real trainings on all of digits: about 20 s on 2 cores
def test_the_first_distillation_on_the_command_line_runs(tmp_path, monkeypatch):
    from qkd_pl.cli.app import cli

    line = first_command_line()
    monkeypatch.chdir(tmp_path)
    for command in line.split("&&"):
        words = shlex.split(command)
        assert words[0] == "qkd"
        result = CliRunner().invoke(cli, words[1:])
        assert result.exit_code == 0, result.output
    metrics = (tmp_path / "runs/distilled/test_metrics.json").read_text()
    assert "teacher" in metrics and (tmp_path / "runs/teacher/best.pt").is_file()
