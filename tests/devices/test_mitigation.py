"""Readout mitigation: the assignment-matrix correction against an explicit Kronecker product, and
in the noisy: emulation, what it takes out of a drop (the readouts') and what it leaves (the gates').
Zero-noise extrapolation: the folded circuits' density matrices against Aer's of the same folded
circuit (1e-7), the fits against data they describe exactly, what it takes out of a gate-dominated
drop, and the emulation's mitigated outputs against Aer's sampled counts mitigated the same way
(6 standard errors of the extrapolated value plus 2e-3)."""

import functools

import numpy as np

import pennylane as qml
import pytest
import torch

from qkd_pl.circuits import QuantumLayer
from qkd_pl.config import StudentConfig
from qkd_pl.devices import resolve_backend
from qkd_pl.devices.ibm import fake_backend
from qkd_pl.devices.mitigation import extrapolate, nearest_distribution, unconfuse
from qkd_pl.devices.noisy import NoisyEmulator
from qkd_pl.errors import QkdError


def _random_confusion(g):
    e = torch.rand(2, generator=g, dtype=torch.float64) * 0.2  # P(1|0), P(0|1)
    return torch.tensor([[1 - e[0], e[0]], [e[1], 1 - e[1]]], dtype=torch.float64)


def test_the_correction_inverts_independent_readouts_in_the_bit_order_of_the_index():
    g = torch.Generator().manual_seed(0)
    m = 3
    confusion = [_random_confusion(g) for _ in range(m)]
    true = torch.softmax(torch.randn(4, 2**m, generator=g, dtype=torch.float64), dim=1)
    # index bit j is classical bit j, so bit m-1 is the most significant: kron(M_{m-1}, ..., M_0)
    whole = functools.reduce(torch.kron, reversed(confusion))
    read = true @ whole
    assert torch.allclose(unconfuse(read, confusion), true, atol=1e-13)
    swapped = unconfuse(read, list(reversed(confusion)))  # the bit order matters: a mix-up is caught
    assert not torch.allclose(swapped, true, atol=1e-3)


def _outputs(device: str, readout: str, mitigation: str = "none", noiseless: bool = False) -> torch.Tensor:
    """A 3-qubit student with no two-qubit gate (gate errors are then tiny), on fake_manila's emulation."""
    cfg = StudentConfig(qubits=3, layers=1, encoding="angle", ansatz="strong-local", readout=readout)
    torch.manual_seed(0)  # the same weights in every call
    layer = QuantumLayer.v2(cfg, resolve_backend("qkd.fused", 3))
    emulator = NoisyEmulator(3, fake_backend(device), noiseless=noiseless, mitigation=mitigation)
    qnode = qml.QNode(layer.qnode.func, emulator, interface="torch", diff_method="backprop")
    torch.manual_seed(1)
    x = torch.randn(8, 3, dtype=torch.float64)
    return torch.stack(list(qnode(x, layer.layer.weights.detach())) if readout != "probs" else
                       [qnode(x, layer.layer.weights.detach())], -1).reshape(8, -1)


@pytest.mark.parametrize("readout", ["z", "probs"])
def test_readout_mitigation_takes_out_the_readout_part_of_the_drop(readout):
    exact = _outputs("fake_manila", readout, noiseless=True)
    raw = _outputs("fake_manila", readout)
    fixed = _outputs("fake_manila", readout, mitigation="readout")
    raw_error, left = (raw - exact).abs().max(), (fixed - exact).abs().max()
    assert raw_error > 5e-3  # fake_manila's readouts move these outputs by up to 0.25
    assert left < raw_error / 5, (raw_error, left)  # what is left is the single-qubit gates' errors


