"""A grid's --torch-device: students follow cuda only where their circuit simulates in torch."""

import pytest

from qkd_pl.config import StudentConfig
from qkd_pl.experiments.sweeps import grid
from qkd_pl.experiments.sweeps.grid import follows_to_gpu


def test_which_student_configurations_follow_to_the_gpu():
    assert follows_to_gpu(StudentConfig(qubits=4)) and follows_to_gpu(StudentConfig(qubits=8, device="qkd.fused32"))
    assert not follows_to_gpu(StudentConfig(qubits=4, device="lightning.qubit"))
    assert not follows_to_gpu(StudentConfig(qubits=18))  # auto picks lightning.qubit above 16 qubits
    assert follows_to_gpu(StudentConfig(qubits=18, device="qkd.fused"))
    assert not follows_to_gpu(StudentConfig(qubits=4, device="qiskit.aer", shots=100))


def test_a_grid_sends_students_to_cuda_only_where_they_can_follow(one_gpu, tmp_path, monkeypatch):
    seen, grouped = {}, []

    class Stop(Exception):
        pass

    def executor(executor, workers):
        def run_many(groups, out, data_dir):  # records where each cell would train, trains nothing
            seen.update({c.id: c.torch_device for g in groups for c in g})
            grouped.extend(len(g) for g in groups)
            if seen:
                raise Stop
            return iter(())
        return run_many

    monkeypatch.setattr(grid, "_executor", executor)
    spec = grid.GridSpec(datasets=["digits"], classes=["0-1"], teachers=["none"], seeds=[0, 1],
                         axes={"student.device": ["qkd.fused", "lightning.qubit"]})
    with pytest.raises(Stop):
        grid.run_grid(spec, tmp_path, torch_device="cuda", progress=False)
    assert sorted(seen.values()) == ["auto", "auto", "cuda", "cuda"], seen
    assert grouped == [1, 1, 1, 1]  # seeds on the GPU train one by one, each its own task (stacking is for the CPU)
