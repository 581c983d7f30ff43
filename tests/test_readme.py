"""The README's Python API examples run as written, and their students learn."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    section = README.read_text().split("## Python API", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def run_block(code: str, tmp_path, monkeypatch) -> dict:
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme"}
    exec(compile(code, "README.md", "exec"), namespace)
    return namespace


def test_the_distiller_example_runs_and_its_student_learns(tmp_path, monkeypatch, capsys):
    ns = run_block(python_blocks()[0], tmp_path, monkeypatch)
    assert ns["run"].run_dir == tmp_path / "runs/mine" and (tmp_path / "runs/mine/test_metrics.json").is_file()
    assert ns["score"].accuracy > 0.5  # four classes: chance is 1/4
    assert ns["run"].parameters["quantum"] == 2 * 4 * 3
    assert "runs/mine" in capsys.readouterr().out


def test_the_configuration_example_runs(tmp_path, monkeypatch, capsys):
    ns = run_block(python_blocks()[1], tmp_path, monkeypatch)
    assert (tmp_path / "runs").is_dir() and ns["student"].run_dir.parent == Path("runs")
    assert ns["teacher"].test.accuracy > 0.8 and ns["student"].test.accuracy > 0.5  # 4 classes
    assert "teacher" in capsys.readouterr().out