def test_the_nearest_distribution_is_the_projection_onto_the_simplex():
    p = torch.tensor([[0.5, 0.6, -0.1, 0.0], [0.25, 0.25, 0.25, 0.25], [1.2, -0.1, -0.05, -0.05]], dtype=torch.float64)
    q = nearest_distribution(p)
    assert torch.allclose(q, torch.tensor([[0.45, 0.55, 0, 0], [0.25, 0.25, 0.25, 0.25], [1, 0, 0, 0]],
                                          dtype=torch.float64), atol=1e-12)
    g = torch.Generator().manual_seed(0)
    rows = torch.randn(50, 8, generator=g, dtype=torch.float64) * 0.3 + 0.125
    near = nearest_distribution(rows)
    assert (near >= 0).all() and torch.allclose(near.sum(1), torch.ones(50, dtype=torch.float64))
    for _ in range(200):  # no other distribution is closer (random ones from the simplex)
        other = torch.distributions.Dirichlet(torch.ones(8, dtype=torch.float64)).sample((50,))
        assert ((rows - near).norm(dim=1) <= (rows - other).norm(dim=1) + 1e-12).all()


def test_mitigated_sampled_probabilities_stay_probabilities():
    cfg = StudentConfig(qubits=4, layers=1, readout="probs")
    torch.manual_seed(0)
    layer = QuantumLayer.v2(cfg, resolve_backend("noisy:fake_manila", 4, shots=256, mitigation="readout"))
    with torch.no_grad():
        out = layer(torch.randn(32, 16)).double()
    assert (out >= 0).all() and torch.allclose(out.sum(1), torch.ones(32, dtype=torch.float64))
    assert torch.isfinite(torch.log(out + 1e-3)).all()  # the v1 student's log-probabilities


@pytest.mark.slow
def test_mitigation_and_the_level_reach_the_emulation():
    from qkd_pl.devices import make_device
    from qkd_pl.devices.parametric import to_parametric

    assert make_device(resolve_backend("noisy:fake_manila", 3, mitigation="readout"), 3).mitigation == "readout"
    cfg = StudentConfig(qubits=8, layers=2, encoding="angle", ansatz="line")
    torch.manual_seed(0)
    layer = QuantumLayer.v2(cfg, resolve_backend("qkd.fused", 8))
    tape = qml.workflow.construct_tape(layer.qnode)(torch.rand(8, dtype=torch.float64), layer.layer.weights.detach())
    structure = to_parametric(tape, list(range(8))).structure
    placed = [make_device(resolve_backend("noisy:fake_brisbane", 8, optimization_level=level), 8)
              .emulation(structure).circuit.physical for level in (1, 2)]
    assert placed[0] == list(range(8)) and placed[1] != placed[0]  # level 2 weighs the qubits' calibration


def test_mitigation_is_refused_where_it_does_not_run():
    from qkd_pl.devices import make_device

    with pytest.raises(QkdError, match="qkd.fused does not take it"):
        resolve_backend("qkd.fused", 3, mitigation="readout")
    with pytest.raises(QkdError, match="training does not take it"):
        resolve_backend("noisy:fake_manila", 3, training=True, mitigation="readout")
    with pytest.raises(QkdError, match="unknown --mitigation 'pec'"):
        resolve_backend("noisy:fake_manila", 3, mitigation="pec")
    with pytest.raises(QkdError, match="qiskit.aer does not take it"):
        resolve_backend("qiskit.aer", 3, mitigation="zne")
    with pytest.raises(QkdError, match="--per-circuit does not take it"):
        resolve_backend("ibm:fake_manila", 3, per_circuit=True, mitigation="readout")
    with pytest.raises(QkdError, match="add --mitigation zne"):
        resolve_backend("noisy:fake_manila", 3, mitigation="readout", extrapolator="linear")
    with pytest.raises(QkdError, match="unknown --extrapolator 'cubic'"):
        resolve_backend("noisy:fake_manila", 3, mitigation="zne", extrapolator="cubic")
    assert resolve_backend("noisy:fake_manila", 3, mitigation="readout").mitigation == "readout"
    zne = make_device(resolve_backend("noisy:fake_manila", 3, mitigation="zne", extrapolator="linear"), 3)
    assert (zne.mitigation, zne.extrapolator, zne.factors) == ("zne", "linear", (1, 3, 5))


