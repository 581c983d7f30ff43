"""Evaluation on shot-based and remote devices: batch by batch, retried, resumable, never paid twice.

On the batched Qiskit device (the default for shot-based devices) each batch of images is one
primitive job (or a few, where a job's limits require); on pennylane-qiskit's per-circuit path
(``--per-circuit``) every image is a job. Either way each batch is retried with backoff
(devices/retry.py), the logits of finished batches are saved after every batch (atomically),
and when the retries are exhausted the command stops with one line saying how much finished
and where it is kept; running the same command again continues from there.

On the batched device every job id is also written to a ledger beside the partial results the
moment it is submitted, under a key naming its images, so a run that is killed or fails after
submitting retrieves its jobs by id instead of submitting them again; and before the first job
goes to a paid backend the plan (jobs to submit, jobs to retrieve, circuits, shots, estimated QPU
time) is shown to ``approve``, which may refuse it. The ledger is chosen by what the work is
(devices/jobs.py ``open_ledger``), so its batch size, pinned from the first submission, is the
one a rerun evaluates with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from ...devices import Backend, retry
from ...devices.ibm import redact
from ...devices.jobs import open_ledger
from ...errors import QkdError
from ...training import Score, atomic_write_json, score

BATCHED_BATCH_SIZE = 1000  # images per job: 10,000 test images in 10 jobs (1.0 M executions at 1,024 shots)
PER_CIRCUIT_BATCH_SIZE = 16  # images between saves on the per-circuit path, where each image is a job anyway


@dataclass(frozen=True)
class RemoteScore:
    """A remote evaluation's score and what it cost in transpilations and jobs."""

    score: Score
    batch_size: int
    jobs_submitted: int | None  # None on the per-circuit path (pennylane-qiskit does not count them)
    jobs_retrieved: int | None
    transpilations: int | None
    depth: int | None  # of the transpiled circuit
    two_qubit_gates: int | None
    ledger: str | None
    correct: str | None = None  # per test image, 1 if right


def batch_tag(start: int, batch_size: int, n: int) -> str:
    """What a batch's jobs are keyed by in the ledger: its images."""
    return f"images {start}-{min(start + batch_size, n)}"


def _read_partial(path: Path) -> dict[str, Any]:
    try:
        saved = json.loads(path.read_text())
        if not isinstance(saved, dict) or not isinstance(saved.get("logits", []), list):
            raise ValueError("not an evaluation's partial results")
        return saved
    except (OSError, ValueError) as exc:
        raise QkdError(f"{path} is not readable partial results ({type(exc).__name__}): move it aside to evaluate "
                       f"every image again (jobs recorded in the ledger beside it are still retrieved by id)") from None


def circuit_devices(model: nn.Module, which: Callable[[Any], bool]) -> list:
    """The devices of the model's quantum layers (one per layer) for which ``which(device)`` holds."""
    from ...circuits import QuantumLayer

    return [m.qnode.device for m in model.modules() if isinstance(m, QuantumLayer) and which(m.qnode.device)]


def batched_devices(model: nn.Module) -> list:
    """The model's ``BatchedQiskitDevice``s (one per quantum layer)."""
    from ...devices.qiskit_batched import BatchedQiskitDevice

    return circuit_devices(model, lambda d: isinstance(d, BatchedQiskitDevice))


