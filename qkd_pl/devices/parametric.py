"""A broadcast PennyLane tape as one fixed-structure Qiskit circuit and a (batch x parameters) array.

Why: pennylane-qiskit expands a batch of B samples into B circuits, transpiles each and submits
each as its own primitive job. But a student's circuit has the same gates for every sample;
only the angles differ. So every gate angle becomes a Qiskit ``Parameter``, the circuit is
transpiled once per structure, and the B samples travel as rows of one parameter array in one
primitive unit of work (PUB).

Data-dependent state preparation has no angles, so it is rewritten: a real amplitude vector
(``qml.AmplitudeEmbedding``, ``qml.StatePrep``) becomes a Mottonen-style binary tree of RY
rotations, one uniformly controlled RY per qubit, 2^Q - 1 angles in all, computed in torch from
each sample. The tree's leaves use the full angle range (``2 atan2(b, a)``), so negative
amplitudes need no phase gates. Each uniformly controlled RY is the Gray-code sequence of
2^k RY gates and 2^k CNOTs (Mottonen et al., quant-ph/0407010), whose angles are a fixed linear
map of the tree's.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import numpy as np
import pennylane as qml
import torch

from ..errors import QkdError

# PennyLane gate -> Qiskit gate class name (qiskit.circuit.library), parameters in the same order.
NATIVE = {"RX": "RXGate", "RY": "RYGate", "RZ": "RZGate", "PhaseShift": "PhaseGate", "CNOT": "CXGate",
          "CZ": "CZGate", "SWAP": "SwapGate", "Hadamard": "HGate", "PauliX": "XGate", "PauliY": "YGate",
          "PauliZ": "ZGate", "S": "SGate", "T": "TGate", "SX": "SXGate"}
STATE_PREPS = ("AmplitudeEmbedding", "StatePrep")
# The preset pass manager's level, what pennylane-qiskit's transpile call used by default. Its layout
# keeps qubits 0..Q-1 when they need no SWAP, whatever their calibration (else VF2Layout, which
# weighs it); from level 2 the calibration is weighed always.
OPTIMIZATION_LEVEL = 1


@dataclass(frozen=True)
class Gate:
    """One gate of the structure; its angles are columns ``first .. first + n_params`` of the values."""

    name: str
    wires: tuple[int, ...]
    first: int
    n_params: int


@dataclass(frozen=True)
class Structure:
    """What the transpiled circuit depends on: gates, wires and measurements, never angle values."""

    n_qubits: int
    gates: tuple[Gate, ...]
    measurement: tuple  # ("expval", (pauli label per observable, ...)) or ("probs", wires)

    @property
    def n_params(self) -> int:
        return sum(g.n_params for g in self.gates)

    @functools.cached_property
    def digest(self) -> str:
        return hashlib.sha256(repr(self).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Parametric:
    """A tape as a structure plus its angles: ``values[b, p]`` is parameter p of sample b."""

    structure: Structure
    values: torch.Tensor  # (batch, n_params), float64; differentiable where the tape's parameters are
    batched: bool  # False: the tape had no batch dimension (values has one row)


@functools.lru_cache(maxsize=None)
def gray_code_plan(k: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """For a uniformly controlled RY with k controls: the matrix taking the 2^k target angles
    (indexed by the controls' value, first control most significant) to the Gray-code sequence's
    RY angles, and the control (0 = first) of the CNOT after each RY."""
    n = 2**k
    gray = [i ^ (i >> 1) for i in range(n)]
    signs = np.array([[(-1) ** bin(j & g).count("1") for g in gray] for j in range(n)], dtype=np.float64)
    # angles_j = sum_i signs[j, i] theta_i, and signs signs^T = n I
    to_sequence = signs / n  # theta = alpha @ (signs / n)
    controls = []
    for i in range(n):
        changed = gray[i] ^ gray[(i + 1) % n]
        bit = changed.bit_length() - 1
        controls.append(k - 1 - bit)  # bit p of the value is control k-1-p (the first is the most significant)
    return to_sequence, tuple(controls)


def ry_tree(state: torch.Tensor) -> list[torch.Tensor]:
    """The tree's angles for unit real vectors ``state`` (batch, 2^Q): per qubit k a (batch, 2^k)
    tensor, angle j rotating qubit k when qubits 0..k-1 hold the bits of j."""
    levels: list[torch.Tensor] = []
    pairs = state.reshape(state.shape[0], -1, 2)
    levels.append(_angle(pairs))  # signed: the leaves carry the signs
    norms = pairs.norm(dim=-1)
    while norms.shape[1] > 1:
        pairs = norms.reshape(norms.shape[0], -1, 2)
        levels.append(_angle(pairs))
        norms = pairs.norm(dim=-1)
    return levels[::-1]


def _angle(pairs: torch.Tensor) -> torch.Tensor:
    """2 atan2(b, a) of each pair, 0 for a zero pair, with a finite gradient there too."""
    a, b = pairs[..., 0], pairs[..., 1]
    zero = (a == 0) & (b == 0)
    return 2 * torch.atan2(b, torch.where(zero, torch.ones_like(a), a))


def _state_prep_ops(op) -> list:
    state = op.data[0] if isinstance(op.data[0], torch.Tensor) else torch.as_tensor(qml.math.toarray(op.data[0]))
    if torch.is_complex(state):
        if state.imag.abs().max() > 1e-12:
            raise QkdError(f"{op.name} with complex amplitudes cannot run batched on a Qiskit backend; "
                           f"real amplitudes only (use --per-circuit)")
        state = state.real
    state = state.to(torch.float64)
    wires = list(op.wires)
    state = state.reshape(-1, 2 ** len(wires))
    state = state / state.norm(dim=1, keepdim=True).clamp_min(1e-150)
    ops = []
    for k, alpha in enumerate(ry_tree(state)):
        target = wires[k]
        if k == 0:
            ops.append(qml.RY(alpha[:, 0], wires=target))
            continue
        to_sequence, controls = gray_code_plan(k)
        theta = alpha @ torch.as_tensor(to_sequence)
        for i, c in enumerate(controls):
            ops.append(qml.RY(theta[:, i], wires=target))
            ops.append(qml.CNOT(wires=[wires[c], target]))
    return ops


def _expand(op) -> list:
    """``op`` as gates of ``NATIVE`` (state preparation as the RY tree)."""
    if op.name in NATIVE:
        return [op]
    if op.name in STATE_PREPS:
        return _state_prep_ops(op)
    if op.name == "Rot":  # Rot(phi, theta, omega) = RZ(omega) RY(theta) RZ(phi)
        phi, theta, omega = op.data
        w = op.wires[0]
        return [qml.RZ(phi, wires=w), qml.RY(theta, wires=w), qml.RZ(omega, wires=w)]
    if op.name in ("Identity", "GlobalPhase", "Barrier"):  # a global phase changes no measurement
        return []
    if not op.has_decomposition:
        raise QkdError(f"{op.name} has no decomposition into gates a Qiskit backend runs")
    return [g for sub in op.decomposition() for g in _expand(sub)]


def _measurement(tape, wire_index: dict) -> tuple:
    mps = tape.measurements
    if all(isinstance(m, qml.measurements.ExpectationMP) for m in mps):
        labels = []
        for m in mps:
            pauli = m.obs.pauli_rep
            if pauli is None or len(pauli) != 1 or abs(next(iter(pauli.values())) - 1) > 1e-12:
                raise QkdError(f"the batched Qiskit device measures Pauli words only, not {m.obs}; use --per-circuit")
            word = next(iter(pauli))
            labels.append(tuple((wire_index[w], p) for w, p in sorted(word.items(), key=lambda t: wire_index[t[0]])))
        return ("expval", tuple(labels))
    if len(mps) == 1 and isinstance(mps[0], qml.measurements.ProbabilityMP) and mps[0].obs is None:
        wires = mps[0].wires if len(mps[0].wires) else tape.wires
        return ("probs", tuple(wire_index[w] for w in wires))
    raise QkdError("the batched Qiskit device measures either expectation values of Pauli words or one qml.probs; "
                   "use --per-circuit for other measurements")


def to_parametric(tape, wire_order) -> Parametric:
    """The tape's structure and its angles, one row per sample of its batch.

    Args:
        tape: a PennyLane tape, broadcast or not, whose parameters are torch tensors or numbers.
        wire_order: the device's wires; wire ``wire_order[i]`` becomes Qiskit qubit i.

    Returns:
        The structure (the cache key of its transpilation) and a (batch, n_params) float64 tensor,
        differentiable in the tape's torch parameters.
    """
    wire_index = {w: i for i, w in enumerate(wire_order)}
    batch = tape.batch_size or 1
    gates, columns, first = [], [], 0
    for op in tape.operations:
        for g in _expand(op):
            n = len(g.data)
            gates.append(Gate(g.name, tuple(wire_index[w] for w in g.wires), first, n))
            for value in g.data:
                v = value if isinstance(value, torch.Tensor) else torch.as_tensor(qml.math.toarray(value))
                columns.append(v.to(torch.float64).reshape(-1).expand(batch) if v.numel() == 1
                               else v.to(torch.float64).reshape(batch))
            first += n
    values = torch.stack(columns, dim=1) if columns else torch.zeros(batch, 0, dtype=torch.float64)
    structure = Structure(len(wire_order), tuple(gates), _measurement(tape, wire_index))
    return Parametric(structure, values, tape.batch_size is not None)


def to_qiskit(structure: Structure):
    """The logical circuit: ParameterVector ``theta`` in every gate angle; for probabilities, the
    measured wires into classical bits so that a result's integer is PennyLane's basis index."""
    from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
    from qiskit.circuit import ParameterVector
    from qiskit.circuit import library

    theta = ParameterVector("theta", structure.n_params)
    qc = QuantumCircuit(QuantumRegister(structure.n_qubits, "q"))
    for g in structure.gates:
        gate = getattr(library, NATIVE[g.name])(*[theta[g.first + i] for i in range(g.n_params)])
        qc.append(gate, [qc.qubits[w] for w in g.wires])
    kind, what = structure.measurement
    if kind == "probs":
        creg = ClassicalRegister(len(what), "c")
        qc.add_register(creg)
        for a, w in enumerate(what):  # PennyLane: the first wire is the most significant bit
            qc.measure(qc.qubits[w], creg[len(what) - 1 - a])
    return qc


def transpile(structure: Structure, backend, optimization_level: int):
    """The structure's circuit transpiled for ``backend`` (a preset pass manager, seeded), and for
    each of the transpiled circuit's parameters (in its order) the structure's parameter it is."""
    from qiskit.transpiler import generate_preset_pass_manager

    pm = generate_preset_pass_manager(optimization_level=optimization_level, backend=backend, seed_transpiler=0)
    isa = pm.run(to_qiskit(structure))
    return isa, np.array([p.index for p in isa.parameters], dtype=np.int64)


def size(isa) -> tuple[int, int]:
    """(depth, two-qubit gates) of a transpiled circuit: what its noise grows with."""
    return isa.depth(), sum(1 for inst in isa.data if inst.operation.num_qubits == 2)


def observables(structure: Structure):
    """The Estimator's observables, one SparsePauliOp per expectation value (Qiskit's qubit order)."""
    from qiskit.quantum_info import SparsePauliOp

    _, labels = structure.measurement
    return [SparsePauliOp.from_sparse_list([("".join(p for _, p in word), [q for q, _ in word], 1.0)],
                                           num_qubits=structure.n_qubits) for word in labels]


def probabilities_from_bits(bits, n_bits: int) -> np.ndarray:
    """(batch, 2^n) basis-state frequencies from a Sampler's BitArray of shape (batch,)."""
    arr = np.asarray(bits.array)  # (batch, shots, bytes), big-endian bytes
    ints = np.zeros(arr.shape[:2], dtype=np.int64)
    for j in range(arr.shape[-1]):
        ints = (ints << 8) | arr[..., j].astype(np.int64)
    batch, shots = ints.shape
    dim = 2**n_bits
    flat = ints + dim * np.arange(batch)[:, None]
    return np.bincount(flat.ravel(), minlength=batch * dim).reshape(batch, dim) / shots
