"""The batched Qiskit device: one transpilation per circuit structure, one job per batch, and the
same numbers as the exact simulator and as pennylane-qiskit's per-circuit path.

Statistical bound: an expectation value estimated from S shots has standard error
sqrt((1 - <O>^2) / S), a probability p has sqrt(p (1 - p) / S). Every value must lie within 6
standard errors (sqrt(2) times that between two estimates) plus 2e-3, which a correct device
exceeds with probability below 1e-8 per value (about 1e-4 over all the values checked here).
"""

import numpy as np
import pennylane as qml
import pytest
import torch

from qkd_pl.circuits import ANSATZES, QuantumLayer, READOUTS, v2_circuit, ansatz_weight_shape, n_features
from qkd_pl.config import StudentConfig
from qkd_pl.devices import jobs, make_device, resolve_backend
from qkd_pl.devices.parametric import observables, to_parametric, to_qiskit
from qkd_pl.devices.qiskit_batched import BatchedQiskitDevice

SHOTS = 4000
ENCODINGS = ["amplitude", "angle", "qubit"]


def layer_outputs(backend, cfg, x, seed=3):
    torch.manual_seed(seed)
    layer = QuantumLayer.v2(cfg, backend)
    with torch.no_grad():
        return layer(x).double(), layer.qnode.device


def bound(reference: torch.Tensor, readout: str, shots: int, estimates: int = 1) -> torch.Tensor:
    var = reference * (1 - reference) if READOUTS[readout].probabilities else 1 - reference**2
    return 6 * torch.sqrt(estimates * var.clamp_min(0) / shots) + 2e-3


def inputs(cfg, batch, seed=0):
    torch.manual_seed(seed)
    return torch.randn(batch, n_features(cfg.encoding, cfg.qubits))


