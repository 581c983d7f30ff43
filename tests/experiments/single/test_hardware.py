"""A run on a fake IBM device says what its circuit costs there before its first batch, and warns
in one line when the outputs would be mostly noise; other devices say nothing of it."""

import warnings

import torch
from click.testing import CliRunner

from qkd_pl.cli import cli
from qkd_pl.config import StudentConfig
from qkd_pl.errors import QkdWarning
from qkd_pl.experiments.single.hardware import say_hardware_cost


def test_only_fake_ibm_devices_are_costed_up_front(capsys):
    cfg = StudentConfig(qubits=3, encoding="angle", ansatz="line")
    for device in ("qkd.fused", "lightning.qubit", "qiskit.aer", "ibm:ibm_brisbane", "ibm:least_busy"):
        assert say_hardware_cost(cfg, device) is None  # a real backend's cost comes with its submission plan
    assert capsys.readouterr().out == ""
    cost = say_hardware_cost(cfg, "noisy:fake_manila")
    assert cost.two_qubit_gates == 2 * 2 and f"circuit {cost.describe()}" in capsys.readouterr().out


def test_a_circuit_that_would_be_mostly_noise_is_warned_once():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        cost = say_hardware_cost(StudentConfig(qubits=5, encoding="amplitude", ansatz="strong", layers=3),
                                 "ibm:fake_manila", progress=False)
    assert cost.mostly_noise, cost.describe()
    mine = [w for w in seen if issubclass(w.category, QkdWarning)]
    assert len(mine) == 1 and "less than half of its outputs" in str(mine[0].message)


def test_costing_leaves_the_random_state_a_run_starts_from():
    torch.manual_seed(3)
    before = torch.get_rng_state()
    say_hardware_cost(StudentConfig(qubits=3, encoding="angle", ansatz="line"), "noisy:fake_manila", progress=False)
    assert torch.equal(torch.get_rng_state(), before)  # a noisy run and its exact control start alike


def test_per_circuit_evaluations_are_not_costed():  # pennylane-qiskit transpiles those its own way
    assert say_hardware_cost(StudentConfig(qubits=3), "ibm:fake_manila", per_circuit=True) is None


def test_training_on_a_fake_device_says_the_cost_before_the_first_epoch(tmp_path):
    r = CliRunner().invoke(cli, ["train-student", "--dataset", "digits", "--classes", "0-1", "--per-class", "20",
                                 "--qubits", "2", "--encoding", "angle", "--ansatz", "line", "--epochs", "1",
                                 "--device", "noisy:fake_manila", "--out", str(tmp_path), "--name", "s"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    cost = [i for i, line in enumerate(lines) if line.startswith("circuit on fake_manila: depth")]
    epoch = [i for i, line in enumerate(lines) if "epoch" in line.lower()]
    assert len(cost) == 1 and (not epoch or cost[0] < epoch[0]), r.stdout


def test_a_placement_on_badly_read_qubits_is_told_of_the_level_that_chooses_better_ones():
    # fake_brisbane's qubits 0-7 form a line, so level 1 keeps them; level 2 chooses qubits by calibration
    cfg = StudentConfig(qubits=8, encoding="angle", ansatz="line", layers=6, readout="zz")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        first = say_hardware_cost(cfg, "noisy:fake_brisbane", progress=False)
        second = say_hardware_cost(cfg, "noisy:fake_brisbane", progress=False, optimization_level=2)
    mine = [str(w.message) for w in seen if issubclass(w.category, QkdWarning)]
    assert first.level == 1 and second.level == 2 and second.fidelity > 1.5 * first.fidelity
    assert second.readout > first.readout and second.two_qubit_gates == first.two_qubit_gates == 6 * 7
    assert len(mine) == 1 and "qkd evaluate and qkd draw take --optimization-level 2" in mine[0]


def test_a_drawing_shows_the_same_angles_every_time_and_leaves_the_random_stream():
    # qkd draw's text and its PNG each build the circuit: unseeded weights made them disagree.
    import torch

    from qkd_pl.config import StudentConfig
    from qkd_pl.experiments.single.hardware import student_circuit

    cfg = StudentConfig(qubits=3, ansatz="strong", layers=2)
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    (_, (_, w1)), (_, (_, w2)) = student_circuit(cfg), student_circuit(cfg)
    assert torch.equal(w1, w2) and not torch.equal(w1, student_circuit(cfg, seed=1)[1][1])
    assert torch.equal(torch.rand(3), expected_next)