def test_the_transpiler_level_reaches_the_devices_and_is_refused_where_nothing_is_transpiled():
    from qkd_pl.devices import make_device

    assert make_device(resolve_backend("noisy:fake_manila", 3, optimization_level=2), 3).optimization_level == 2
    assert make_device(resolve_backend("ibm:fake_manila", 3, optimization_level=3), 3).optimization_level == 3
    assert resolve_backend("noisy:fake_manila", 3).optimization_level == 1
    with pytest.raises(QkdError, match="takes none"):
        resolve_backend("qkd.fused", 3, optimization_level=2)
    with pytest.raises(QkdError, match="takes none"):
        resolve_backend("ibm:fake_manila", 3, per_circuit=True, optimization_level=2)
    with pytest.raises(QkdError, match="levels are 0, 1, 2 and 3"):
        resolve_backend("noisy:fake_manila", 3, optimization_level=4)


def _folded(isa, fold: int):
    """The circuit as Qiskit would run it folded: each two-qubit gate G as G (G^-1 G)^k."""
    out = isa.copy_empty_like()
    for inst in isa.data:
        out.append(inst)
        if len(inst.qubits) == 2 and inst.operation.name != "barrier":
            for _ in range((fold - 1) // 2):
                out.append(inst.operation.inverse(), inst.qubits)
                out.append(inst.operation, inst.qubits)
    return out


def _student_isa(backend: str, qubits: int = 3, readout: str = "z", batch: int = 3):
    from qkd_pl.devices.parametric import to_parametric, transpile

    cfg = StudentConfig(qubits=qubits, layers=2, encoding="angle", ansatz="strong", readout=readout)
    torch.manual_seed(0)
    layer = QuantumLayer.v2(cfg, resolve_backend("qkd.fused", qubits))
    torch.manual_seed(1)
    x = torch.rand(batch, qubits, dtype=torch.float64) * 3
    tape = qml.workflow.construct_tape(layer.qnode)(x, layer.layer.weights.detach())
    par = to_parametric(tape, list(range(qubits)))
    measured = __import__("dataclasses").replace(par.structure, measurement=("probs", tuple(range(qubits))))
    isa, columns = transpile(measured, fake_backend(backend), 1)
    return layer, x, isa, par.values[:, columns]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["fake_manila", "fake_torino"])  # cx (Falcon) and cz (Heron) gates
def test_folded_density_matrices_equal_aers_of_the_folded_circuit(backend):
    from qiskit_aer import AerSimulator

    from qkd_pl.devices.ibm import noise_model
    from qkd_pl.devices.noisy_dm import NoisyCircuit

    _, _, isa, values = _student_isa(backend)
    noise = noise_model(fake_backend(backend))
    index = {p: i for i, p in enumerate(isa.parameters)}
    sim = AerSimulator(method="density_matrix", noise_model=noise)
    plain = NoisyCircuit(isa, noise, index).density_matrices(values)
    for fold in (3, 5):
        circuit = NoisyCircuit(isa, noise, index, fold=fold)
        mine = circuit.density_matrices(values).numpy()
        folded = _folded(isa, fold).remove_final_measurements(inplace=False)
        folded.save_density_matrix(qubits=list(reversed(circuit.physical)))
        for b in range(len(values)):
            aer = sim.run(folded.assign_parameters(values[b].numpy()), shots=1).result().data(0)["density_matrix"]
            np.testing.assert_allclose(mine[b], np.asarray(aer), atol=1e-7)
        assert not np.allclose(mine, plain.numpy(), atol=1e-4)  # folding added noise (the states moved)
    with pytest.raises(ValueError, match="odd"):
        NoisyCircuit(isa, noise, index, fold=2)