@pytest.mark.parametrize("qubits", [4, 8])
@pytest.mark.parametrize("ansatz", list(ANSATZES))
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_the_parametric_circuit_is_the_tape_exactly(encoding, ansatz, qubits):
    """Bound to each sample's row of angles, the one fixed-structure circuit (state preparation as
    the RY tree) has the state default.qubit computes, for every encoding and ansatz."""
    from qiskit.quantum_info import Statevector

    cfg = StudentConfig(qubits=qubits, layers=2, encoding=encoding, ansatz=ansatz, readout="probs")
    qnode = qml.QNode(v2_circuit(cfg), qml.device("default.qubit", wires=qubits), interface="torch")
    x = inputs(cfg, 3).double()
    x[0, : x.shape[1] // 2] = 0.0  # zero amplitudes: the tree's atan2(0, 0) branches
    w = torch.randn(ansatz_weight_shape(ansatz, 2, qubits), dtype=torch.float64)
    exact = qnode(x, w).numpy()
    par = to_parametric(qml.workflow.construct_tape(qnode)(x, w), list(range(qubits)))
    circuit = to_qiskit(par.structure)
    circuit.remove_final_measurements()
    reverse = [int(format(i, f"0{qubits}b")[::-1], 2) for i in range(2**qubits)]  # Qiskit's little-endian order
    for b in range(3):
        probs = Statevector(circuit.assign_parameters(par.values[b].numpy())).probabilities()[reverse]
        np.testing.assert_allclose(probs, exact[b], atol=1e-10)


@pytest.mark.parametrize("qubits", [1, 4, 8])
def test_amplitude_state_preparation_is_a_tree_of_2q_minus_1_ry_angles(qubits):
    tape = qml.tape.QuantumScript([qml.AmplitudeEmbedding(torch.randn(5, 2**qubits), wires=range(qubits),
                                                          normalize=True)], [qml.probs()])
    par = to_parametric(tape, list(range(qubits)))
    assert {g.name for g in par.structure.gates} <= {"RY", "CNOT"}
    assert par.structure.n_params == 2**qubits - 1 and par.values.shape == (5, 2**qubits - 1)


def test_expectation_observables_are_the_tapes_pauli_words():
    cfg = StudentConfig(qubits=3, layers=1, readout="zz")
    qnode = qml.QNode(v2_circuit(cfg), qml.device("default.qubit", wires=3), interface="torch")
    par = to_parametric(qml.workflow.construct_tape(qnode)(torch.rand(2, 8), torch.rand(1, 3, 3)), [0, 1, 2])
    labels = [o.paulis[0].to_label() for o in observables(par.structure)]
    assert labels == ["IIZ", "IZI", "ZII", "IZZ", "ZIZ", "ZZI"]  # Qiskit's order: qubit 0 is the rightmost


@pytest.mark.slow
@pytest.mark.parametrize("qubits", [4, 8])
@pytest.mark.parametrize("readout", list(READOUTS))
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_batched_aer_matches_the_exact_simulator_within_shot_noise(encoding, readout, qubits):
    cfg = StudentConfig(qubits=qubits, layers=2, encoding=encoding, readout=readout)
    x = inputs(cfg, 8)
    exact, _ = layer_outputs(resolve_backend("default.qubit", qubits), cfg, x)
    shots, device = layer_outputs(resolve_backend("qiskit.aer", qubits, shots=SHOTS), cfg, x)
    assert isinstance(device, BatchedQiskitDevice)
    assert device.jobs_submitted == 1 and device.transpilations == 1  # the batch of 8 was one job
    assert ((shots - exact).abs() <= bound(exact, readout, SHOTS)).all(), (shots - exact).abs().max()
    assert not torch.equal(shots, exact)  # it really sampled


@pytest.mark.slow
@pytest.mark.parametrize("qubits", [4, 8])
@pytest.mark.parametrize("readout", list(READOUTS))
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_batched_agrees_with_the_per_circuit_path_within_shot_noise(encoding, readout, qubits):
    cfg = StudentConfig(qubits=qubits, layers=1, encoding=encoding, readout=readout)
    x = inputs(cfg, 3, seed=1)
    exact, _ = layer_outputs(resolve_backend("default.qubit", qubits), cfg, x)
    batched, _ = layer_outputs(resolve_backend("qiskit.aer", qubits, shots=SHOTS), cfg, x)
    per_circuit, device = layer_outputs(resolve_backend("qiskit.aer", qubits, shots=SHOTS, per_circuit=True), cfg, x)
    assert not isinstance(device, BatchedQiskitDevice)
    assert ((batched - per_circuit).abs() <= bound(exact, readout, SHOTS, estimates=2)).all()


def test_one_transpilation_per_structure_and_one_job_per_batch():
    cfg = StudentConfig(qubits=4, layers=2)
    torch.manual_seed(0)
    layer = QuantumLayer.v2(cfg, resolve_backend("ibm:fake_manila", 4, shots=256))
    device = layer.qnode.device
    with torch.no_grad():
        for _ in range(3):
            layer(torch.randn(40, 16))
        layer(torch.randn(16))  # an unbatched sample: the same structure
    assert device.transpilations == 1 and device.jobs_submitted == 4
    depth, two_qubit = device.transpiled[0].depth, device.transpiled[0].two_qubit_gates
    assert depth > 0 and two_qubit >= 15  # the 4-qubit tree's CNOTs alone are 14, the ansatz's 8 more
    device.optimization_level = 0  # another transpilation: a new cache entry, not the level-1 circuit
    with torch.no_grad():
        layer(torch.randn(4, 16))
    assert device.transpilations == 2 and device.jobs_submitted == 5


def test_a_batch_beyond_a_jobs_limits_is_split_and_its_results_stay_in_order():
    cfg = StudentConfig(qubits=3, layers=1, readout="probs")
    backend = resolve_backend("qiskit.aer", 3, shots=SHOTS)
    x = inputs(cfg, 25)
    exact, _ = layer_outputs(resolve_backend("default.qubit", 3), cfg, x)
    torch.manual_seed(3)
    layer = QuantumLayer.v2(cfg, backend)
    layer.qnode.device.limits = jobs.Limits(max_executions=10 * SHOTS)  # 10 samples per job
    with torch.no_grad():
        split = layer(x).double()
    assert layer.qnode.device.jobs_submitted == 3  # 25 rows in jobs of 9, 8, 8
    assert ((split - exact).abs() <= bound(exact, "probs", SHOTS)).all()


def test_rows_per_job_obey_every_limit():
    limits = jobs.Limits(max_executions=10_000_000, max_input_bytes=300_000_000, max_qpu_seconds=3 * 3600)
    assert limits.rows_per_job(1024, 300, 1e-6) == 10_000_000 // 1024
    assert limits.rows_per_job(1024, 300, 2e-3) == int(3 * 3600 // 2.048)  # QPU time binds first
    assert jobs.Limits(max_input_bytes=8_000).rows_per_job(10, 99, 0.0) == 8_000 // (8 * 99 + 64)
    assert [len(r) for r in jobs.split_rows(10_000, 9_765)] == [5_000, 5_000]
    assert [len(r) for r in jobs.split_rows(7, 100)] == [7]


def test_hybrid_cnn_circuit_runs_batched():
    from qkd_pl.circuits import qnode_for
    from qkd_pl.students.hybrid_cnn import v1_circuit

    angles = torch.rand(6, 3, dtype=torch.float64)
    exact = qnode_for(v1_circuit(3), 3, resolve_backend("default.qubit", 3))(angles)
    backend = resolve_backend("qiskit.aer", 3, shots=SHOTS)
    qnode = qnode_for(v1_circuit(3), 3, backend)
    assert isinstance(qnode.device, BatchedQiskitDevice)
    shots = torch.as_tensor(qnode(angles))
    assert ((shots - exact).abs() <= bound(exact, "probs", SHOTS)).all() and qnode.device.jobs_submitted == 1


def test_aer_with_a_noise_model_is_one_job_per_batch_too():
    cfg = StudentConfig(qubits=3, layers=1)
    torch.manual_seed(0)
    layer = QuantumLayer.v2(cfg, resolve_backend("qiskit.aer", 3, shots=512, noise="fake_manila"))
    with torch.no_grad():
        layer(torch.randn(30, 8))
    device = layer.qnode.device
    assert isinstance(device, BatchedQiskitDevice) and device.jobs_submitted == 1 and device.transpilations == 1
    assert device.backend.options.noise_model is not None


def test_make_device_keeps_the_per_circuit_path_selectable():
    assert isinstance(make_device(resolve_backend("ibm:fake_manila", 2), 2), BatchedQiskitDevice)
    assert not isinstance(make_device(resolve_backend("ibm:fake_manila", 2, per_circuit=True), 2),
                          BatchedQiskitDevice)
