"""A model's trainable parameters, split into those inside quantum circuits and the rest.

Why split: with an FC reduction most of a student's parameters are classical (784 -> 16 alone is
12,560), and a reader comparing students should see how much of the model the circuit is. What
counts as quantum is every weight a QNode receives: the weights of any ``qml.qnn.TorchLayer``
(qkd-pl's ``QuantumLayer`` holds one), wherever it sits in a user's module, and the tensors a
user's own module hands to a QNode it holds as an attribute: declared in a class attribute
``qkd_circuit_parameters`` (names of its parameters), or found by ``detect_circuit_parameters``
while the module runs once (the Distiller does, on two images, before training).
"""

from __future__ import annotations

from typing import Any, Callable

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


def detect_circuit_parameters(model: nn.Module, run: Callable[[], Any]) -> int:
    """Find the parameters a module hands to a QNode itself while ``run()`` calls it, and declare
    them (``qkd_circuit_parameters`` on the module that owns them) so ``count_parameters`` counts
    them as quantum.

    Why at run time: which tensors reach a circuit is decided in ``forward``, which no reading of
    the module's attributes can see. A parameter passed as it is (``self.qnode(x, self.weights)``)
    is found; one transformed first (``self.qnode(x, 2 * self.weights)``) is not, and stays
    classical unless declared.

    Args:
        model: the module.
        run: calls the module once (on a small batch, without gradients).

    Returns:
        How many parameters outside TorchLayers it found.

    Example:
        >>> detect_circuit_parameters(student, lambda: student(images[:2]))
        1
    """
    owners = {id(p): (m, name) for m in model.modules() if not isinstance(m, qml.qnn.TorchLayer)
              for name, p in m.named_parameters(recurse=False)}
    found: dict[int, tuple[nn.Module, str]] = {}
    original = qml.QNode.__call__

    def spy(qnode, *args, **kwargs):
        for value in (*args, *kwargs.values()):
            if id(value) in owners:
                found[id(value)] = owners[id(value)]
        return original(qnode, *args, **kwargs)

    qml.QNode.__call__ = spy
    try:
        run()
    finally:
        qml.QNode.__call__ = original
    for module, name in found.values():
        declared = tuple(getattr(module, "qkd_circuit_parameters", None) or ())
        if name not in declared:
            module.qkd_circuit_parameters = (*declared, name)
    return len(found)
