"""The peers' shared student in float64 NumPy: the weights every contender loads and the logits
every contender must reproduce before it is timed (numpy only: it is imported in every venv).

The student: FC 784 -> 2^Q, amplitude encoding (the FC output normalized), LAYERS x (RX RY RZ on
every qubit, then CNOTs (w, w+1 mod Q) for Q > 2, one CNOT for Q = 2), <Z> on every qubit, a
linear head Q -> 10. Wire 0 is the most significant bit of a basis index (PennyLane's order).
"""

from __future__ import annotations

import numpy as np

LAYERS, CLASSES, PIXELS = 2, 10, 784


def shared(n: int, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """The weights, inputs and labels all contenders use."""
    rng = np.random.default_rng(seed)
    return {"fc_w": rng.normal(0, 0.05, (2**n, PIXELS)), "fc_b": rng.normal(0, 0.05, 2**n),
            "rot": rng.uniform(0, 2 * np.pi, (LAYERS, n, 3)), "head_w": rng.normal(0, 0.5, (CLASSES, n)),
            "head_b": rng.normal(0, 0.5, CLASSES), "x": rng.uniform(0, 1, (batch, PIXELS)),
            "y": rng.integers(0, CLASSES, batch)}


def _gate(state: np.ndarray, u: np.ndarray, wire: int) -> np.ndarray:
    return np.moveaxis(np.tensordot(u, state, axes=([1], [1 + wire])), 0, 1 + wire)


def _cnot(state: np.ndarray, control: int, target: int) -> np.ndarray:
    out = state.copy()
    index = [slice(None)] * state.ndim
    index[1 + control] = 1
    flipped = np.flip(state[tuple(index)], axis=1 + target if target < control else target)  # batch axis first
    out[tuple(index)] = flipped
    return out


def logits(p: dict[str, np.ndarray], x: np.ndarray | None = None) -> np.ndarray:
    x = p["x"] if x is None else x
    n = p["rot"].shape[1]
    f = x @ p["fc_w"].T + p["fc_b"]
    state = (f / np.linalg.norm(f, axis=1, keepdims=True)).astype(np.complex128).reshape((-1,) + (2,) * n)
    for layer in p["rot"]:
        for w in range(n):
            a, b, c = layer[w]
            rx = np.array([[np.cos(a / 2), -1j * np.sin(a / 2)], [-1j * np.sin(a / 2), np.cos(a / 2)]])
            ry = np.array([[np.cos(b / 2), -np.sin(b / 2)], [np.sin(b / 2), np.cos(b / 2)]])
            rz = np.diag([np.exp(-0.5j * c), np.exp(0.5j * c)])
            state = _gate(state, rz @ ry @ rx, w)
        pairs = [(0, 1)] if n == 2 else [(w, (w + 1) % n) for w in range(n)] if n > 2 else []
        for control, target in pairs:
            state = _cnot(state, control, target)
    probs = np.abs(state) ** 2
    z = np.stack([probs.take(0, axis=1 + w).reshape(len(x), -1).sum(1)
                  - probs.take(1, axis=1 + w).reshape(len(x), -1).sum(1) for w in range(n)], axis=1)
    return z @ p["head_w"].T + p["head_b"]


def check(name: str, got: np.ndarray, p: dict[str, np.ndarray], tolerance: float) -> float:
    """Refuse to time a contender whose logits differ from the reference's."""
    want = logits(p)
    err = float(np.max(np.abs(np.asarray(got, dtype=np.float64) - want)) / max(1.0, np.max(np.abs(want))))
    if not err <= tolerance:
        raise SystemExit(f"{name}: logits differ from the NumPy reference by {err:.2e} (> {tolerance:g})")
    return err
