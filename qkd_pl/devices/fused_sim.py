"""Batched state-vector simulation of small circuits as a handful of fused torch operations.

default.qubit applies a broadcast tape one gate at a time, and each gate costs several torch
kernels whether the state holds 16 amplitudes or 65,536. For a student's circuit (one
embedding, then layers of single-qubit rotations and CNOTs, then <Z> on every qubit) that
per-gate overhead is most of the time. Here a tape is compiled once per *structure* (gate
names, wires, which gates carry the batch) into a plan of a few fused steps:

- ``local``: every wire's run of single-qubit gates multiplied into one 2x2 matrix; the
  matrices of all wires are joined with Kronecker products into chunks of at most
  ``CHUNK_QUBITS`` wires and applied as small matrix products. The 2x2 matrices of all gates
  of one kind (RX, RZ, Rot, ...) in the whole tape are computed in one vectorized call.
- ``perm``: consecutive permutation gates (CNOT, SWAP, Toffoli, X on several wires ...)
  composed into one gather of the amplitudes.
- ``dense``: any other gate, applied by its matrix.
- measurements: the probabilities are computed once; every <Z...> is one matrix product
  with a table of signs, and marginal probabilities are sums over the other wires.

Everything is ordinary torch, so backpropagation gives exact gradients. The plan is only
built for what it understands (``plan_for`` returns None otherwise) and the device then
hands the tape to default.qubit unchanged.
"""

from __future__ import annotations

import contextvars
import math
import weakref
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pennylane as qml
import torch

CHUNK_QUBITS = 4
CDTYPE = torch.complex128  # the default; a device may run its plans in complex64 (``run_plan``)
_PRECISION: contextvars.ContextVar[torch.dtype] = contextvars.ContextVar("qkd_fused_cdtype", default=CDTYPE)
_CPU = torch.device("cpu")
# The torch device of the plan being run: its tape's parameters' (a student on CUDA runs its circuit
# there); the plan's tables and fixed matrices are made on the CPU and copied over once per device.
_DEVICE: contextvars.ContextVar[torch.device] = contextvars.ContextVar("qkd_fused_device", default=_CPU)


def _cdtype() -> torch.dtype:
    """The complex dtype of the plan being run (set by ``run_plan`` for the length of one run)."""
    return _PRECISION.get()


def _device() -> torch.device:
    return _DEVICE.get()


_MOVED: dict[tuple[int, torch.device], torch.Tensor] = {}  # (id of a plan's constant, device) -> its copy there


def _here(t: torch.Tensor) -> torch.Tensor:
    """A plan's constant on the device being run on: itself on the CPU, else its copy there, made once
    and dropped with the original (so a copy lives as long as the plan that holds the constant, and
    an id is never reused while its entry stands)."""
    device = _device()
    if t.device == device:
        return t
    key = (id(t), device)
    moved = _MOVED.get(key)
    if moved is None:
        moved = _MOVED[key] = t.to(device)
        weakref.finalize(t, _MOVED.pop, key, None)
    return moved


def _tape_device(tape) -> torch.device:
    """Where a tape's torch parameters are (the first one found); the CPU when it has none."""
    for op in tape.operations:
        for d in op.data:
            if isinstance(d, torch.Tensor):
                return d.device
    return _CPU


# --------------------------------------------------------------------------- gate matrices
def _mat(a, b, c, d) -> torch.Tensor:
    """Stack four (k,) entries into (k, 2, 2)."""
    return torch.stack([torch.stack([a, b], -1), torch.stack([c, d], -1)], -2)


