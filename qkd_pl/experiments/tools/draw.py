"""``qkd draw``: a student's circuit as text, or as a PNG (PennyLane's own drawers)."""

from __future__ import annotations

from pathlib import Path

import pennylane as qml
import torch

from ...config import StudentConfig
from ...devices import Backend
from ...errors import QkdError


def student_circuit(cfg: StudentConfig):
    """(qnode, example inputs, weights) for drawing: inputs are ones, weights as initialized."""
    from ...circuits import QuantumLayer, n_features
    from ...students.hybrid_cnn import v1_circuit
    from ...circuits.qlayer import qnode_for

    from ...registry import is_import_path

    if is_import_path(cfg.arch):
        raise QkdError(f"--student {cfg.arch} is your own module, whose circuit qkd-pl does not know: draw it "
                       f"with qml.draw on its QNode")
    backend = Backend("default.qubit", "backprop", "drawing")
    if cfg.arch == "hybrid-cnn":
        return qnode_for(v1_circuit(cfg.qubits), cfg.qubits, backend), (torch.ones(cfg.qubits),)
    layer = QuantumLayer.v2(cfg, backend)
    inputs = torch.ones(n_features(cfg.encoding, cfg.qubits), dtype=torch.float64)
    return layer.qnode, (inputs, layer.layer.weights.detach())


def draw_text(cfg: StudentConfig, expand: bool = False) -> str:
    qnode, args = student_circuit(cfg)
    return qml.draw(qnode, level="device" if expand else "top", decimals=2)(*args)


def draw_png(cfg: StudentConfig, path: str | Path, expand: bool = False) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    qnode, args = student_circuit(cfg)
    fig, _ = qml.draw_mpl(qnode, level="device" if expand else "top", decimals=2)(*args)
    path = Path(path)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
