"""``qkd bench``: samples/s of one student configuration on every device, measured here.

Which device is fastest depends on the circuit, the batch and the machine, so the honest
way to choose is to measure on the machine that will train. Exact simulators are timed on
a training step and on inference; shot-based devices (named explicitly, since they are slow
and need no gradient) on inference only. A device that cannot run the configuration gets
its refusal in the table instead of a number.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tqdm.auto import tqdm

from ...config import StudentConfig
from ...devices import EXACT, installed, resolve_backend
from ...devices.backends import DEFAULT_SHOTS
from ...errors import QkdError
from ...students import check_student
from .throughput import IMAGE_SHAPES, measure


def default_devices() -> list[str]:
    """Every exact simulator installed here (lightning.kokkos / lightning.gpu only when usable)."""
    return [d for d in EXACT if installed(d)]


def bench_table(cfg: StudentConfig, devices: list[str], batches: list[int], dataset: str = "mnist",
                n_classes: int = 10, budget_s: float = 10.0, progress: bool = True) -> list[dict[str, Any]]:
    image_shape = IMAGE_SHAPES[dataset]
    rows = []
    cells = [(d, b) for d in devices for b in batches]
    for device, batch in tqdm(cells, desc="bench", unit="cell", disable=None if progress else True):
        exact = device == "auto" or device in EXACT
        row = {"device": device, "batch": batch, "student": dataclasses.asdict(cfg), "dataset": dataset,
               "diff_method": None, "train_samples_per_s": None, "train_batch_timed": None,
               "inference_samples_per_s": None, "inference_batch_timed": None, "note": ""}
        try:
            backend = resolve_backend(device, cfg.qubits, None if exact else DEFAULT_SHOTS)
            check_student(cfg, backend)
        except QkdError as exc:
            row["note"] = str(exc)
            rows.append(row)
            continue
        row["device"], row["diff_method"] = backend.device, backend.diff_method
        if backend.trainable:
            t = measure(cfg, backend, batch, True, image_shape, n_classes, budget_s=budget_s)
            row["train_samples_per_s"], row["train_batch_timed"] = t.samples_per_s, t.batch
        t = measure(cfg, backend, batch, False, image_shape, n_classes, budget_s=budget_s)
        row["inference_samples_per_s"], row["inference_batch_timed"] = t.samples_per_s, t.batch
        rows.append(row)
    return rows


def _speed(value: float | None, timed: int | None, batch: int) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" + (f" (timed on {timed})" if timed != batch else "")


def format_bench(rows: list[dict[str, Any]]) -> str:
    lines = ["| device | gradient | batch | train samples/s | inference samples/s | note |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['device']} | {r['diff_method'] or '-'} | {r['batch']} | "
                     f"{_speed(r['train_samples_per_s'], r['train_batch_timed'], r['batch'])} | "
                     f"{_speed(r['inference_samples_per_s'], r['inference_batch_timed'], r['batch'])} | {r['note']} |")
    return "\n".join(lines)
