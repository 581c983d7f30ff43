"""Error mitigation of a student's readouts: what a device's noise takes, recovered where it can be.

``readout``: the assignment-matrix correction. Each measured qubit's readout is a 2x2 confusion
matrix M (``M[true, read]``: the probability of reading ``read`` when the qubit is ``true``), and
with independent readouts the read probabilities are the true ones times their tensor product.
So the true ones are the read ones times the tensor product of the inverses, applied one qubit
at a time (2^m x m work, never a 2^m x 2^m matrix). The matrices are the backend's calibration
(in the ``noisy:`` emulation, the noise model's own readout errors, as a calibration of the
device would measure them). With exact probabilities the correction removes readout errors
exactly; with shots it is unbiased but adds variance, and the corrected probabilities can dip
slightly below zero, which is left as it is (an expectation value of them is still unbiased).
Gate errors are untouched: what remains of a drop after ``readout`` is the gates'.
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
