"""The README's Python API example runs as written, and its student learns."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_python_api_example_runs(tmp_path, monkeypatch, capsys):
    section = README.read_text().split("## Python API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert (tmp_path / "runs").is_dir() and namespace["student"].run_dir.parent == Path("runs")
    assert namespace["teacher"].test.accuracy > 0.8 and namespace["student"].test.accuracy > 0.5  # 4 classes
    assert "teacher" in capsys.readouterr().out
