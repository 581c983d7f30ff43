"""``qkd backends``: what each device can do here, and how fast it runs a 4-qubit student.

Speed is measured on the spot (not quoted), on the same student for every device: a
FC -> amplitude -> strong(2 layers) -> <Z> model on 28x28 inputs. Exact simulators are timed
on a training step (forward + backward), shot-based ones on evaluation (forward only), since
that is what each is used for.
"""

from __future__ import annotations

from collections import Counter

from typing import Any

from ...config import StudentConfig
from ...devices import DEVICES, device_record, installed, resolve_backend
from ...devices.backends import DEFAULT_SHOTS
from ...errors import QkdError
from . import throughput

def rows_to_show() -> list[tuple[str, bool, int]]:
    """(device name, trains?, batch of the timing): every registered device, families by their examples."""
    return [(name, d.diff_method is not None, d.timing_batch) for d in DEVICES.values()
            for name in (d.examples or (d.name,))]


def measure(device: str, train: bool, batch: int, qubits: int = 4) -> float:
    """samples/s of the 4-qubit reference student; slow devices are timed on fewer samples."""
    backend = resolve_backend(device, qubits, None if train else DEFAULT_SHOTS)
    return throughput.measure(StudentConfig(qubits=qubits), backend, batch, train=train, budget_s=5.0).samples_per_s


def backends_table(measure_speed: bool = True) -> list[dict[str, Any]]:
    rows = []
    for device, train, batch in rows_to_show():
        row = {"device": device, "installed": installed(device.split(":")[0] if ":" in device else device),
               "use": "train + evaluate" if train else "evaluate",
               "shots": ("optional (exact without --shots)" if device.startswith("noisy:") else "no (exact)") if train
               else f"yes (default {DEFAULT_SHOTS})",
               "gradients": device_record(device).diff_method or "none (evaluation only)",
               "broadcasting": device_record(device).broadcasting,
               "max_qubits": _max_qubits(device), "samples_per_s": None, "note": ""}
        if device.startswith("ibm:") and not device.startswith("ibm:fake_"):
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
    if device.startswith(("ibm:fake_", "noisy:")):
        from ...devices import ibm

        return str(ibm.fake_backend(device.split(":", 1)[1]).num_qubits)
    if device.startswith("ibm:"):
        return "the backend's"
    return "memory-bound (a student that would not fit is refused before it starts)"


def format_backends(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table. A long value that several rows share (``memory-bound (a
    student that would not fit ...)``) shows its first words and a note number, its whole text
    once under the table, so the table fits a terminal; the JSON keeps every value whole."""
    columns = ("use", "shots", "gradients", "broadcasting", "max_qubits")
    counts = Counter(str(r[c]) for r in rows for c in columns)
    notes: dict[str, int] = {}

    def cell(value: Any) -> str:
        text = str(value)
        short, sep, _ = text.partition(" (")
        if counts[text] < 2 or not sep or len(text) <= 30:
            return text
        return f"{short} [{notes.setdefault(text, len(notes) + 1)}]"

    head = "| device | installed | use | shots | gradients | broadcasting | max qubits | samples/s (4 qubits) |"
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        speed = f"{r['samples_per_s']:,.1f}" if r["samples_per_s"] else (r["note"] or "-")
        lines.append(f"| {r['device']} | {'yes' if r['installed'] else 'no'} | "
                     + " | ".join(cell(r[c]) for c in columns) + f" | {speed} |")
    lines += [""] * bool(notes) + [f"[{n}] {text}" for text, n in notes.items()]
    return "\n".join(lines)
