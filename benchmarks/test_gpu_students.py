"""benchmarks/gpu_students.py runs end to end: its code paths with ``--device cpu`` (the GPU run
itself needs a machine with CUDA; docs/performance/gpu-students/ says when one was lent)."""

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import gpu_students  # noqa: E402


@pytest.mark.smoke
def test_the_gpu_benchmark_runs_its_code_paths_on_the_cpu(tmp_path):
    rc = gpu_students.main(["--device", "cpu", "--qubits", "4", "--check-qubits", "4", "--compile-qubits", "",
                            "--steps", "2", "--cell-seconds", "0.2", "--out", str(tmp_path)])
    assert rc == 0
    results = json.loads((tmp_path / "gpu_students.json").read_text())
    (check,) = results["agreement"]
    assert check["agrees"] and check["traced_on_device"] and check["worst"] == 0.0  # the CPU against itself
    run = results["whole_run"]
    assert run["largest_loss_difference"] == 0.0 and len(run["cpu"]["epochs"]) == 3, run
    assert run["device"]["trained_on"] == "qkd.fused"
    (row,) = results["timing"]
    assert row["cpu"]["samples_per_s"] > 0 and row["cpu"]["steps"] >= 2
    assert "| 4 | 32 |" in (tmp_path / "gpu_students.md").read_text()


@pytest.mark.smoke
def test_the_gpu_benchmark_refuses_cuda_where_there_is_none(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_students.main(["--out", str(tmp_path)]) == 2
    assert "no CUDA device" in capsys.readouterr().err and not (tmp_path / "gpu_students.json").exists()
