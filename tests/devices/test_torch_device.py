"""--torch-device: teachers and teacher logits go where torch can run them; students follow an
explicit cuda only where their circuit simulates in torch; anything else is refused in one line
before any work."""

import pytest
import torch
from click.testing import CliRunner

from qkd_pl.cli import cli
from qkd_pl.config import DataConfig
from qkd_pl.data import load_data
from qkd_pl.devices import resolve_backend
from qkd_pl.devices.torch_device import resolve_torch_device, student_torch_device
from qkd_pl.errors import QkdError


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


def test_auto_is_cuda_when_torch_sees_it_else_the_cpu(no_gpu):
    assert resolve_torch_device("auto") == torch.device("cpu")
    assert resolve_torch_device("cpu") == torch.device("cpu")


def test_auto_with_a_gpu(one_gpu):
    assert resolve_torch_device("auto") == torch.device("cuda")
    assert resolve_torch_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(QkdError, match="has 1 CUDA device"):
        resolve_torch_device("cuda:1")


@pytest.mark.parametrize("name,needle", [("cuda", "sees no CUDA device"), ("gpu", "is not a torch device"),
                                         ("meta", "runs on cpu or cuda")])
def test_impossible_devices_are_refused(no_gpu, name, needle):
    with pytest.raises(QkdError, match=needle):
        resolve_torch_device(name)


def test_auto_keeps_students_on_the_cpu_even_with_a_gpu(one_gpu):
    fused = resolve_backend("qkd.fused", 4, training=True)
    assert student_torch_device("auto", fused) == torch.device("cpu")
    assert student_torch_device("cpu", fused) == torch.device("cpu")


def test_cuda_takes_a_student_whose_circuit_simulates_in_torch(one_gpu):
    for name in ("auto", "qkd.fused", "qkd.fused32"):
        assert student_torch_device("cuda", resolve_backend(name, 4, training=True)) == torch.device("cuda")
    assert student_torch_device("cuda:0", resolve_backend("qkd.fused", 4)) == torch.device("cuda:0")


@pytest.mark.parametrize("backend,needle", [
    (lambda: resolve_backend("lightning.qubit", 4, training=True), "lightning.qubit runs its circuit outside torch"),
    (lambda: resolve_backend("qiskit.aer", 4, shots=100), "without shots"),
    (lambda: None, "your own student runs on the device of its parameters")])
def test_cuda_is_refused_for_a_student_whose_circuit_cannot_follow(one_gpu, backend, needle):
    with pytest.raises(QkdError, match=needle):
        student_torch_device("cuda", backend())


def test_a_data_bundle_moves_whole():
    data = load_data(DataConfig("digits", classes=[0, 1])).to(torch.device("meta"))
    assert all(getattr(data, f).device.type == "meta" for f in ("x_train", "y_train", "x_val", "y_val", "x_test",
                                                                  "y_test", "mean", "std"))
    assert data.classes == [0, 1]


@pytest.mark.parametrize("command", ["train-teacher", "train-student"])
def test_the_cli_refuses_cuda_without_one_before_any_work(no_gpu, tmp_path, command):
    r = CliRunner().invoke(cli, [command, "--torch-device", "cuda", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "Traceback" not in r.output and r.stderr.count("\n") == 1
    assert "--torch-device cuda" in r.stderr and not any(tmp_path.iterdir())


def test_a_teacher_records_where_it_trained(tmp_path):
    r = CliRunner().invoke(cli, ["train-teacher", "--classes", "0-1", "--per-class", "20", "--epochs", "1", "--quiet",
                                 "--torch-device", "cpu", "--out", str(tmp_path), "--name", "t"])
    assert r.exit_code == 0, r.output
    assert '"trained_on": "cpu (torch)"' in (tmp_path / "t" / "test_metrics.json").read_text()