def test_each_extrapolator_recovers_the_decay_it_describes():
    x = torch.tensor([1.0, 3.0, 5.0], dtype=torch.float64)
    truth = torch.tensor([[0.7, -0.4, 0.05]], dtype=torch.float64)
    line = truth[:, None, :] * (1 - 0.08 * x[None, :, None])
    quad = truth[:, None, :] * (1 - 0.05 * x[None, :, None] + 0.004 * x[None, :, None] ** 2)
    expo = truth[:, None, :] * torch.exp(-0.2 * x[None, :, None])
    assert torch.allclose(extrapolate(line, (1, 3, 5), "linear"), truth, atol=1e-12)
    assert torch.allclose(extrapolate(quad, (1, 3, 5), "richardson"), truth, atol=1e-12)
    assert torch.allclose(extrapolate(expo, (1, 3, 5), "exponential"), truth, atol=1e-12)
    assert not torch.allclose(extrapolate(expo, (1, 3, 5), "linear"), truth, atol=1e-2)  # the fits differ
    crossing = torch.tensor([[[0.1], [-0.05], [-0.2]]], dtype=torch.float64)  # no exponential through these
    assert torch.allclose(extrapolate(crossing, (1, 3, 5), "exponential"), extrapolate(crossing, (1, 3, 5), "linear"))
    big = torch.tensor([[[0.9], [0.5], [0.1]]], dtype=torch.float64)
    assert extrapolate(big, (1, 3, 5), "linear").item() == 1.0  # a <Z> word stays in [-1, 1]
    with pytest.raises(ValueError, match="unknown extrapolator"):
        extrapolate(big, (1, 3, 5), "cubic")


def _emulated(layer, x, backend: str, mitigation: str, noiseless: bool = False, shots=None, extrapolator="linear"):
    emulator = NoisyEmulator(layer.qnode.device.wires, fake_backend(backend), noiseless=noiseless,
                             mitigation=mitigation, shots=shots, extrapolator=extrapolator)
    qnode = qml.QNode(layer.qnode.func, emulator, interface="torch", diff_method="backprop")
    with torch.no_grad():
        return torch.stack(list(qnode(x, layer.layer.weights.detach())), -1), emulator


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["fake_brisbane", "fake_torino"])
def test_zne_takes_out_most_of_what_the_gates_leave(backend):
    layer, x, _, _ = _student_isa(backend, qubits=4, batch=8)
    exact, _ = _emulated(layer, x, backend, "none", noiseless=True)
    readout, _ = _emulated(layer, x, backend, "readout")
    zne, emulator = _emulated(layer, x, backend, "zne", extrapolator="exponential")
    gates_left, zne_left = (readout - exact).abs().mean(), (zne - exact).abs().mean()
    assert gates_left > 5e-3, gates_left  # two layers of CNOTs routed on the device: a drop to recover
    assert zne_left < gates_left / 2, (gates_left, zne_left)
    raw = emulator.zne_values[0]
    assert raw.shape == (8, 3, 4) and torch.allclose(raw[:, 0], readout)  # factor 1 is the readout-mitigated run
    assert (raw[:, 2].abs() < raw[:, 0].abs()).float().mean() > 0.9  # more folding, less signal


@pytest.mark.slow
def test_zne_in_the_emulation_agrees_with_aers_folded_counts_mitigated_the_same_way():
    from qiskit_aer import AerSimulator

    from qkd_pl.devices.ibm import noise_model
    from qkd_pl.devices.noisy_dm import NoisyCircuit, z_signs

    backend, shots = "fake_manila", 400_000
    layer, x, isa, values = _student_isa(backend, qubits=3, batch=2)
    mine, _ = _emulated(layer, x, backend, "zne", extrapolator="linear")
    fake = fake_backend(backend)
    confusion = NoisyCircuit(isa, noise_model(fake), {p: i for i, p in enumerate(isa.parameters)}).confusion()
    sim = AerSimulator(noise_model=noise_model(fake))  # the fake backend's own (asymmetric readouts)
    per_factor = []
    for fold in (1, 3, 5):
        probs = torch.zeros(len(values), 8, dtype=torch.float64)
        for b in range(len(values)):
            counts = sim.run(_folded(isa, fold).assign_parameters(values[b].numpy()), shots=shots,
                             seed_simulator=fold + 10 * b).result().get_counts()
            for bits, c in counts.items():
                probs[b, int(bits, 2)] += c / shots
        words = [(2 - q,) for q in range(3)]  # <Z> of wire q is index bit 2 - q
        per_factor.append(unconfuse(probs, confusion) @ z_signs(3, words))
    aer = extrapolate(torch.stack(per_factor, 1), (1, 3, 5), "linear")
    weights = torch.tensor([13 / 12, 1 / 3, -5 / 12], dtype=torch.float64)  # the linear fit's weights at 0
    # the correction's inverse widens each factor's spread by at most 1 / (1 - 2 * max readout error)
    widen = max(1 / (1 - 2 * max(m[0, 1].item(), m[1, 0].item())) for m in confusion)
    sigma = widen * torch.sqrt((weights**2).sum() / shots)  # var(<Z>) <= 1 per shot
    assert ((aer - mine).abs() <= 6 * sigma + 2e-3).all(), (aer, mine, sigma)
    unfolded, _ = _emulated(layer, x, backend, "readout")  # what the bound tells apart: an unfolded "zne"
    assert ((aer - unfolded).abs() > 6 * sigma + 2e-3).any()


