"""Error mitigation of a student's readouts: what a device's noise takes, recovered where it can be.

``readout``: the assignment-matrix correction. Each measured qubit's readout is a 2x2 confusion
matrix M (``M[true, read]``: the probability of reading ``read`` when the qubit is ``true``), and
with independent readouts the read probabilities are the true ones times their tensor product.
So the true ones are the read ones times the tensor product of the inverses, applied one qubit
at a time (2^m x m work, never a 2^m x 2^m matrix). The matrices are the backend's calibration
(in the ``noisy:`` emulation, the noise model's own readout errors, as a calibration of the
device would measure them). With exact probabilities the correction removes readout errors
exactly; with shots it is unbiased but adds variance, and the corrected probabilities can dip
slightly below zero. Expectation values are taken from them as they are (still unbiased);
probabilities a model reads as such (``--readout probs``, a log of them) are first moved to the
nearest distribution (``nearest_distribution``). Gate errors are untouched: what remains of a
drop after ``readout`` is the gates'. In the emulation the correction inverts exactly the readout
errors the noise model applies, so its gains there are an upper bound: a real device's
calibration carries its own shot noise and drifts between calibration and job.

``zne``: zero-noise extrapolation, after the readout correction (as qiskit-ibm-runtime's
resilience level 2 pairs TREX with ZNE). The circuit runs at noise factors 1, 3 and 5 by gate
folding: every two-qubit gate G becomes G (G^-1 G)^k, k = (factor - 1) / 2, which leaves the
computation unchanged and multiplies the two-qubit gates' noise, by far the largest part of a
routed circuit's (qiskit-ibm-runtime folds the same gates). Each output (a <Z> word, or a
probability) is then extrapolated to factor 0 (``extrapolate``); the raw per-factor values are
kept so another extrapolator can be fitted to them later (``extrapolate`` on the stored array).
What ZNE cannot remove: the one-qubit gates' and the readout's leftover errors, and the shot
noise, which extrapolation amplifies (a linear fit through 1, 3, 5 weighs them 1.08, 0.33,
-0.42 at zero: the variance grows about 1.5x).
"""

from __future__ import annotations

import torch

MITIGATIONS = ("none", "readout", "zne")
ZNE_FACTORS = (1, 3, 5)
EXTRAPOLATORS = ("exponential", "linear", "richardson")


def unconfuse(probs: torch.Tensor, confusion: list[torch.Tensor]) -> torch.Tensor:
    """Read probabilities with the readout errors taken out.

    Args:
        probs: (batch, 2^m) probabilities of m classical bits, bit j of the index being bit j.
        confusion: for each bit j, its (2, 2) matrix ``M[true, read]``.

    Returns:
        (batch, 2^m) corrected probabilities (they sum to 1; entries may be slightly negative with shots).

    Example:
        >>> unconfuse(torch.tensor([[0.9, 0.1]]), [torch.tensor([[0.9, 0.1], [0.2, 0.8]])])
        tensor([[1., 0.]])
    """
    m = len(confusion)
    p = probs.reshape((-1,) + (2,) * m)  # axis 1 is the most significant bit, bit m-1
    for j, matrix in enumerate(confusion):
        axis = m - j  # bit j's axis
        inverse = torch.linalg.inv(matrix.to(p.dtype))
        p = torch.movedim(torch.movedim(p, axis, -1) @ inverse, -1, axis)  # p_true = p_read M^-1
    return p.reshape(probs.shape)


def nearest_distribution(probs: torch.Tensor) -> torch.Tensor:
    """Each row's nearest probability vector in Euclidean distance (the projection onto the simplex:
    negative entries go to zero, the rest shift by one amount so the row sums to 1; Smolin, Gambetta
    and Smith, PRL 108, 070502, do the same for density matrices)."""
    u, _ = torch.sort(probs, dim=1, descending=True)
    cumulative = u.cumsum(dim=1) - 1
    k = torch.arange(1, probs.shape[1] + 1, dtype=probs.dtype, device=probs.device)
    support = (u - cumulative / k > 0).sum(dim=1, keepdim=True)  # entries that stay positive
    shift = cumulative.gather(1, support - 1) / support
    return (probs - shift).clamp_min(0)


