"""``qkd backends``: what each device can do here, and how fast it runs a 4-qubit student.

Speed is measured on the spot (not quoted), on the same student for every device: a
FC -> amplitude -> strong(2 layers) -> <Z> model on 28x28 inputs. Exact simulators are timed
on a training step (forward + backward), shot-based ones on evaluation (forward only), since
that is what each is used for.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from ..config import StudentConfig
from ..devices import EXACT, installed, resolve_backend
from ..devices.backends import DEFAULT_SHOTS
from ..errors import QkdError
from ..students import QuantumStudent

# device, training?, batch for the timing, maximum qubits (None: memory-bound)
ROWS = [
    ("default.qubit", True, 256), ("lightning.qubit", True, 4), ("lightning.kokkos", True, 4),
    ("lightning.gpu", True, 4), ("qiskit.aer", False, 16), ("ibm:fake_manila", False, 8),
    ("ibm:least_busy", False, 0),
]


def measure(device: str, train: bool, batch: int, qubits: int = 4) -> float:
    torch.manual_seed(0)
    backend = resolve_backend(device, qubits, None if device in EXACT else DEFAULT_SHOTS)
    model = QuantumStudent(StudentConfig(qubits=qubits), backend, (1, 28, 28), 10, torch.zeros(1), torch.ones(1))
    x = torch.rand(batch, 1, 28, 28)
    for rep in range(2):  # the first pass builds and caches; time the second
        t0 = time.perf_counter()
        if train:
            model(x).sum().backward()
        else:
            with torch.no_grad():
                model(x)
        elapsed = time.perf_counter() - t0
    return batch / elapsed


def backends_table(measure_speed: bool = True) -> list[dict[str, Any]]:
    rows = []
    for device, train, batch in ROWS:
        row = {"device": device, "installed": installed(device.split(":")[0] if ":" in device else device),
               "use": "train + evaluate" if train else "evaluate",
               "shots": "no (exact)" if train else f"yes (default {DEFAULT_SHOTS})",
               "gradients": EXACT.get(device, "none (evaluation only)"),
               "broadcasting": "yes" if device == "default.qubit" else "no (one circuit per sample)",
               "max_qubits": _max_qubits(device), "samples_per_s": None, "note": ""}
        if device == "ibm:least_busy":
            row["note"] = "needs QISKIT_IBM_TOKEN or a saved account; not measured here"
        elif not row["installed"]:
            row["note"] = "not installed here"
        elif measure_speed:
            try:
                row["samples_per_s"] = measure(device, train, batch)
            except QkdError as exc:
                row["note"] = str(exc)
        rows.append(row)
    return rows


def _max_qubits(device: str) -> str:
    if device.startswith("ibm:fake_"):
        from ..devices import ibm

        return str(ibm.fake_backend(device.split(":", 1)[1]).num_qubits)
    if device.startswith("ibm:"):
        return "the backend's"
    return "memory-bound (about 24 on 24 GiB)"


def format_backends(rows: list[dict[str, Any]]) -> str:
    head = "| device | installed | use | shots | gradients | broadcasting | max qubits | samples/s (4 qubits) |"
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        speed = f"{r['samples_per_s']:,.1f}" if r["samples_per_s"] else (r["note"] or "-")
        lines.append(f"| {r['device']} | {'yes' if r['installed'] else 'no'} | {r['use']} | {r['shots']} | "
                     f"{r['gradients']} | {r['broadcasting']} | {r['max_qubits']} | {speed} |")
    return "\n".join(lines)
