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
"""

from __future__ import annotations

import torch

MITIGATIONS = ("none", "readout")


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
