"""A circuit's cost on an IBM device before anything runs: the estimate's arithmetic on a hand-made
target, and what the transpiler makes of the students on real fake backends."""

import math

import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Measure
from qiskit.circuit.library import CXGate, RZGate
from qiskit.circuit import Parameter
from qiskit.transpiler import InstructionProperties, Target

from qkd_pl.config import StudentConfig
from qkd_pl.devices.hardware_cost import MOSTLY_NOISE, HardwareCost, estimated_fidelity
from qkd_pl.experiments.single.hardware import hardware_target, student_cost


def test_the_estimate_is_the_product_of_the_reported_gate_and_readout_successes():
    target = Target(num_qubits=2)
    target.add_instruction(CXGate(), {(0, 1): InstructionProperties(error=0.1)})
    target.add_instruction(RZGate(Parameter("a")), {(0,): InstructionProperties(error=0.0), (1,): None})
    target.add_instruction(Measure(), {(0,): InstructionProperties(error=0.2), (1,): InstructionProperties(error=0.05)})
    qc = QuantumCircuit(2, 2)
    qc.rz(0.3, 0)
    qc.rz(0.3, 1)  # no reported error: perfect
    qc.cx(0, 1)
    qc.cx(0, 1)
    qc.barrier()
    qc.measure([0, 1], [0, 1])
    assert estimated_fidelity(qc, target) == pytest.approx(0.9 * 0.9 * 0.8 * 0.95, rel=1e-12)
    assert estimated_fidelity(qc, target, ("measure",)) == pytest.approx(0.8 * 0.95, rel=1e-12)


def test_the_estimate_reads_the_errors_of_the_physical_qubits_the_transpiler_chose():
    from qiskit import transpile

    target = Target(num_qubits=4)
    target.add_instruction(CXGate(), {(0, 1): InstructionProperties(error=0.3), (2, 3): InstructionProperties(error=0.01)})
    target.add_instruction(Measure(), {(q,): InstructionProperties(error=0.1 if q < 2 else 0.02) for q in range(4)})
    qc = QuantumCircuit(2, 2)
    qc.cx(0, 1)
    qc.measure([0, 1], [0, 1])
    placed = transpile(qc, target=target, initial_layout=[2, 3], optimization_level=0)
    assert estimated_fidelity(placed, target) == pytest.approx(0.99 * 0.98 * 0.98, rel=1e-12)


def test_mostly_noise_below_the_threshold_and_one_line_that_says_what_to_do():
    low, high = (HardwareCost("fake_x", 100, 50, 300, MOSTLY_NOISE * f) for f in (0.99, 1.01))
    assert low.mostly_noise and not high.mostly_noise and high.warning() is None
    warning = low.warning("use fewer gates")
    assert "\n" not in warning and warning.endswith("use fewer gates") and "50 two-qubit gates" in warning
    assert "99.5 %" in HardwareCost("fake_x", 1, 0, 1, 0.995).describe()


@pytest.mark.parametrize("backend", ["fake_brisbane", "fake_torino"])
@pytest.mark.parametrize("encoding", ["angle", "qubit"])
def test_the_line_ansatz_is_placed_without_a_swap(backend, encoding):
    cfg = StudentConfig(qubits=8, layers=3, encoding=encoding, ansatz="line")
    cost = student_cost(cfg, *hardware_target(f"ibm:{backend}", 8))
    assert cost.two_qubit_gates == 3 * 7  # layers x (Q - 1) CNOTs, each one native two-qubit gate
    assert 0 < cost.fidelity <= cost.readout <= 1


def test_the_amplitude_student_of_the_noise_study_is_mostly_noise_at_8_qubits():
    cost = student_cost(StudentConfig(qubits=8, encoding="amplitude", ansatz="strong"),
                        *hardware_target("noisy:fake_brisbane", 8))
    assert cost.two_qubit_gates > 500 and cost.mostly_noise and cost.fidelity < 0.05  # docs/noise/report.md: 774
    line = student_cost(StudentConfig(qubits=8, encoding="angle", ansatz="line"), *hardware_target("ibm:fake_brisbane", 8))
    assert line.fidelity > 10 * cost.fidelity and math.isfinite(line.fidelity)


def test_a_higher_transpiler_level_places_the_line_on_better_calibrated_qubits():
    cfg = StudentConfig(qubits=8, layers=4, encoding="angle", ansatz="line")
    first, weighed = (student_cost(cfg, *hardware_target("ibm:fake_brisbane", 8), level) for level in (1, 2))
    assert first.two_qubit_gates == weighed.two_qubit_gates == 4 * 7  # both without a SWAP
    assert weighed.readout > first.readout and weighed.fidelity > first.fidelity  # level 1: the first SWAP-free path


@pytest.mark.parametrize("mitigation", ["none", "readout", "zne"])
def test_the_qpu_estimate_before_training_is_the_one_the_plan_of_a_paid_job_shows(mitigation):
    """What `qkd reproduce noise` and `qkd draw` estimate from a configuration equals what the batched
    IBM device's plan says before submitting the same student's circuit (measurements counted both
    ways, although the Estimator's circuit carries none)."""
    import pennylane as qml

    from qkd_pl.devices.parametric import to_parametric
    from qkd_pl.devices.qiskit_batched import BatchedQiskitDevice
    from qkd_pl.experiments.single.hardware import student_circuit

    cfg = StudentConfig(qubits=8, layers=3, encoding="angle", ansatz="line")
    backend, name = hardware_target("ibm:fake_brisbane", 8)
    cost = student_cost(cfg, backend, name)
    qnode, args = student_circuit(cfg)
    structure = to_parametric(qml.workflow.construct_tape(qnode)(*args), list(range(8))).structure
    device = BatchedQiskitDevice(range(8), backend, mitigation=mitigation)
    compiled = device.compile(structure)
    plan = device.plan(compiled, None, 8, 1024, [("test", 300)])
    # the circuit and its measurements take time beside the repetition delay, its measurements among it
    assert cost.seconds_per_shot > cost.readout_seconds_per_shot > 250e-6 + 1e-7
    estimate = cost.qpu_seconds(300, 1024, mitigation, images_per_job=-(-300 // plan.jobs))
    assert estimate == pytest.approx(plan.qpu_seconds, rel=1e-6)
    if mitigation == "zne":
        assert list(cost.folded_seconds_per_shot) == sorted(cost.folded_seconds_per_shot)
        assert cost.folded_seconds_per_shot[0] == pytest.approx(cost.seconds_per_shot)
        assert estimate > 3 * cost.qpu_seconds(300, 1024)
