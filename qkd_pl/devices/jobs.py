"""Primitive jobs on Qiskit backends: where they are submitted, how big they may be, and the ledger
that makes sure a paid job is never submitted twice.

A runner submits a primitive job and, where the service keeps jobs, retrieves one by its id:
``LocalRunner`` for Aer and IBM fake backends (qiskit-ibm-runtime's local mode: the same
primitives, run here; nothing to retrieve after the process ends, nothing paid either),
``RuntimeRunner`` for IBM Quantum (Batch mode by default, a Session on request).

The ledger is a JSON file in the run folder. A job's id is written to it the moment the job is
submitted, under a key naming the work (which images, which circuit structure, which chunk),
so an evaluation that is killed or fails and is run again finds the job by that key and
retrieves it instead of submitting it again.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import QkdError
from ..training.checkpoint import atomic_write_json

# IBM Quantum's documented limits (2026): executions (circuits x shots) per job, job input size,
# QPU time per job. A batch beyond any of them is split into several jobs.
MAX_EXECUTIONS = 10_000_000
MAX_INPUT_BYTES = 300_000_000
MAX_QPU_SECONDS = 3 * 3600
# Per-shot time of IBM's default repetition delay; plus the circuit's own duration, it estimates
# QPU seconds for the plan shown before a paid submission (an estimate, printed as one).
REP_DELAY_S = 250e-6


@dataclass(frozen=True)
class Limits:
    """What one job may hold."""

    max_executions: int = MAX_EXECUTIONS
    max_input_bytes: int = MAX_INPUT_BYTES
    max_qpu_seconds: float = MAX_QPU_SECONDS

    def rows_per_job(self, shots: int, n_params: int, seconds_per_shot: float) -> int:
        """The most parameter rows (samples) one job may carry at ``shots`` each."""
        by_executions = self.max_executions // shots
        by_bytes = self.max_input_bytes // max(1, 8 * n_params + 64)  # float64 values + array overhead
        by_time = int(self.max_qpu_seconds // max(shots * seconds_per_shot, 1e-12))
        return max(1, min(by_executions, by_bytes, by_time))


def split_rows(n_rows: int, per_job: int) -> list[range]:
    """Rows 0..n_rows-1 in as few jobs as ``per_job`` allows, of nearly equal size."""
    n_jobs = max(1, math.ceil(n_rows / per_job))
    size = math.ceil(n_rows / n_jobs)
    return [range(i, min(i + size, n_rows)) for i in range(0, n_rows, size)]


@dataclass
class JobRecord:
    key: str
    job_id: str
    backend: str
    primitive: str
    rows: int
    shots: int
    submitted_at: str
    status: str = "submitted"  # submitted -> done | failed
    retrievable: bool = True


class JobLedger:
    """Every job of one evaluation, written to ``path`` as soon as it is submitted.

    Args:
        path: the ledger file (JSON); created on the first submission.
        context: what the evaluation is (checkpoint digest, device, shots, ...). A ledger written
            for another context is set aside (renamed) rather than trusted.
    """

    def __init__(self, path: Path, context: dict[str, Any]):
        self.path, self.context = Path(path), context
        self.records: list[JobRecord] = []
        if self.path.exists():
            saved = json.loads(self.path.read_text())
            if saved.get("context") == context:
                self.records = [JobRecord(**r) for r in saved["jobs"]]
            else:
                stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
                self.path.rename(self.path.with_name(f"{self.path.stem}.other-{stamp}.json"))

    def find(self, key: str) -> JobRecord | None:
        """The last job for ``key`` that did not fail."""
        for r in reversed(self.records):
            if r.key == key and r.status != "failed":
                return r
        return None

    def add(self, record: JobRecord) -> None:
        self.records.append(record)
        self._save()

    def mark(self, record: JobRecord, status: str) -> None:
        record.status = status
        self._save()

    def _save(self) -> None:
        atomic_write_json(self.path, {"context": self.context, "jobs": [dataclasses.asdict(r) for r in self.records]})


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class LocalRunner:
    """Aer and IBM fake backends: qiskit-ibm-runtime's primitives in local mode, run on this machine."""

    paid = False
    retrievable = False

    def __init__(self, backend):
        self.backend = backend
        self._jobs: dict[str, Any] = {}

    @property
    def name(self) -> str:
        return self.backend.name

    def submit(self, primitive: str, pubs: list, shots: int):
        from qiskit_ibm_runtime import EstimatorV2, SamplerV2

        if primitive == "estimator":
            p = EstimatorV2(mode=self.backend)
            p.options.default_shots = shots
            job = p.run(pubs)
        else:
            job = SamplerV2(mode=self.backend).run(pubs, shots=shots)
        self._jobs[job.job_id()] = job
        return job

    def retrieve(self, job_id: str):
        return self._jobs.get(job_id)

    def close(self) -> None:
        pass


class RuntimeRunner:
    """IBM Quantum: jobs in a Batch (default), a Session (``mode="session"``) or alone (``"job"``).

    Args:
        service: a ``QiskitRuntimeService`` (or an object with its ``job(job_id)`` method).
        backend: the service's backend.
        mode: ``batch``, ``session`` or ``job``.
    """

    paid = True
    retrievable = True

    def __init__(self, service, backend, mode: str = "batch"):
        if mode not in ("batch", "session", "job"):
            raise QkdError(f"unknown --mode {mode!r}; choose batch, session or job")
        self.service, self.backend, self.mode = service, backend, mode
        self._context = None

    @property
    def name(self) -> str:
        return self.backend.name

    def _execution_mode(self):
        if self.mode == "job":
            return self.backend
        if self._context is None:
            from qiskit_ibm_runtime import Batch, Session

            try:
                self._context = (Session if self.mode == "session" else Batch)(backend=self.backend)
            except Exception as exc:  # noqa: BLE001 - the service says why (plan, permissions)
                from .ibm import redact

                detail = redact((str(exc).splitlines() or [""])[0][:160])
                hint = ("Sessions are not available on IBM's Open plan: use --mode batch"
                        if self.mode == "session" else "use --mode job")
                raise QkdError(f"{self.backend.name}: your IBM account could not open a {self.mode} "
                               f"({type(exc).__name__}: {detail}); {hint}") from None
        return self._context

    def submit(self, primitive: str, pubs: list, shots: int):
        from qiskit_ibm_runtime import EstimatorV2, SamplerV2

        mode = self._execution_mode()
        if primitive == "estimator":
            p = EstimatorV2(mode=mode)
            p.options.default_shots = shots
            return p.run(pubs)
        return SamplerV2(mode=mode).run(pubs, shots=shots)

    def retrieve(self, job_id: str):
        return self.service.job(job_id)

    def close(self) -> None:
        if self._context is not None:
            try:
                self._context.close()
            except Exception:  # noqa: BLE001 - closing a batch that the service already closed
                pass
            self._context = None