@pytest.mark.slow
def test_the_samplers_readout_correction_on_aer_agrees_with_the_emulations():
    """ibm:fake_manila's Sampler counts (Aer, the fake backend's noise) corrected by the backend's reported
    calibration, against the noisy: emulation's exact readout-mitigated probabilities."""
    cfg = StudentConfig(qubits=3, layers=1, readout="probs")
    shots = 40_000
    torch.manual_seed(2)
    x = torch.randn(4, 8)
    outs, layers = {}, {}
    for name, device, kw in (("emulated", "noisy:fake_manila", {}), ("aer", "ibm:fake_manila", {"shots": shots}),
                             ("aer raw", "ibm:fake_manila", {"shots": shots})):
        torch.manual_seed(0)
        mitigation = "none" if name == "aer raw" else "readout"
        layers[name] = QuantumLayer.v2(cfg, resolve_backend(device, 3, mitigation=mitigation, **kw))
        with torch.no_grad():
            outs[name] = layers[name](x).double()
    e = outs["emulated"]
    # the inverse of each bit's readout matrix widens the spread by at most 1 / (1 - 2 * its larger error)
    confusion = layers["emulated"].qnode.device.transpiled[0].circuit.confusion()
    widen = float(np.prod([1 / (1 - 2 * max(m[0, 1].item(), m[1, 0].item())) for m in confusion]))
    bound = 6 * widen * torch.sqrt(e * (1 - e) / shots) + 2e-3
    assert ((outs["aer"] - e).abs() <= bound).all()
    assert ((outs["aer raw"] - e).abs() > bound).any()  # the bound tells corrected from raw counts apart


def test_the_reported_calibration_follows_each_classical_bit_to_its_physical_qubit():
    from qiskit import QuantumCircuit, transpile

    from qkd_pl.devices.ibm import noise_model
    from qkd_pl.devices.mitigation import readout_confusion
    from qkd_pl.devices.noisy_dm import NoisyCircuit

    fake = fake_backend("fake_brisbane")
    qc = QuantumCircuit(4, 4)
    qc.h(range(4))  # no two-qubit gate: no routing moves the qubits from their layout
    qc.measure([0, 1, 2, 3], [2, 0, 3, 1])  # classical bits in another order than the qubits
    isa = transpile(qc, fake, initial_layout=[40, 13, 77, 101], seed_transpiler=0)
    mine = readout_confusion(fake, isa)
    props = fake.properties()
    for clbit, logical in ((2, 0), (0, 1), (3, 2), (1, 3)):
        q = [40, 13, 77, 101][logical]
        assert mine[clbit][0, 1].item() == pytest.approx(props.qubit_property(q, "prob_meas1_prep0")[0])
        assert mine[clbit][1, 0].item() == pytest.approx(props.qubit_property(q, "prob_meas0_prep1")[0])
    emulated = NoisyCircuit(isa, noise_model(fake), {}).confusion()  # what the noise model applies
    assert all(torch.allclose(a, b) for a, b in zip(mine, emulated))
