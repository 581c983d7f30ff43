"""A model's trainable parameters, split into those inside quantum circuits and the rest.

Why split: with an FC reduction most of a student's parameters are classical (784 -> 16 alone is
12,560), and a reader comparing students should see how much of the model the circuit is. What
counts as quantum is every weight a QNode receives: the weights of any ``qml.qnn.TorchLayer``
(qkd-pl's ``QuantumLayer`` holds one), wherever it sits in a user's module, and the tensors a
user's own module hands to a QNode it holds as an attribute (``circuit_weights``).
"""

from __future__ import annotations

import pennylane as qml
from torch import nn

from .control import ClassicalControl, WidthControl


def quantum_parameter_ids(model: nn.Module) -> set[int]:
    """``id``s of the parameters a circuit receives: TorchLayers' weights, and the parameters of a
    module that holds a QNode directly and declares them (``qkd_circuit_parameters``)."""
    ids: set[int] = set()
    for m in model.modules():
        if isinstance(m, qml.qnn.TorchLayer):
            ids |= {id(p) for p in m.parameters()}
        declared = getattr(m, "qkd_circuit_parameters", None)
        if declared:
            ids |= {id(getattr(m, name)) for name in declared}
    return ids


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Trainable parameters: ``{"classical", "quantum", "total"}``, and for a classical control also
    ``control`` (how many of the classical ones stand in for the circuit).

    Args:
        model: any ``nn.Module``.

    Returns:
        The counts, frozen parameters left out.

    Example:
        >>> layer = qml.qnn.TorchLayer(qnode, {"weights": (2, 4, 3)})
        >>> count_parameters(nn.Sequential(nn.Linear(8, 4), layer))
        {'classical': 36, 'quantum': 24, 'total': 60}
    """
    quantum_ids = quantum_parameter_ids(model)
    counts = {"classical": 0, "quantum": 0}
    for p in model.parameters():
        if p.requires_grad:
            counts["quantum" if id(p) in quantum_ids else "classical"] += p.numel()
    counts["total"] = counts["classical"] + counts["quantum"]
    controls = [m for m in model.modules() if isinstance(m, (ClassicalControl, WidthControl))]
    if controls:
        counts["control"] = sum(p.numel() for m in controls for p in m.parameters())
    return counts