def _rx(p: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(p[..., 0] / 2).to(_cdtype()), torch.sin(p[..., 0] / 2).to(_cdtype())
    return _mat(c, -1j * s, -1j * s, c)


def _ry(p: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(p[..., 0] / 2).to(_cdtype()), torch.sin(p[..., 0] / 2).to(_cdtype())
    return _mat(c, -s, s, c)


def _rz(p: torch.Tensor) -> torch.Tensor:
    e = torch.exp(-0.5j * p[..., 0].to(_cdtype()))
    zero = torch.zeros_like(e)
    return _mat(e, zero, zero, e.conj())


def _phase(p: torch.Tensor) -> torch.Tensor:
    e = torch.exp(1j * p[..., 0].to(_cdtype()))
    one, zero = torch.ones_like(e), torch.zeros_like(e)
    return _mat(one, zero, zero, e)


def _rot(p: torch.Tensor) -> torch.Tensor:
    """Rot(phi, theta, omega) = RZ(omega) RY(theta) RZ(phi), as PennyLane defines it."""
    dtype = _cdtype()
    phi, theta, omega = p[..., 0].to(dtype), p[..., 1], p[..., 2].to(dtype)
    c, s = torch.cos(theta / 2).to(dtype), torch.sin(theta / 2).to(dtype)
    return _mat(torch.exp(-0.5j * (phi + omega)) * c, -torch.exp(0.5j * (phi - omega)) * s,
                torch.exp(-0.5j * (phi - omega)) * s, torch.exp(0.5j * (phi + omega)) * c)


# name -> (number of parameters, vectorized (k, n_params) -> (k, 2, 2))
PARAMETRIC_1Q: dict[str, tuple[int, Callable[[torch.Tensor], torch.Tensor]]] = {
    "RX": (1, _rx), "RY": (1, _ry), "RZ": (1, _rz), "PhaseShift": (1, _phase), "Rot": (3, _rot),
}


# --------------------------------------------------------------------------- the plan
# Templates whose decomposition is single-qubit rotations taking consecutive rows of their
# first parameter, plus fixed gates: run without building their decomposition each call.
ROW_TEMPLATES = frozenset({"AngleEmbedding", "StronglyEntanglingLayers", "BasicEntanglerLayers"})


@dataclass(frozen=True)
class Segment:
    """Consecutive single-qubit gates of one kind whose parameters come from one op: a plain
    gate (``rows`` None: its own parameters) or rows r0..r1 of a template's parameter."""

    kind: str  # a PARAMETRIC_1Q name, "const" or "generic"
    op: int
    rows: tuple[int, int] | None
    batched: bool


class _Run:
    """What the steps of one execution share: the tape's ops, its width and batch, the views of
    template parameters, and the unbatched local steps' fused matrices (computed together)."""

    def __init__(self, plan: "Plan", ops, b: int):
        self.ops, self.n, self.b = ops, plan.n_wires, b
        self.rows = _Rows(plan, ops)
        self.fused = _fused_chunks(plan, ops, self.rows) if plan.n_local else []


@dataclass
class LocalStep:
    """Single-qubit gates, one fused 2x2 per wire; ``batched`` when any of them carries the batch."""

    gates: dict[int, list[tuple[int, int]]]  # wire -> (segment, gate within it), in order of application
    batched: bool
    segments: list[Segment]
    slot: int = -1  # unbatched steps: position among them in the vectorized products

    def apply(self, state: torch.Tensor | None, run: _Run) -> torch.Tensor:
        """One path for every local step: its chunk matrices ((B,) 2^c, 2^c; those of unbatched
        steps computed for all of them at once), applied to the state or, from |0...0>, joined
        into the product state they make."""
        if self.batched:
            local = _Local(run.n, per_wire=_wire_products(self, run.ops, run.rows))
        else:
            local = _Local(run.n, chunks=[k[self.slot] for k in run.fused])
        return local.apply(state, run.b)


@dataclass
class PermStep:
    """Permutation gates composed into one gather of the amplitudes (``new[i] = old[gather[i]]``)."""

    gather: torch.Tensor
    inverse: torch.Tensor

    def apply(self, state: torch.Tensor | None, run: _Run) -> torch.Tensor:
        return _Permute.apply(_zero_state(run.n, run.b) if state is None else state, _here(self.gather),
                              _here(self.inverse))


@dataclass
class DenseStep:
    """Any other gate by its matrix: read from the tape's op ``source`` on every run, or fixed (a
    parameter-free gate inside a template)."""

    source: int | torch.Tensor
    wires: list[int]

    def apply(self, state: torch.Tensor | None, run: _Run) -> torch.Tensor:
        if isinstance(self.source, torch.Tensor):
            matrix = _here(self.source)
        else:
            op = run.ops[self.source]
            matrix = torch.as_tensor(qml.matrix(op, wire_order=op.wires), device=_device())
        return _apply_dense(_zero_state(run.n, run.b) if state is None else state, run.n, matrix, self.wires)


Step = LocalStep | PermStep | DenseStep


@dataclass(frozen=True)
class ZProduct:
    """<Z...Z>: column ``column`` of the probabilities times the plan's sign table."""

    column: int


@dataclass(frozen=True)
class Marginal:
    """Marginal probabilities of ``wires``, in that order."""

    wires: tuple[int, ...]

    def of(self, probs: torch.Tensor, n: int) -> torch.Tensor:
        b = probs.shape[0]
        p = probs.reshape(b, *([2] * n))
        others = [1 + a for a in range(n) if a not in self.wires]
        if others:
            p = p.sum(dim=others)
        order = sorted(self.wires)
        return p.permute(0, *[1 + order.index(w) for w in self.wires]).reshape(b, 2 ** len(self.wires))


@dataclass
class Plan:
    n_wires: int
    prep: int | None  # op index of a StatePrep on all wires, first in the tape
    steps: list[Step]
    table: list[Segment]  # unbatched segments, grouped by kind, in matrix-table order
    products: torch.Tensor | None  # (L, S * n) rows of the matrix table: gate j of wire w in unbatched step s
    n_local: int  # S, the number of unbatched local steps
    row_shapes: dict[int, int]  # template op index -> parameters per gate
    measurements: list[ZProduct | Marginal]
    z_signs: torch.Tensor | None = None  # (2^n, n_z) +-1 table


def _kind(op) -> str:
    return op.name if op.name in PARAMETRIC_1Q else ("const" if op.num_params == 0 else "generic")


def _permutation(op, wire_idx: list[int], n: int) -> np.ndarray | None:
    """Gather indices g with new[i] = old[g[i]] when ``op`` is a fixed permutation of basis states."""
    if op.num_params or not op.has_matrix:
        return None
    m = np.asarray(qml.matrix(op, wire_order=op.wires))
    if not (np.all((m == 0) | (m == 1)) and np.all(m.sum(0) == 1) and np.all(m.sum(1) == 1)):
        return None
    local_from = m.argmax(1)  # new local state a comes from old local state local_from[a]
    idx = np.arange(2**n)
    shifts = [n - 1 - w for w in wire_idx]
    local = np.zeros_like(idx)
    for s in shifts:
        local = (local << 1) | ((idx >> s) & 1)
    src_local = local_from[local]
    g = idx.copy()
    for j, s in enumerate(shifts):
        bit = (src_local >> (len(shifts) - 1 - j)) & 1
        g = (g & ~(1 << s)) | (bit << s)
    return g


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _expand(k: int, op) -> list[tuple[Any, int | None]] | None:
    """(gate, template row) pairs an op stands for: itself, or a row template's decomposition,
    checked once against the rows it is assumed to read (None when the layout differs)."""
    if op.name not in ROW_TEMPLATES:
        return [(op, None)]
    gates = op.decomposition()
    params = [g for g in gates if g.num_params]
    if not params or len({g.num_params for g in params}) != 1 or len({_kind(g) for g in params}) != 1:
        return None
    data = _numpy(op.data[0])
    rows = data.reshape(*data.shape[: data.ndim - _template_rank(op)], len(params), params[0].num_params)
    for r, g in enumerate(params):
        if not np.allclose(np.stack([_numpy(d) for d in g.data], -1), rows[..., r, :]):
            return None
    out, r = [], 0
    for g in gates:
        out.append((g, r if g.num_params else None))
        r += bool(g.num_params)
    return out


def _template_rank(op) -> int:
    """Axes of a row template's first parameter that are not the batch."""
    return 1 if op.name == "AngleEmbedding" else 2 if op.name == "BasicEntanglerLayers" else 3


def plan_for(tape, wire_order: list) -> Plan | None:
    """Compile a tape's structure, or None when it holds something this simulator does not do."""
    n = len(wire_order)
    pos = {w: i for i, w in enumerate(wire_order)}
    ops = tape.operations
    prep = None
    steps: list[Step] = []
    row_shapes: dict[int, int] = {}
    pending: LocalStep | None = None

    def flush():
        nonlocal pending
        if pending is not None:
            steps.append(pending)
        pending = None

    for k, op in enumerate(ops):
        if isinstance(op, qml.StatePrep) and k == 0 and [pos.get(w) for w in op.wires] == list(range(n)):
            prep = k
            continue
        if any(w not in pos for w in op.wires):
            return None
        batched = op.batch_size is not None
        expanded = _expand(k, op)
        if expanded is None:
            return None
        for gate, row in expanded:
            if len(gate.wires) == 1 and gate.has_matrix:
                if gate is not op and not gate.num_params:  # segments read matrices from the tape's ops
                    return None
                if pending is not None and batched != pending.batched:
                    flush()
                if pending is None:
                    pending = LocalStep({}, batched, [])
                seg = Segment(_kind(gate), k, None if row is None else (row, row + 1), batched)
                last = pending.segments[-1] if pending.segments else None
                if (row is not None and last is not None and last.op == k and last.rows is not None
                        and last.rows[1] == row and last.kind == seg.kind):
                    pending.segments[-1] = seg = Segment(seg.kind, k, (last.rows[0], row + 1), batched)
                else:
                    pending.segments.append(seg)
                if row is not None:
                    row_shapes[k] = gate.num_params
                at = row - seg.rows[0] if row is not None else 0
                pending.gates.setdefault(pos[gate.wires[0]], []).append((len(pending.segments) - 1, at))
                continue
            if not gate.has_matrix or isinstance(gate, qml.operation.StatePrepBase):
                return None
            if gate is not op and gate.num_params:  # a template's parametrized multi-qubit gate
                return None
            flush()
            wires = [pos[w] for w in gate.wires]
            g = _permutation(gate, wires, n)
            if g is not None:
                g = torch.as_tensor(g)
                if steps and isinstance(steps[-1], PermStep):  # compose: new[i] = old[g1[g2[i]]]
                    g = steps.pop().gather[g]
                steps.append(PermStep(g, torch.argsort(g)))
            else:  # the matrix is read each run for a gate of the tape, fixed for one inside a template
                steps.append(DenseStep(k if gate is op else _const_matrix(gate), wires))
    flush()
    table, products, n_local = _product_table(steps, n)

    measurements, z_cols = [], []
    for m in tape.measurements:
        if isinstance(m, qml.measurements.ExpectationMP) and m.obs is not None:
            factors = m.obs.operands if isinstance(m.obs, qml.ops.Prod) else [m.obs]
            if not all(isinstance(f, qml.PauliZ) for f in factors):
                return None
            if any(w not in pos for w in m.obs.wires) or len(set(m.obs.wires)) != len(factors):
                return None
            measurements.append(ZProduct(len(z_cols)))
            z_cols.append([pos[w] for w in m.obs.wires])
        elif isinstance(m, qml.measurements.ProbabilityMP) and m.obs is None and m.mv is None:
            wires = m.wires if len(m.wires) else wire_order
            if any(w not in pos for w in wires):
                return None
            measurements.append(Marginal(tuple(pos[w] for w in wires)))
        else:
            return None
    z_signs = None
    if z_cols:
        bits = (np.arange(2**n)[:, None] >> (n - 1 - np.arange(n))[None, :]) & 1  # (2^n, n)
        signs = 1 - 2 * bits
        z_signs = torch.as_tensor(np.stack([signs[:, c].prod(1) for c in z_cols], 1), dtype=torch.float64)
    return Plan(n, prep, steps, table, products, n_local, row_shapes, measurements, z_signs)


def _seg_len(seg: Segment) -> int:
    return 1 if seg.rows is None else seg.rows[1] - seg.rows[0]


def _product_table(steps, n: int) -> tuple[list[Segment], torch.Tensor | None, int]:
    """Lay out every unbatched gate's 2x2 in one matrix table (row 0: the identity), grouped by
    kind so each kind's matrices come from one vectorized call, and index it so that L gathers
    and L - 1 batched products give every wire's fused matrix in every step."""
    local = [st for st in steps if isinstance(st, LocalStep) and not st.batched]
    if not local:
        return [], None, 0
    segs = sorted({seg for st in local for seg in st.segments}, key=lambda sg: (sg.kind, sg.op, sg.rows or (0, 0)))
    start, r = {}, 1
    for seg in segs:
        start[seg] = r
        r += _seg_len(seg)
    depth = max(len(g) for st in local for g in st.gates.values())
    idx = np.zeros((depth, len(local) * n), dtype=np.int64)
    for slot, st in enumerate(local):
        st.slot = slot
        for w, gates in st.gates.items():
            for j, (si, at) in enumerate(gates):
                idx[j, slot * n + w] = start[st.segments[si]] + at
    return segs, torch.as_tensor(idx), len(local)


def plan_key(tape, wire_order: list) -> tuple:
    """Everything a plan depends on, so that two tapes with one key compute the same function
    of their parameters: each operation's type, wires, hyperparameters (a template's rotation,
    ranges, imprimitive; control values) and parameter shapes (a template's layer count, an
    embedding's feature count; the batch axis as ``None``, since the batch size is read on every
    run), and each measurement whole. Parameter values are not in it: they are read from the
    tape on every run."""
    ops = tuple((type(op), op.name, op.wires.labels, op.batch_size is not None,
                 tuple(_shape(d, op.batch_size) for d in op.data),
                 None if type(op) in _BY_WIRES else _freeze(op.hyperparameters))
                for op in tape.operations)
    meas = tuple((type(m), m.wires.labels, None if m.obs is None else _observable_key(m.obs), m.mv is not None,
                  _freeze(getattr(m, "_eigvals", None))) for m in tape.measurements)
    return tuple(wire_order), ops, meas


# Fixed gates whose hyperparameters follow from their wires (a CNOT's control wire is its first):
# freezing those on every call would only cost time.
_BY_WIRES = frozenset({qml.CNOT, qml.CZ, qml.CY, qml.SWAP, qml.Toffoli, qml.CSWAP, qml.Hadamard, qml.PauliX,
                       qml.PauliY, qml.PauliZ, qml.S, qml.T, qml.SX, qml.Identity, qml.ISWAP, qml.ECR})


def _shape(d, batch_size: int | None) -> tuple:
    shape = tuple(qml.math.shape(d))
    return (None, *shape[1:]) if batch_size is not None and shape and shape[0] == batch_size else shape


def _observable_key(obs) -> tuple:
    """An observable with its values: observables are constants of the circuit, not inputs."""
    operands = getattr(obs, "operands", None)
    return (type(obs), obs.wires.labels, tuple(_freeze(d) for d in obs.data), _freeze(obs.hyperparameters),
            None if operands is None else tuple(_observable_key(o) for o in operands))


_PLAIN_VALUES = (str, int, float, bool, type(None), type)


def _freeze(value: Any) -> Any:
    """A hashable value equal for equal inputs: arrays by dtype, shape and bytes (their repr
    elides long arrays), containers element by element, operators by ``_observable_key``."""
    if isinstance(value, _PLAIN_VALUES):  # most hyperparameters: the fast path (this runs on every call)
        return value
    if isinstance(value, (torch.Tensor, np.ndarray)) or type(value).__module__.startswith(("jax", "autograd")):
        a = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value)
        return ("array", a.dtype.str, a.shape, a.tobytes())
    if isinstance(value, dict):
        return ("dict", tuple(sorted((str(k), _freeze(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_freeze(v) for v in value))
    if isinstance(value, qml.wires.Wires):
        return ("wires", value.labels)
    if isinstance(value, qml.operation.Operator):
        return _observable_key(value)
    try:
        hash(value)
    except TypeError:
        return ("repr", type(value), repr(value))
    return value


# --------------------------------------------------------------------------- execution
_CONST: dict[tuple, torch.Tensor] = {}


def _const_matrix(op) -> torch.Tensor:
    """A parameter-free gate's matrix on its own wires, computed once per kind of gate."""
    key = (type(op), op.name, len(op.wires), _freeze(op.hyperparameters), _cdtype(), _device())
    if key not in _CONST:
        _CONST[key] = torch.as_tensor(np.asarray(qml.matrix(op, wire_order=op.wires)), dtype=_cdtype(),
                                      device=_device())
    return _CONST[key]


def _real(d) -> torch.Tensor:
    return d.to(torch.float64) if isinstance(d, torch.Tensor) else torch.as_tensor(d, dtype=torch.float64,
                                                                                     device=_device())


def _single_matrix(op) -> torch.Tensor:
    """One gate's 2x2 (or (B, 2, 2) when broadcast)."""
    if op.name in PARAMETRIC_1Q:
        return PARAMETRIC_1Q[op.name][1](torch.stack([_real(d) for d in op.data], -1))
    if op.num_params == 0:
        return _const_matrix(op)
    return torch.as_tensor(qml.matrix(op, wire_order=op.wires), device=_device()).to(_cdtype())


class _Rows:
    """Per-call view of row templates' parameters as (..., gates, parameters per gate)."""

    def __init__(self, plan: Plan, ops):
        self.plan, self.ops, self.cache = plan, ops, {}

    def __call__(self, k: int) -> torch.Tensor:
        if k not in self.cache:
            op = self.ops[k]
            d = _real(op.data[0])
            self.cache[k] = d.reshape(*d.shape[: d.dim() - _template_rank(op)], -1, self.plan.row_shapes[k])
        return self.cache[k]


def _segment_params(seg: Segment, ops, rows: _Rows) -> torch.Tensor:
    """(..., gates, parameters) of a parametric segment."""
    if seg.rows is None:
        return torch.stack([_real(d) for d in ops[seg.op].data], -1).unsqueeze(-2)
    return rows(seg.op)[..., seg.rows[0]:seg.rows[1], :]


def _segment_matrices(seg: Segment, ops, rows: _Rows) -> torch.Tensor:
    """(..., gates, 2, 2) of one segment."""
    if seg.kind in PARAMETRIC_1Q:
        return PARAMETRIC_1Q[seg.kind][1](_segment_params(seg, ops, rows))
    return _single_matrix(ops[seg.op]).unsqueeze(-3)


def _matrix_table(plan: Plan, ops, rows: _Rows) -> torch.Tensor:
    """(1 + gates, 2, 2): the identity, then every unbatched gate's matrix, one kind at a time."""
    parts = [_eye()[None]]
    i = 0
    while i < len(plan.table):
        j = i
        while j < len(plan.table) and plan.table[j].kind == plan.table[i].kind:
            j += 1
        kind = plan.table[i].kind
        if kind in PARAMETRIC_1Q:
            p = torch.cat([_segment_params(seg, ops, rows) for seg in plan.table[i:j]])
            parts.append(PARAMETRIC_1Q[kind][1](p))
        else:
            parts += [_segment_matrices(seg, ops, rows) for seg in plan.table[i:j]]
        i = j
    return torch.cat(parts)


def _fused_chunks(plan: Plan, ops, rows: _Rows) -> list[torch.Tensor]:
    """For every chunk of wires, (S, 2^c, 2^c): the Kronecker product of the fused per-wire
    matrices of each unbatched local step, all steps computed together."""
    table = _matrix_table(plan, ops, rows)
    products = _here(plan.products)
    prod = table[products[0]]
    for idx in products[1:]:
        prod = table[idx] @ prod
    prod = prod.reshape(plan.n_local, plan.n_wires, 2, 2)
    out = []
    for start, size in _chunks(plan.n_wires):
        k = prod[:, start]
        for w in range(start + 1, start + size):
            k = _kron(k, prod[:, w])
        out.append(k)
    return out


def _wire_products(step: LocalStep, ops, rows: _Rows) -> dict[int, torch.Tensor]:
    """A broadcast step's per-wire matrices ((B,) 2, 2), later gates on the left."""
    mats = [_segment_matrices(seg, ops, rows) for seg in step.segments]
    out = {}
    for w, gates in step.gates.items():
        m = None
        for si, at in gates:
            g = mats[si][..., at, :, :]
            m = g if m is None else g @ m
        out[w] = m
    return out


def _chunks(n: int) -> list[tuple[int, int]]:
    """Split n wires into nearly equal runs of at most CHUNK_QUBITS: (start, length)."""
    k = math.ceil(n / CHUNK_QUBITS)
    sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
    starts = np.cumsum([0] + sizes[:-1])
    return list(zip(starts.tolist(), sizes))


def _kron(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Kronecker product over the last two axes, broadcasting leading (batch) axes."""
    out = a[..., :, None, :, None] * b[..., None, :, None, :]
    return out.reshape(*out.shape[:-4], a.shape[-2] * b.shape[-2], a.shape[-1] * b.shape[-1])


_EYES = {dtype: torch.eye(2, dtype=dtype) for dtype in (torch.complex128, torch.complex64)}


def _eye() -> torch.Tensor:
    return _here(_EYES[_cdtype()])


class _Permute(torch.autograd.Function):
    """Gather amplitudes by a permutation; its gradient is the gather by the inverse permutation
    (autograd's default for indexing, a scatter-add, is several times slower)."""

    @staticmethod
    def forward(ctx, state, perm, inverse):
        ctx.save_for_backward(inverse)
        return state[:, perm]

    @staticmethod
    def backward(ctx, grad):
        (inverse,) = ctx.saved_tensors
        return grad[:, inverse], None, None


def _apply_chunk(state: torch.Tensor, n: int, start: int, size: int, k: torch.Tensor) -> torch.Tensor:
    """state (B, 2^n); k (2^size, 2^size), or (B, ...) per sample, acting on wires start..start+size-1."""
    b, a, s, r = state.shape[0], 2**start, 2**size, 2 ** (n - start - size)
    # The first and last chunks are plain matrix products on the state as it lies in memory; an
    # einsum would permute it into a copy and back (a fifth of an 8-qubit step).
    if r == 1:
        return (state.reshape(b, a, s) @ k.transpose(-1, -2)).reshape(b, 2**n)
    if a == 1:
        return (k @ state.reshape(b, s, r)).reshape(b, 2**n)
    view = state.reshape(b, a, s, r)
    view = torch.einsum("bij,bajr->bair" if k.dim() == 3 else "ij,bajr->bair", k, view)
    return view.reshape(b, 2**n)


class _Local:
    """The operator of one local step: per-wire matrices ((B,) 2, 2) or per-chunk matrices
    ((B,) 2^c, 2^c; None where no gate acts), each view made from the other only if needed."""

    def __init__(self, n: int, per_wire: dict[int, torch.Tensor] | None = None,
                 chunks: list[torch.Tensor | None] | None = None):
        self.n, self.per_wire, self._chunks = n, per_wire, chunks

    def chunks(self) -> list[torch.Tensor | None]:
        if self._chunks is None:
            self._chunks = []
            for start, size in _chunks(self.n):
                mats = [self.per_wire.get(w) for w in range(start, start + size)]
                k = None
                if any(m is not None for m in mats):
                    for m in mats:
                        m = _eye() if m is None else m
                        k = m if k is None else _kron(k, m)
                self._chunks.append(k)
        return self._chunks

    def columns(self) -> list[torch.Tensor]:
        """What it makes of |0...0>, as factors: first columns of the wires' (or chunks') matrices."""
        if self.per_wire is not None:
            return [self.per_wire[w][..., :, :1] if w in self.per_wire else _eye()[:, :1] for w in range(self.n)]
        return [k[..., :, :1] if k is not None else _basis_zero(size) for (_, size), k in zip(_chunks(self.n),
                                                                                              self.chunks())]

    def apply(self, state: torch.Tensor | None, b: int) -> torch.Tensor:
        if state is None:  # a product state: no matrix product at all
            v = None
            for col in self.columns():
                v = col if v is None else _kron(v, col)
            return v.reshape(-1, 2**self.n).expand(b, -1) if v.dim() == 2 else v.reshape(b, 2**self.n)
        for (start, size), k in zip(_chunks(self.n), self.chunks()):
            if k is not None:
                state = _apply_chunk(state, self.n, start, size, k)
        return state


def _basis_zero(size: int) -> torch.Tensor:
    col = torch.zeros(2**size, 1, dtype=_cdtype(), device=_device())
    col[0, 0] = 1
    return col


def _apply_dense(state: torch.Tensor, n: int, matrix: torch.Tensor, wires: list[int]) -> torch.Tensor:
    b, k = state.shape[0], len(wires)
    psi = state.reshape(b, *([2] * n))
    axes = [1 + w for w in wires]
    rest = [a for a in range(1, n + 1) if a not in axes]
    psi = psi.permute(0, *axes, *rest).reshape(b, 2**k, -1)
    m = matrix.to(_cdtype())
    psi = torch.einsum("bij,bjr->bir", m, psi) if m.dim() == 3 else torch.einsum("ij,bjr->bir", m, psi)
    psi = psi.reshape(b, *([2] * n))
    inverse = np.argsort([0, *axes, *rest]).tolist()
    return psi.permute(*inverse).reshape(b, 2**n)


def run_plan(plan: Plan, tape, cdtype: torch.dtype = CDTYPE) -> tuple:
    """Execute a compiled plan on a tape's current parameters in ``cdtype`` (complex128, or
    complex64 for qkd.fused32); returns PennyLane-shaped results (float64, or float32)."""
    token, where = _PRECISION.set(cdtype), _DEVICE.set(_tape_device(tape))
    try:
        return _run(plan, tape)
    finally:
        _DEVICE.reset(where)
        _PRECISION.reset(token)


def _run(plan: Plan, tape) -> tuple:
    ops, n = tape.operations, plan.n_wires
    batch = tape.batch_size
    b = batch or 1
    state = None
    if plan.prep is not None:
        state = torch.as_tensor(ops[plan.prep].data[0], device=_device()).to(_cdtype()).reshape(-1, 2**n)
        if state.shape[0] != b:
            state = state.expand(b, -1)
    run = _Run(plan, ops, b)
    for step in plan.steps:  # state None: still |0...0>, which the first step may exploit
        state = step.apply(state, run)
    if state is None:
        state = _zero_state(n, b)
    probs = state.real**2 + state.imag**2
    z = probs @ _here(plan.z_signs).to(probs.dtype) if plan.z_signs is not None else None
    results = []
    for m in plan.measurements:
        r = z[:, m.column] if isinstance(m, ZProduct) else m.of(probs, n)
        results.append(r if batch else r[0])
    return tuple(results) if len(results) > 1 else results[0]


def _zero_state(n: int, b: int) -> torch.Tensor:
    state = torch.zeros(b, 2**n, dtype=_cdtype(), device=_device())
    state[:, 0] = 1
    return state
