"""A transpiled circuit under its backend's noise model, as batched torch density-matrix steps.

Why: Aer simulates an IBM fake backend's noise one parameter set at a time, about 15 ms per
4-qubit student circuit on fake_brisbane here, and not differentiably. The same computation as
torch operations on a batch of density matrices over the circuit's active qubits runs a whole
test batch at once, gives exact noisy probabilities (shots are then sampled from them, as Aer
samples), and can be differentiated, which noise-aware fine-tuning needs.

What it models is what Aer's ``NoiseModel.from_backend`` holds for an unscheduled circuit: a
quantum error after each gate on the gate's qubits (depolarizing composed with thermal
relaxation, from the backend's calibrations) and a readout error per measured qubit. The
relaxation pass for idle ``delay`` instructions has nothing to act on in an unscheduled
circuit, so it is not modelled; a circuit with delays is refused. Checked against Aer's own
density-matrix simulation (tests/devices/test_noisy_dm.py).

Conventions: Qiskit matrices of a k-qubit instruction are little-endian in the instruction's
qubit order; the density matrix is a tensor (batch, row axes..., column axes...) with one axis
per active qubit, so a k-qubit matrix acts on the axes of its qubits taken last-first.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from ..errors import QkdError

PARAMETRIC = ("rz", "rx", "ry", "p")
IGNORED = ("barrier",)


@dataclass(frozen=True)
class Step:
    """One instruction: a fixed superoperator, or a parametric rotation (angle = coeffs . values + offset)."""

    qubits: tuple[int, ...]  # local indices, in the instruction's order
    superop: torch.Tensor | None = None  # (4^k, 4^k) acting on (row..., col...) little-endian indices
    gate: str | None = None  # parametric: its name
    coeffs: torch.Tensor | None = None  # one per column of the values
    offset: float = 0.0
    error: torch.Tensor | None = None  # the superoperator of the error after a parametric gate
    run: tuple["Step", ...] = ()  # a run of one-qubit steps on one qubit, applied as one superoperator
    before: tuple[tuple["Step", ...], ...] = ()  # two-qubit step: each qubit's one-qubit run before it


def _superop_of_unitary(u: np.ndarray) -> np.ndarray:
    return np.kron(u, u.conj())  # S[(r, c), (r', c')] = U[r, r'] conj(U[c, c'])


def _superop_of_error(error) -> np.ndarray:
    from qiskit.quantum_info import Kraus

    key = id(error)
    if key not in _ERROR_CACHE:  # a noise model holds one error object per (gate, qubits)
        kraus = Kraus(error.to_quantumchannel()).data
        _ERROR_CACHE[key] = (error, sum(np.kron(k, k.conj()) for k in kraus))
    return _ERROR_CACHE[key][1]


_ERROR_CACHE: dict[int, tuple] = {}  # id -> (the error, kept alive so its id stays its own; its superoperator)


def _linear(expr, index: dict) -> tuple[np.ndarray, float]:
    """An angle that is a linear function of the circuit's parameters: its coefficients and offset."""
    coeffs = np.zeros(len(index))
    if not hasattr(expr, "parameters"):
        return coeffs, float(expr)
    for p in expr.parameters:
        g = expr.gradient(p)
        if hasattr(g, "parameters") and g.parameters:
            raise QkdError(f"a transpiled angle is not linear in the circuit's parameters ({expr})")
        coeffs[index[p]] = float(g)
    return coeffs, float(expr.bind({p: 0.0 for p in expr.parameters}).numeric())


