"""The torch density-matrix emulation of a fake backend (noisy:<fake>) against Aer and default.qubit.

Exact checks: noisy density matrices equal Aer's density-matrix simulation of the same
transpiled circuit and noise model to 1e-7; without noise the emulation equals default.qubit to
1e-10; gradients equal finite differences. Sampled checks use 6 standard errors plus 2e-3, as
tests/devices/test_qiskit_batched.py does.
"""

import numpy as np
import pennylane as qml
import pytest
import torch

from qkd_pl.circuits import QuantumLayer, READOUTS, v2_circuit, ansatz_weight_shape, n_features
from qkd_pl.config import StudentConfig
from qkd_pl.devices import ibm, resolve_backend
from qkd_pl.devices.noisy import NoisyEmulator
from qkd_pl.devices.noisy_dm import NoisyCircuit, sample
from qkd_pl.devices.parametric import to_parametric, transpile
from qkd_pl.errors import QkdError


def student_tape(qubits=3, encoding="amplitude", readout="probs", batch=3, seed=0):
    cfg = StudentConfig(qubits=qubits, layers=1, encoding=encoding, readout=readout)
    qnode = qml.QNode(v2_circuit(cfg), qml.device("default.qubit", wires=qubits), interface="torch")
    torch.manual_seed(seed)
    x = torch.randn(batch, n_features(encoding, qubits), dtype=torch.float64)
    w = torch.randn(ansatz_weight_shape("strong", 1, qubits), dtype=torch.float64)
    return qnode, x, w, qml.workflow.construct_tape(qnode)(x, w)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["fake_manila", "fake_kolkata", "fake_brisbane", "fake_torino"])
def test_noisy_density_matrices_equal_aers(backend):
    from qiskit_aer import AerSimulator
    from qiskit_aer.noise import NoiseModel

    _, _, _, tape = student_tape()
    par = to_parametric(tape, [0, 1, 2])
    fake = ibm.fake_backend(backend)
    isa, columns = transpile(par.structure, fake, 1)
    noise = NoiseModel.from_backend(fake)
    circuit = NoisyCircuit(isa, noise, {p: i for i, p in enumerate(isa.parameters)})
    values = par.values[:, columns]
    mine = circuit.density_matrices(values).numpy()
    plain = isa.remove_final_measurements(inplace=False)
    plain.save_density_matrix(qubits=list(reversed(circuit.physical)))  # Aer: the first listed qubit is bit 0
    sim = AerSimulator(method="density_matrix", noise_model=noise)
    for b in range(len(values)):
        aer = np.asarray(sim.run(plain.assign_parameters(values[b].numpy()), shots=1).result().data(0)["density_matrix"])
        np.testing.assert_allclose(mine[b], aer, atol=1e-7)


def test_one_qubit_runs_fold_into_the_two_qubit_gates():
    """The emulation's cost is its passes over the density matrix: one per two-qubit gate, plus
    at most one per qubit for the runs after its last two-qubit gate."""
    _, _, _, tape = student_tape(qubits=4)
    par = to_parametric(tape, [0, 1, 2, 3])
    fake = ibm.fake_backend("fake_brisbane")
    isa, _ = transpile(par.structure, fake, 1)
    circuit = NoisyCircuit(isa, ibm.noise_model(fake), {p: i for i, p in enumerate(isa.parameters)})
    two_qubit = sum(1 for inst in isa.data if inst.operation.num_qubits == 2)
    assert two_qubit <= len(circuit.steps) <= two_qubit + circuit.n
    assert any(step.before for step in circuit.steps)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU (benchmarks/gpu_noisy_eval.py checks one)")
