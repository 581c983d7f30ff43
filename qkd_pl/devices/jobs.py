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

A ledger belongs to one piece of work, its context: the checkpoint's SHA-256, the device and
the backend it resolved to, shots, noise, the data and a digest of its images, and the batch
size (job keys name image ranges, so they depend on it). Never how the work was named: the
checkpoint's path, the working folder and the ``--limit`` are not in it, so a rerun spelled
differently finds its jobs. A rerun of other work beside a ledger is refused, naming the field
that differs, rather than renaming the ledger aside and paying again; ``new_evaluation`` starts
another ledger beside it on purpose. A job the service no longer knows is marked ``lost`` and
stops the evaluation until the user asks for its images to be submitted again.
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
from ..files import atomic_write_json

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
    status: str = "submitted"  # submitted -> done | failed | lost (the service no longer knows it)
    retrievable: bool = True


LEDGER_SUFFIX = ".jobs.json"


class JobLedger:
    """Every job of one evaluation, written to ``path`` as soon as it is submitted.

    Args:
        path: the ledger file (JSON); created on the first submission.
        context: what the evaluation is (``open_ledger`` chooses the file whose context this is).
        records: the jobs already recorded there.
    """

    def __init__(self, path: Path, context: dict[str, Any], records: list[JobRecord] | None = None):
        self.path, self.context = Path(path), context
        self.records: list[JobRecord] = list(records or [])

    @property
    def batch_size(self) -> int:
        return self.context["batch_size"]

    def begin(self) -> None:
        """Write the ledger before anything is submitted: a folder it cannot be written to stops the
        evaluation before a job is paid for, not after (when its id would be lost)."""
        try:
            self._save()
        except OSError as exc:
            raise QkdError(f"cannot write the job ledger {self.path} ({type(exc).__name__}: {exc.strerror or exc}): "
                           f"nothing was submitted; free some space or evaluate a copy of the run in a writable "
                           f"folder") from None

    def find(self, key: str) -> JobRecord | None:
        """The last job for ``key`` that did not fail (a lost one included: the caller decides)."""
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


def read_ledger(path: Path) -> tuple[dict[str, Any], list[JobRecord]]:
    """A ledger file's context and jobs; a damaged file is refused in one line, never overwritten
    (it may be the only record of paid jobs)."""
    try:
        saved = json.loads(Path(path).read_text())
        if not isinstance(saved, dict) or not isinstance(saved.get("context"), dict) \
                or not isinstance(saved.get("jobs"), list) or not all(isinstance(r, dict) for r in saved["jobs"]):
            raise ValueError("not a ledger's shape")
        records = [JobRecord(**r) for r in saved["jobs"]]
        if not all(isinstance(r.key, str) and isinstance(r.job_id, str) for r in records):
            raise ValueError("a job without a key or id")
        return saved["context"], records
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise QkdError(f"{path} is not a readable job ledger ({type(exc).__name__}: {str(exc)[:60]}); it may be the "
                       f"only record of submitted jobs: keep a copy, then repair it or move it aside to start "
                       f"afresh") from None


def ledger_paths(stem: Path) -> list[Path]:
    """``stem.jobs.json``, then ``stem.2.jobs.json``, ... (the evaluations begun with ``new_evaluation``)."""
    first = stem.with_name(stem.name + LEDGER_SUFFIX)
    others = []
    for p in stem.parent.glob(f"{stem.name}.*{LEDGER_SUFFIX}"):
        middle = p.name[len(stem.name) + 1:-len(LEDGER_SUFFIX)]
        if middle.isdigit():
            others.append((int(middle), p))
    return ([first] if first.exists() else []) + [p for _, p in sorted(others)]


def open_ledger(stem: Path, context: dict[str, Any], batch_size: int | None, default_batch: int,
                new_evaluation: bool = False, local: bool = False) -> JobLedger:
    """The ledger of this work beside ``stem``, or a new one; another work's ledger there is refused.

    Args:
        stem: the evaluation's files without suffix (``run/evaluation-ibm-ibm_brisbane``).
        context: what the work is, the batch size aside.
        batch_size: images per batch as asked; None takes the one the ledger was begun with.
        default_batch: the batch size of new work when none is asked.
        new_evaluation: where a ledger of other work is there, begin another beside it instead of
            refusing (the same work always continues its own ledger: nothing is paid twice).
        local: the jobs run on this machine (Aer, fake backends): nothing in a ledger of other work
            was paid for or can be retrieved, so it is replaced rather than refused.

    Returns:
        The ledger; its ``batch_size`` is the one to evaluate with.
    """
    existing = []
    for p in ledger_paths(stem):
        saved, records = read_ledger(p)
        existing.append((p, *_upgraded(saved, records, context), records))
    for path, saved, at_least, records in existing:  # the same work always continues its own ledger
        rest = {k: v for k, v in saved.items() if k != "batch_size"}
        pinned = saved.get("batch_size")
        if rest == context and (batch_size in (None, pinned) or (at_least and batch_size > pinned)):
            return JobLedger(path, {**saved, "batch_size": batch_size or pinned}, records)
    fresh = {**context, "batch_size": batch_size or default_batch}
    first = stem.with_name(stem.name + LEDGER_SUFFIX)
    holding = [e for e in existing if e[3]]  # a ledger without jobs records nothing paid
    if local or not holding:
        return JobLedger(existing[0][0] if existing else first, fresh)
    if not new_evaluation:
        path, saved, _, _ = holding[-1]
        now = {**context, "batch_size": batch_size}
        fields = [k for k in sorted(set(saved) | set(now)) if saved.get(k) != now.get(k)]
        diff = "; ".join(f"{k}: {_short(saved.get(k))} then, {_short(now.get(k))} now" for k in fields)
        older = " (written by qkd-pl 0.1)" if "batch_size" not in saved else ""
        raise QkdError(f"{path}{older} records the jobs of another evaluation ({diff}): rerun as it was to retrieve "
                       f"its jobs by id, or add --new-evaluation to start another ledger beside it (its jobs are "
                       f"submitted anew)")
    n = len(existing) + 1
    path = stem.with_name(f"{stem.name}.{n}{LEDGER_SUFFIX}")
    while path.exists():
        n += 1
        path = stem.with_name(f"{stem.name}.{n}{LEDGER_SUFFIX}")
    return JobLedger(path, fresh)