class NoisyCircuit:
    """``circuit`` (an ISA circuit, parameters named by ``index``) under ``noise_model``.

    Args:
        circuit: a transpiled circuit; its measurements (if any) say which classical bit each
            measured qubit writes.
        noise_model: an Aer ``NoiseModel`` (e.g. ``NoiseModel.from_backend(fake_backend)``), or
            None for a noiseless run of the same circuit.
        index: each circuit parameter's column in the values passed to ``probabilities``.
        dtype: complex128 (default) or complex64.
        fold: the noise factor of zero-noise extrapolation (odd): each two-qubit gate G runs as
            G (G^-1 G)^k, k = (fold - 1) / 2, each with its error (devices/mitigation.py).
    """

    def __init__(self, circuit, noise_model, index: dict, dtype: torch.dtype = torch.complex128, fold: int = 1):
        if fold < 1 or fold % 2 == 0:
            raise ValueError(f"a folding noise factor is odd and at least 1, not {fold}")
        from qiskit.quantum_info import Operator

        self.dtype = dtype
        used = [circuit.find_bit(q).index for inst in circuit.data if inst.operation.name not in IGNORED
                for q in inst.qubits]
        self.physical = sorted(set(used))
        local = {q: i for i, q in enumerate(self.physical)}
        self.n = len(self.physical)
        self.steps: list[Step] = []
        self.measured: dict[int, int] = {}  # clbit -> local qubit
        readout: dict[int, np.ndarray] = {}
        for inst in circuit.data:
            op, name = inst.operation, inst.operation.name
            phys = tuple(circuit.find_bit(q).index for q in inst.qubits)
            qubits = tuple(local[q] for q in phys)
            if name in IGNORED:
                continue
            if name == "measure":
                clbit = circuit.find_bit(inst.clbits[0]).index
                self.measured[clbit] = qubits[0]
                readout[qubits[0]] = _readout(noise_model, phys)
                continue
            if name in ("delay", "reset") or getattr(op, "condition", None) is not None:
                raise QkdError(f"the noisy emulation does not model {name!r} instructions")
            error = _error(noise_model, name, phys)
            if name in PARAMETRIC and any(hasattr(p, "parameters") and p.parameters for p in op.params):
                coeffs, offset = _linear(op.params[0], index)
                self.steps.append(Step(qubits, gate=name, coeffs=torch.as_tensor(coeffs), offset=offset,
                                       error=None if error is None else torch.as_tensor(error, dtype=dtype)))
                continue
            u = _unitary(op, Operator)
            s = _superop_of_unitary(u)
            if error is not None:
                s = error @ s
            if fold > 1 and len(qubits) > 1:  # G (G^-1 G)^k: the same gate, its noise amplified
                back = _superop_of_unitary(u.conj().T)
                back = error @ back if error is not None else back
                s = s @ np.linalg.matrix_power(back @ s, (fold - 1) // 2)
            self.steps.append(Step(qubits, superop=torch.as_tensor(s, dtype=dtype)))
        # readout[q][true, measured]: the probability of reading ``measured`` when the qubit is ``true``
        self.readout = {q: torch.as_tensor(m, dtype=torch.float64) for q, m in readout.items()}
        self.steps = _fuse(self.steps)
        self.device = torch.device("cpu")

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "NoisyCircuit":
        """The same circuit computed on ``device`` (a GPU runs the density-matrix steps; inputs are
        moved there and the probabilities come back to the inputs' device), in ``dtype``
        (complex128 or complex64: the density matrices' and superoperators' dtype)."""
        self.device = torch.device(device) if device is not None else self.device
        self.dtype = dtype or self.dtype
        self.steps = [_step_to(s, self.device, self.dtype) for s in self.steps]
        self.readout = {q: m.to(self.device) for q, m in self.readout.items()}
        return self

    def density_matrices(self, values: torch.Tensor) -> torch.Tensor:
        """(batch, 2^n, 2^n) final states over the active qubits (local qubit 0 the most significant)."""
        batch, n = values.shape[0], self.n
        rho = torch.zeros((batch,) + (2,) * (2 * n), dtype=self.dtype, device=self.device)
        rho[(slice(None),) + (0,) * (2 * n)] = 1.0
        labels = list(range(2 * n))  # rho's axes after the batch: row axes 0..n-1, column axes n..2n-1
        values = values.to(self.device, torch.float64)
        for step in self.steps:  # after _fuse: one-qubit runs and (fused) multi-qubit superoperators
            if step.before:
                superop = self._fused_superop(step, values)
            elif step.run:
                superop = self._run_superop(step.run, values)
            else:
                superop = step.superop
            rho, labels = self._apply(rho, labels, superop, step.qubits)
        rho = rho.permute([0] + [1 + labels.index(a) for a in range(2 * n)])
        return rho.reshape(batch, 2**n, 2**n)

    def _run_superop(self, run: tuple[Step, ...], values: torch.Tensor) -> torch.Tensor:
        """One (4, 4) or per-sample (batch, 4, 4) superoperator for a run of one-qubit steps."""
        total = None
        for step in run:
            if step.superop is not None:
                m = step.superop
            else:
                u = _rotation(step.gate, values @ step.coeffs + step.offset, self.dtype)  # (batch, 2, 2)
                m = torch.einsum("bij,bkl->bikjl", u, u.conj()).reshape(-1, 4, 4)
                if step.error is not None:
                    m = step.error @ m
            total = m if total is None else m @ total
        return total

    def _fused_superop(self, step: Step, values: torch.Tensor) -> torch.Tensor:
        """A two-qubit step's superoperator after the one-qubit runs that lead into it: one pass over
        the density matrix instead of three (per sample where a run is data-dependent)."""
        eye = torch.eye(4, dtype=self.dtype, device=self.device)
        first, second = (self._run_superop(run, values) if run else eye for run in step.before)
        # first: [.., r0, c0, r0', c0'], second: [.., r1, c1, r1', c1'] -> [.., (r1 r0) (c1 c0), (r1' r0') (c1' c0')]
        a = first.reshape(first.shape[:-2] + (2, 2, 2, 2))
        b = second.reshape(second.shape[:-2] + (2, 2, 2, 2))
        if a.dim() != b.dim():
            a, b = (a.expand(values.shape[0], *a.shape) if a.dim() == 4 else a,
                    b.expand(values.shape[0], *b.shape) if b.dim() == 4 else b)
        both = torch.einsum("...ijkl,...mnop->...minjokpl", a, b).reshape(a.shape[:-4] + (16, 16))
        return step.superop @ both

    def confusion(self) -> list[torch.Tensor]:
        """Each classical bit's readout matrix ``M[true, read]``, in classical-bit order (as ``probabilities``
        indexes them): what a calibration of the device's readouts would measure."""
        return [self.readout[self.measured[c]] for c in sorted(self.measured)]

    def probabilities(self, values: torch.Tensor) -> torch.Tensor:
        """(batch, 2^m) probabilities of the m measured classical bits, readout errors included,
        indexed so that classical bit j is bit j of the index (Qiskit's integer of a bitstring)."""
        rho = self.density_matrices(values)
        n = self.n
        diag = torch.diagonal(rho, dim1=1, dim2=2).real.clamp_min(0).reshape((-1,) + (2,) * n)
        for q, m in self.readout.items():  # true -> read, one measured qubit at a time
            diag = torch.movedim(torch.movedim(diag, 1 + q, -1) @ m.to(diag.dtype), -1, 1 + q)
        clbits = sorted(self.measured)
        keep = [self.measured[c] for c in clbits]
        rest = [q for q in range(n) if q not in keep]
        if rest:
            diag = diag.sum(dim=[1 + q for q in rest])
            keep_order = sorted(keep)
            keep = [keep_order.index(q) for q in keep]
        # axes now in local-qubit order of the kept qubits; the index's bit j is classical bit j
        perm = [1 + keep[j] for j in reversed(range(len(clbits)))]  # most significant bit first
        return diag.permute([0, *perm]).reshape(diag.shape[0], -1).to(values.device)

    def _apply(self, rho: torch.Tensor, labels: list[int], superop: torch.Tensor,
               qubits: tuple[int, ...]) -> tuple[torch.Tensor, list[int]]:
        """``superop`` on ``qubits``; the result keeps the acted-on axes last (``labels`` says where
        each axis is), so each step costs one copy of the density matrix, not two, and none when
        the next step acts on the same qubits."""
        n, k = self.n, len(qubits)
        order = list(reversed(qubits))  # little-endian matrices: the last qubit is the most significant
        target = order + [n + q for q in order]
        new = [a for a in labels if a not in target] + target
        if new != labels:
            rho = rho.permute([0] + [1 + labels.index(a) for a in new])
        shape = rho.shape
        flat = rho.reshape(shape[0], -1, 4**k)
        out = flat @ superop.transpose(-1, -2)  # (4^k, 4^k), or one per sample (batch, 4^k, 4^k)
        return out.reshape(shape), new

def _step_to(step: Step, device: torch.device, dtype: torch.dtype) -> Step:
    def move(t: torch.Tensor | None, complex_dtype: torch.dtype | None = None) -> torch.Tensor | None:
        return None if t is None else t.to(device, complex_dtype)

    return replace(step, superop=move(step.superop, dtype), coeffs=move(step.coeffs), error=move(step.error, dtype),
                   run=tuple(_step_to(s, device, dtype) for s in step.run),
                   before=tuple(tuple(_step_to(s, device, dtype) for s in run) for run in step.before))


_UNITARY_CACHE: dict[str, np.ndarray] = {}


def _unitary(op, operator) -> np.ndarray:
    """The matrix of a fixed gate (cached by name for the parameterless basis gates sx, x, ecr, cz, cx)."""
    if op.params:
        return operator(op).data
    if op.name not in _UNITARY_CACHE:
        _UNITARY_CACHE[op.name] = operator(op).data
    return _UNITARY_CACHE[op.name]


def _fuse(steps: list[Step]) -> list[Step]:
    """Runs of one-qubit steps on each qubit (which commute with those on other qubits) as one step
    each: a 4x4 superoperator (per sample where a rotation is data-dependent) applied in one pass
    over the density matrix instead of one pass per gate; a run that leads into a two-qubit gate
    is folded into that gate's 16x16 superoperator (``Step.before``)."""
    out: list[Step] = []
    pending: dict[int, list[Step]] = {}

    def flush(q: int) -> None:
        run = pending.pop(q, [])
        if run:
            out.append(Step((q,), run=tuple(run)))

    for step in steps:
        if len(step.qubits) == 1:
            pending.setdefault(step.qubits[0], []).append(step)
            continue
        if len(step.qubits) == 2 and step.superop is not None:
            before = tuple(tuple(pending.pop(q, [])) for q in step.qubits)
            out.append(replace(step, before=before) if any(before) else step)
            continue
        for q in step.qubits:
            flush(q)
        out.append(step)
    for q in sorted(pending):
        flush(q)
    return out


def _rotation(gate: str, angle: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    half = angle.to(torch.float64) / 2
    c, s = torch.cos(half).to(dtype), torch.sin(half).to(dtype)
    zero = torch.zeros_like(c)
    if gate == "rz":
        e = torch.exp(-1j * half.to(dtype))
        return torch.stack([torch.stack([e, zero], -1), torch.stack([zero, e.conj()], -1)], -2)
    if gate == "p":
        one = torch.ones_like(c)
        return torch.stack([torch.stack([one, zero], -1), torch.stack([zero, torch.exp(1j * angle.to(dtype))], -1)], -2)
    if gate == "rx":
        return torch.stack([torch.stack([c, -1j * s], -1), torch.stack([-1j * s, c], -1)], -2)
    return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)  # ry


def _error(noise_model, name: str, phys: tuple[int, ...]) -> np.ndarray | None:
    if noise_model is None:
        return None
    local = noise_model._local_quantum_errors.get(name, {}).get(phys)
    error = local if local is not None else noise_model._default_quantum_errors.get(name)
    return None if error is None else _superop_of_error(error)


def _readout(noise_model, phys: tuple[int, ...]) -> np.ndarray:
    if noise_model is None:
        return np.eye(2)
    err = noise_model._local_readout_errors.get(phys, noise_model._default_readout_error)
    return np.eye(2) if err is None else np.asarray(err.probabilities, dtype=np.float64)


def sample(probabilities: torch.Tensor, shots: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Frequencies of ``shots`` draws from each row of ``probabilities`` (as a device would count them)."""
    p = probabilities.detach().clamp_min(0)
    p = p / p.sum(dim=1, keepdim=True)
    draws = torch.multinomial(p, shots, replacement=True, generator=generator)
    dim = p.shape[1]
    flat = draws + dim * torch.arange(p.shape[0])[:, None]
    counts = torch.bincount(flat.reshape(-1), minlength=p.shape[0] * dim).reshape(p.shape[0], dim)
    return counts.to(torch.float64) / shots


def z_signs(n_bits: int, words: list[tuple[int, ...]]) -> torch.Tensor:
    """(2^n, len(words)): the eigenvalue of each Z word (bits it acts on) at each basis index."""
    idx = torch.arange(2**n_bits)
    return torch.stack([(-1.0) ** sum(((idx >> b) & 1) for b in word).to(torch.float64) if word
                        else torch.ones(2**n_bits, dtype=torch.float64) for word in words], dim=1)
