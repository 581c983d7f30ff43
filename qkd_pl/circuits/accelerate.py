"""The traced fast path for a user's own ``qml.qnn.TorchLayer``s.

Why: PennyLane's compiled paths do not reach Torch users (Catalyst's ``qjit`` supports JAX), and
a TorchLayer's every call rebuilds a tape and runs the transform pipeline, which on qkd.fused
costs more than the circuit's arithmetic. qkd-pl's own students reach the traced graphs of
compiled.py through ``QuantumLayer``; ``accelerate`` gives a researcher's plain TorchLayer the
same path in place: its ``forward`` becomes a ``CompiledLayer`` over its unpatched forward, with
the same guard (a graph is trusted only after it matches the QNode on probes; a circuit that
branches on values stays on its QNode with one warning). Its parameters, state dict and
checkpoints are untouched, and a layer on another device keeps calling its QNode.
"""

from __future__ import annotations

import pennylane as qml
from torch import nn

from .compiled import CompiledLayer, enabled
from .qlayer import QuantumLayer


def accelerate(module: nn.Module) -> int:
    """Give every plain ``qml.qnn.TorchLayer`` inside ``module`` the traced fast path.

    Args:
        module: any ``nn.Module`` (the TorchLayer itself, or a model holding some).

    Returns:
        How many layers it patched now (0 with ``QKD_COMPILE=off``; layers inside a qkd-pl
        ``QuantumLayer`` and layers patched before are left as they are).

    Example:
        >>> dev = qml.device("qkd.fused", wires=4)
        >>> layer = qml.qnn.TorchLayer(qml.QNode(circuit, dev), {"weights": (2, 4, 3)})
        >>> accelerate(nn.Sequential(nn.Linear(16, 4), layer))
        1
    """
    if not enabled():
        return 0
    inside = {id(m.layer) for m in module.modules() if isinstance(m, QuantumLayer)}
    patched = 0
    for m in module.modules():
        if isinstance(m, qml.qnn.TorchLayer) and id(m) not in inside and not is_accelerated(m):
            m.forward = CompiledLayer(m, direct=type(m).forward.__get__(m))
            patched += 1
    return patched


def is_accelerated(layer: nn.Module) -> bool:
    return isinstance(layer.__dict__.get("forward"), CompiledLayer)