OLD_FORMAT_KEYS = ("sha256", "device", "shots", "noise", "per_circuit")  # what qkd-pl 0.1's ledgers named


def _upgraded(saved: dict[str, Any], records: list[JobRecord], context: dict[str, Any]
              ) -> tuple[dict[str, Any], bool]:
    """(context, True where its batch size is only a lower bound). A ledger written before contexts
    named the work (it held the checkpoint's path and no batch size) reads as this work's where
    everything it did record agrees: its jobs were paid for, and an upgrade in mid-evaluation must
    still find them. Its batch size is read off its job keys (``images 0-1000/...``): the widest
    range, which a ``--limit`` may have cut, so a larger ``--batch-size`` is accepted too."""
    if "batch_size" in saved or any(saved.get(k) != context.get(k) for k in OLD_FORMAT_KEYS):
        return saved, False
    widths = []
    for r in records:
        first, _, _ = r.key.partition("/")
        low, _, high = first.removeprefix("images ").partition("-")
        if low.isdigit() and high.isdigit():
            widths.append(int(high) - int(low))
    return ({**context, "batch_size": max(widths)}, True) if widths else (saved, False)


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 20 else text[:16] + "..."


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


RUNTIME_EXTRAPOLATORS = {"exponential": ("exponential", "linear"), "linear": "linear",
                         "richardson": "polynomial_degree_2"}  # qkd-pl's names -> qiskit-ibm-runtime's ZNE fits
TREX_RANDOMIZATIONS = 32  # qiskit-ibm-runtime's default measure_noise_learning.num_randomizations


def qpu_cost(rows: int, shots: int, n_jobs: int, seconds_per_shot: float, folded_seconds_per_shot: tuple[float, ...],
             readout_seconds_per_shot: float, mitigation: str) -> tuple[int, float, float]:
    """(circuit executions, QPU seconds, of which mitigation's) of ``rows`` images in ``n_jobs`` Estimator
    jobs: TREX adds a calibration of the measurements per job (TREX_RANDOMIZATIONS randomizations),
    zne runs every image at each noise factor with its two-qubit gates folded. An estimate: the
    service's own overheads are not in it."""
    plain = rows * shots * seconds_per_shot
    if mitigation == "none":
        return rows, plain, 0.0
    calibration = n_jobs * TREX_RANDOMIZATIONS * shots * readout_seconds_per_shot
    if mitigation == "zne":
        total = rows * shots * sum(folded_seconds_per_shot) + calibration
        return rows * len(folded_seconds_per_shot), total, total - plain
    return rows, plain + calibration, calibration


def resilience(options, mitigation: str, extrapolator: str = "exponential") -> None:
    """Set an EstimatorV2's error mitigation as qiskit-ibm-runtime runs it: ``readout`` is TREX (twirled
    readout error extinction: measure_mitigation), ``zne`` is TREX with zero-noise extrapolation by
    gate folding at noise factors 1, 3, 5 (resilience level 2's choices, the extrapolator ours); ``none``
    is resilience level 0, so a raw number is raw."""
    from .mitigation import ZNE_FACTORS

    if mitigation == "none":  # raw: the service's default (level 1) would apply TREX unasked
        options.resilience_level = 0
        return
    r = options.resilience
    r.measure_mitigation = mitigation in ("readout", "zne")
    r.zne_mitigation = mitigation == "zne"
    if mitigation == "zne":
        r.zne.amplifier = "gate_folding"
        r.zne.noise_factors = tuple(float(f) for f in ZNE_FACTORS)
        r.zne.extrapolator = RUNTIME_EXTRAPOLATORS[extrapolator]


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

    def submit(self, primitive: str, pubs: list, shots: int, mitigation: str = "none",
               extrapolator: str = "exponential"):
        from qiskit_ibm_runtime import EstimatorV2, SamplerV2

        if mitigation != "none" and primitive == "estimator":  # local mode drops resilience options: never pretend
            raise QkdError(f"{self.name} runs locally, where qiskit-ibm-runtime ignores error mitigation; evaluate on "
                           f"noisy:{self.name} with --mitigation {mitigation} (the same device emulated, mitigated)")
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

    def submit(self, primitive: str, pubs: list, shots: int, mitigation: str = "none",
               extrapolator: str = "exponential"):
        from qiskit_ibm_runtime import EstimatorV2, SamplerV2

        mode = self._execution_mode()
        if primitive == "estimator":
            p = EstimatorV2(mode=mode)
            p.options.default_shots = shots
            resilience(p.options, mitigation, extrapolator)
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