def test_the_density_matrices_on_a_gpu_equal_the_cpus():
    _, _, _, tape = student_tape(qubits=4, batch=5)
    par = to_parametric(tape, [0, 1, 2, 3])
    fake = ibm.fake_backend("fake_brisbane")
    isa, columns = transpile(par.structure, fake, 1)
    noise, index = ibm.noise_model(fake), {p: i for i, p in enumerate(isa.parameters)}
    values = par.values[:, columns].detach()
    cpu = NoisyCircuit(isa, noise, index).probabilities(values)
    gpu = NoisyCircuit(isa, noise, index).to("cuda").probabilities(values)
    assert gpu.device == values.device
    torch.testing.assert_close(gpu, cpu, atol=1e-12, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize("readout", list(READOUTS))
@pytest.mark.parametrize("encoding", ["amplitude", "angle", "qubit"])
def test_without_noise_the_emulation_is_the_exact_circuit(encoding, readout):
    cfg = StudentConfig(qubits=3, layers=2, encoding=encoding, readout=readout)
    torch.manual_seed(1)
    x = torch.randn(4, n_features(encoding, 3))
    torch.manual_seed(0)
    exact = QuantumLayer.v2(cfg, resolve_backend("default.qubit", 3))
    torch.manual_seed(0)
    emulated = QuantumLayer.v2(cfg, resolve_backend("noisy:fake_brisbane", 3))
    emulated.qnode.device.noise_model = None  # the transpiled circuit, noiseless, readout perfect
    torch.testing.assert_close(emulated(x), exact(x), atol=1e-10, rtol=0)


def test_the_noise_moves_outputs_and_gradients_match_finite_differences():
    cfg = StudentConfig(qubits=3, layers=1, readout="z")
    torch.manual_seed(0)
    layer = QuantumLayer.v2(cfg, resolve_backend("noisy:fake_manila", 3))
    torch.manual_seed(0)
    exact = QuantumLayer.v2(cfg, resolve_backend("default.qubit", 3))
    x = torch.randn(2, 8, dtype=torch.float64)
    assert (layer(x) - exact(x)).abs().max() > 0.02  # the device's noise is there
    w = layer.layer.weights
    loss = lambda: (layer.layer(x) ** 2).sum()  # noqa: E731 - the float64 circuit, no dtype casts
    loss().backward()
    grad, eps = w.grad.clone(), 1e-6
    for idx in [(0, 0, 0), (0, 1, 2), (0, 2, 1)]:
        with torch.no_grad():
            w[idx] += eps
            up = loss().item()
            w[idx] -= 2 * eps
            down = loss().item()
            w[idx] += eps
        assert abs((up - down) / (2 * eps) - grad[idx].item()) < 1e-6


def test_readout_errors_and_shots_agree_with_aer_sampling():
    """Probabilities with readout errors against Aer's counts for the same transpiled circuit."""
    from qiskit_aer import AerSimulator
    from qiskit_aer.noise import NoiseModel

    _, _, _, tape = student_tape(batch=1)
    par = to_parametric(tape, [0, 1, 2])
    fake = ibm.fake_backend("fake_manila")
    isa, columns = transpile(par.structure, fake, 1)
    circuit = NoisyCircuit(isa, NoiseModel.from_backend(fake), {p: i for i, p in enumerate(isa.parameters)})
    values = par.values[:, columns]
    mine = circuit.probabilities(values)[0]
    shots = 200_000
    counts = AerSimulator.from_backend(fake).run(isa.assign_parameters(values[0].numpy()), shots=shots,
                                                 seed_simulator=7).result().get_counts()
    aer = torch.zeros(8, dtype=torch.float64)
    for bits, c in counts.items():
        aer[int(bits, 2)] += c / shots
    assert ((aer - mine).abs() <= 6 * torch.sqrt(mine * (1 - mine) / shots) + 2e-3).all()
    sampled = sample(mine[None].repeat(2, 1), 4000, torch.Generator().manual_seed(0))
    assert ((sampled - mine).abs() <= 6 * torch.sqrt(mine * (1 - mine) / 4000) + 2e-3).all()
    assert not torch.equal(sampled[0], sampled[1])


@pytest.mark.slow
@pytest.mark.parametrize("readout", list(READOUTS))
def test_emulation_agrees_with_the_fake_backend_on_aer_within_shot_noise(readout):
    """The same transpiled circuit and noise model: the exact noisy outputs against ibm:fake_manila's
    Estimator (z, zz) or Sampler (probs) jobs, which include its readout errors too."""
    cfg = StudentConfig(qubits=4, layers=1, readout=readout)
    shots = 20_000
    torch.manual_seed(2)
    x = torch.randn(6, 16)
    outs = {}
    for device in ("noisy:fake_manila", "ibm:fake_manila"):
        torch.manual_seed(0)
        layer = QuantumLayer.v2(cfg, resolve_backend(device, 4, shots=shots if device.startswith("ibm") else None))
        with torch.no_grad():
            outs[device] = layer(x).double()
    e = outs["noisy:fake_manila"]
    var = e * (1 - e) if readout == "probs" else 1 - e**2
    assert ((outs["ibm:fake_manila"] - e).abs() <= 6 * torch.sqrt(var / shots) + 2e-3).all()


def test_noisy_devices_are_refused_clearly():
    with pytest.raises(QkdError, match="emulates an IBM fake backend"):
        resolve_backend("noisy:ibm_brisbane", 2)
    with pytest.raises(QkdError, match="leave --shots out"):
        resolve_backend("noisy:fake_manila", 2, shots=100, training=True)
    with pytest.raises(QkdError, match="has 5 qubits"):
        resolve_backend("noisy:fake_manila", 8)
    assert resolve_backend("noisy:fake_manila", 2).trainable
    assert not resolve_backend("noisy:fake_manila", 2, shots=100).trainable
    assert isinstance(QuantumLayer.v2(StudentConfig(qubits=2), resolve_backend("noisy:fake_manila", 2)).qnode.device,
                      NoisyEmulator)