def remote_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, backend: Backend, stem: Path,
                    context: dict[str, Any], limit: int | None = None, batch_size: int | None = None,
                    approve: Callable[[str], None] | None = None, new_evaluation: bool = False,
                    resubmit_lost: bool = False) -> RemoteScore:
    """Accuracy on a slow, fallible device; finished batches are kept beside ``stem`` until the end.

    Args:
        model: the student, its circuit on ``backend``'s device.
        x, y: test images and labels (the first ``limit`` of them).
        backend: the resolved shot-based backend.
        stem: the evaluation's files without suffix: ``stem.jobs.json`` (the ledger of jobs) and
            ``stem.partial.json`` (finished batches).
        context: what this evaluation is (checkpoint digest, device, shots, noise, data); the
            resolved backend and the batch size are added to it in the ledger.
        limit: the ``--limit`` asked, kept with the partial results (a ledger outlives it).
        batch_size: images per batch (per job on the batched device); None continues with the
            ledger's, or takes the default.
        approve: for a paid backend, called once with the plan before anything is submitted;
            raises to refuse.
        new_evaluation: begin another ledger beside one that records other work.
        resubmit_lost: submit again the images of jobs the service no longer knows.

    Returns:
        The score and the evaluation's transpilations and jobs.
    """
    devices = batched_devices(model)
    default = BATCHED_BATCH_SIZE if devices else PER_CIRCUIT_BATCH_SIZE
    ledger = None
    if devices:
        runners = sorted({d.runner.name for d in devices})
        ledger = open_ledger(stem, {**context, "backend": runners[0] if len(runners) == 1 else runners},
                             batch_size, default, new_evaluation, local=not any(d.runner.retrievable for d in devices))
        ledger.begin()
        partial = ledger.path.with_name(ledger.path.name.replace(".jobs.json", ".partial.json"))
        key = {**ledger.context, "limit": limit}
    else:
        partial, key = stem.with_name(stem.name + ".partial.json"), {**context, "limit": limit}
    done: list[list[float]] = []
    done_zne: list = []  # zne on IBM's Estimator: each finished image's per-factor values, kept with its logits
    saved_batch = None
    if partial.exists():
        saved = _read_partial(partial)
        if saved.get("key") == key:
            done, saved_batch, done_zne = saved["logits"], saved.get("batch_size"), saved.get("zne", [])
            tqdm.write(f"continuing: {len(done)} of {len(x)} test images were evaluated before ({partial})")
    if ledger is not None:
        bs = ledger.batch_size
    else:
        if saved_batch is not None and batch_size not in (None, saved_batch):
            tqdm.write(f"continuing with the batch size this evaluation started with ({saved_batch}), not "
                       f"{batch_size}: its finished batches are kept")
        bs = saved_batch or batch_size or default
    starts = range(len(done), len(x), bs)
    for d in devices:
        d.ledger, d.resubmit_lost = ledger, resubmit_lost
        d.planned_batches = [(batch_tag(i, bs, len(x)), min(bs, len(x) - i)) for i in starts]
        if approve is not None and d.runner.paid:
            d.confirm = lambda plan: approve(plan.describe())

    model.eval()
    n_batches = -(-len(x) // bs)

    def on_retry(attempt: int, exc: BaseException, delay: float) -> None:
        tqdm.write(f"{backend.device}: job failed ({type(exc).__name__}: {redact(str(exc))[:120]}); "
                   f"retry {attempt}/{retry.ATTEMPTS - 1} in {delay:.0f} s")

    try:
        with torch.no_grad():
            for i in tqdm(starts, desc=f"evaluating on {backend.device}", unit="batch", leave=False):
                for d in devices:
                    d.batch_tag = batch_tag(i, bs, len(x))
                marks = [len(d.zne_values) for d in devices]

                def attempt():
                    for d, m in zip(devices, marks):  # a failed attempt's values are not this batch's
                        del d.zne_values[m:]
                    return model(x[i:i + bs])

                try:
                    out = retry.with_retries(attempt, retry.ATTEMPTS, retry.BASE_DELAY_S, on_retry)
                except retry.RetriesExhausted as exc:
                    raise QkdError(f"{backend.device}: batch {i // bs + 1}/{n_batches} failed after "
                                   f"{redact(str(exc))}; {len(done)} of {len(x)} test images finished and are kept "
                                   f"in {partial}: run the same command again to continue") from None
                done += out.tolist()
                new = [v for d, m in zip(devices, marks) for v in d.zne_values[m:]]
                done_zne += torch.cat(new).tolist() if new else []
                atomic_write_json(partial, {"key": key, "batch_size": bs, "logits": done, "zne": done_zne})
    finally:
        for d in devices:
            d.runner.close()
    logits = torch.tensor(done, dtype=torch.float32)
    for d in devices:  # every image's per-factor values, this run's and a resumed one's, in test order
        d.zne_values[:] = [torch.tensor(done_zne, dtype=torch.float64)] if done_zne else []
    partial.unlink(missing_ok=True)
    compiled = [c for d in devices for c in d.transpiled]
    return RemoteScore(
        score(logits, y), bs,
        sum(d.jobs_submitted for d in devices) if devices else None,
        sum(d.jobs_retrieved for d in devices) if devices else None,
        sum(d.transpilations for d in devices) if devices else None,
        max((c.depth for c in compiled), default=None), max((c.two_qubit_gates for c in compiled), default=None),
        str(ledger.path) if ledger is not None and ledger.path.exists() else None,
        "".join(map(str, (logits.argmax(1) == y).to(torch.int64).tolist())))