def extrapolate(values: torch.Tensor, factors: tuple[int, ...] = ZNE_FACTORS, how: str = "exponential",
                bound: float | None = 1.0) -> torch.Tensor:
    """Each output's value at zero noise, from its values at the noise ``factors``.

    Args:
        values: (batch, len(factors), outputs): the outputs at each factor.
        factors: the noise factors (1 is the circuit as it is).
        how: ``linear`` (a least-squares line), ``richardson`` (the polynomial through all the
            points: quadratic for three; exact for a quadratic decay, the most variance), or
            ``exponential`` (``y = a exp(-b x)``, a least-squares line through log|y|: a <Z>
            word under depolarizing noise decays so). Where an output's values change sign or
            grow with noise, an exponential cannot describe them and the linear fit is used.
        bound: clip the results to [-bound, bound] (a <Z> word's range); None to leave them.

    Returns:
        (batch, outputs) extrapolated values.

    Example:
        >>> extrapolate(torch.tensor([[[0.8], [0.4], [0.2]]]), (1, 3, 5), "linear")
        tensor([[0.9167]])
    """
    if how not in EXTRAPOLATORS:
        raise ValueError(f"unknown extrapolator {how!r}; choose one of: {', '.join(EXTRAPOLATORS)}")
    x = torch.tensor(factors, dtype=values.dtype, device=values.device)
    if how == "richardson":  # Lagrange weights at 0: sum_i y_i prod_{j != i} x_j / (x_j - x_i)
        w = torch.stack([torch.prod(torch.stack([x[j] / (x[j] - x[i]) for j in range(len(x)) if j != i]))
                         for i in range(len(x))])
        out = torch.einsum("f,bfo->bo", w, values)
    else:
        out = _line_at_zero(values, x)
        if how == "exponential":
            same_sign = (torch.sign(values) == torch.sign(values[:, :1])).all(dim=1) & (values != 0).all(dim=1)
            decays = values[:, -1].abs() < values[:, 0].abs()
            logs = _line_at_zero(values.abs().clamp_min(1e-12).log(), x)
            out = torch.where(same_sign & decays, torch.sign(values[:, 0]) * logs.exp(), out)
    return out if bound is None else out.clamp(-bound, bound)


def extrapolate_readouts(values: torch.Tensor, kind: str, factors: tuple[int, ...] = ZNE_FACTORS,
                        how: str = "exponential") -> torch.Tensor:
    """A circuit's readouts at zero noise from their values at ``factors``: <Z> words (``kind`` ``expval``)
    extrapolated as they are, within [-1, 1]; probabilities (``probs``) as their distance from the
    uniform distribution, which depolarizing noise shrinks toward zero as it shrinks a <Z> word, then
    moved to the nearest distribution."""
    if kind != "probs":
        return extrapolate(values, factors, how)
    uniform = 1.0 / values.shape[-1]
    return nearest_distribution(extrapolate(values - uniform, factors, how, bound=None) + uniform)


def _line_at_zero(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The intercept of each output's least-squares line through (x, values[:, i])."""
    xc = x - x.mean()
    slope = torch.einsum("f,bfo->bo", xc, values - values.mean(dim=1, keepdim=True)) / (xc * xc).sum()
    return values.mean(dim=1) - slope * x.mean()


def fold_two_qubit_gates(circuit, fold: int):
    """``circuit`` with each two-qubit gate G run as G (G^-1 G)^k, k = (fold - 1) / 2: the same
    computation with that gate's noise amplified (what the ``noisy:`` emulation computes as
    density matrices, and what QPU-time estimates of folded circuits are taken from)."""
    if fold < 1 or fold % 2 == 0:
        raise ValueError(f"a folding noise factor is odd and at least 1, not {fold}")
    out = circuit.copy_empty_like()
    for inst in circuit.data:
        out.append(inst)
        if inst.operation.num_qubits == 2 and inst.operation.name != "barrier":
            for _ in range((fold - 1) // 2):
                out.append(inst.operation.inverse(), inst.qubits)
                out.append(inst.operation, inst.qubits)
    return out


def readout_confusion(backend, circuit) -> list[torch.Tensor]:
    """Each classical bit's readout matrix ``M[true, read]`` as ``backend`` reports its calibration, for the
    qubit ``circuit`` (transpiled for it) measures into that bit, in classical-bit order.

    IBM backends report P(read 1 | prepared 0) and P(read 0 | prepared 1) per qubit in their
    properties (the numbers a fake backend's noise model is built from); where a backend reports only
    its target's measurement error, that error is taken as symmetric. It is the calibration the
    backend reports when this runs: a job retrieved days after it ran is corrected with today's.
    """
    measured = {circuit.find_bit(inst.clbits[0]).index: circuit.find_bit(inst.qubits[0]).index
                for inst in circuit.data if inst.operation.name == "measure"}
    props = backend.properties() if hasattr(backend, "properties") else None
    out = []
    for clbit in sorted(measured):
        q = measured[clbit]
        try:
            p01 = props.qubit_property(q, "prob_meas1_prep0")[0]
            p10 = props.qubit_property(q, "prob_meas0_prep1")[0]
        except Exception:  # noqa: BLE001 - no properties, or none for these: the target's error, symmetric
            measure = backend.target["measure"] if "measure" in backend.target.operation_names else {}
            p01 = p10 = getattr(measure.get((q,)), "error", None) or 0.0
        out.append(torch.tensor([[1 - p01, p01], [p10, 1 - p10]], dtype=torch.float64))
    return out
