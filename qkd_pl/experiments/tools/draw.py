"""``qkd draw``: a student's circuit as text, or as a PNG (PennyLane's own drawers), and with
``--device ibm:<backend>`` what it costs there: transpiled depth, two-qubit gates, estimated
fidelity (devices/hardware_cost.py)."""

from __future__ import annotations

from pathlib import Path

import pennylane as qml

from ...config import StudentConfig
from ..single.hardware import student_circuit


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
