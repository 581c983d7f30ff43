"""A Qiskit device that runs a whole broadcast batch as one transpilation and one primitive job.

pennylane-qiskit's ``QiskitDevice`` expands a batch of B samples into B tapes (``broadcast_expand``),
transpiles each, and submits each as its own Estimator or Sampler job: a test split becomes
thousands of jobs, each with its own queue wait on hardware. This subclass keeps the batch:
``parametric.to_parametric`` turns the tape into one fixed-structure circuit whose every angle
is a ``Parameter`` (state preparation becomes an RY tree), which is transpiled once per
structure and backend and submitted as one PUB carrying a (B, P) parameter array: EstimatorV2
for expectation values, SamplerV2 for probabilities. A batch that would exceed a job's limits
(``jobs.Limits``) is split into as few jobs as fit.

Every submitted job's id goes to the ``ledger`` (when one is set) before anything waits on it,
and a job whose key is already there is retrieved by id, never submitted again; one the service
no longer knows is marked lost and stops the evaluation, unless ``resubmit_lost`` is set. Before
the first submission to a paid backend, ``confirm`` (when set) sees the plan, which counts the
planned jobs whose keys the ledger already holds as retrieved, not submitted, and may refuse it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import torch
from pennylane import CompilePipeline
from pennylane.devices import ExecutionConfig
from pennylane.devices.preprocess import validate_device_wires, validate_measurements
from pennylane.tape import QuantumScript
from pennylane_qiskit.qiskit_device import QiskitDevice, accepted_sample_measurement

from ..errors import QkdError
from . import jobs
from .parametric import (OPTIMIZATION_LEVEL, Structure, observables, probabilities_from_bits, size, to_parametric,
                         transpile)



@dataclass(frozen=True)
class Compiled:
    """A structure transpiled for the backend, and how its parameter array is laid out."""

    circuit: object  # the ISA QuantumCircuit
    columns: np.ndarray  # which of the structure's parameters each circuit parameter is
    observables: list | None  # laid out on the physical qubits (Estimator); None for the Sampler
    primitive: str
    seconds_per_shot: float
    depth: int
    two_qubit_gates: int
    folded_seconds_per_shot: tuple[float, ...] = ()  # zne: at each noise factor (two-qubit gates folded)
    readout_seconds_per_shot: float = 0.0  # a measurement-only circuit: TREX's calibration


@dataclass(frozen=True)
class SubmissionPlan:
    """What an evaluation will submit: shown, and confirmed, before a paid job is sent."""

    backend: str
    mode: str
    primitive: str
    jobs: int  # to submit
    circuits: int  # parameter sets in the jobs to submit
    shots: int
    qpu_seconds: float
    retrieved: int = 0  # planned jobs the ledger already holds: retrieved by id, not submitted
    mitigation: str = "none"
    mitigation_seconds: float = 0.0  # of qpu_seconds: what mitigation adds

    def describe(self) -> str:
        again = (f"; {self.retrieved} job(s) submitted before are retrieved by id, not submitted again"
                 if self.retrieved else "")
        cost = ""
        if self.mitigation == "zne":
            cost = (f"; zne runs each image at noise factors 1, 3 and 5 (3 circuits, the folded ones longer) and TREX "
                    f"calibrates the readouts ({jobs.TREX_RANDOMIZATIONS} randomizations per job): about "
                    f"{self.mitigation_seconds:,.0f} of those seconds are mitigation's")
        elif self.mitigation == "readout" and self.primitive == "estimator":
            cost = (f"; TREX calibrates the readouts ({jobs.TREX_RANDOMIZATIONS} randomizations per job): about "
                    f"{self.mitigation_seconds:,.0f} of those seconds are mitigation's")
        elif self.mitigation == "readout":
            cost = "; readout correction from the backend's reported calibration: no extra circuits"
        return (f"{self.backend}: {self.jobs} {self.primitive} job(s) in {self.mode} mode, {self.circuits:,} "
                f"circuit executions (parameter sets) x {self.shots} shots, about {self.qpu_seconds:,.0f} QPU "
                f"seconds (estimated: {jobs.REP_DELAY_S * 1e6:.0f} us repetition delay + the circuit's duration "
                f"per shot){cost}{again}")


class BatchedQiskitDevice(QiskitDevice):
    """``qiskit.remote`` with one job per batch (see the module docstring).

    Args:
        wires: number of wires (qubits of the logical circuit).
        backend: a Qiskit backend: ``AerSimulator`` (optionally with a noise model), an IBM fake
            backend, or an IBM Quantum backend.
        shots: shots per parameter set.
        runner: where jobs go (``jobs.LocalRunner`` by default; ``jobs.RuntimeRunner`` for IBM
            Quantum).
        limits: what one job may hold.
    """

    short_name = "qkd.qiskit-batched"

    def __init__(self, wires, backend, shots=1024, runner=None, limits: jobs.Limits | None = None,
                 optimization_level: int = OPTIMIZATION_LEVEL, mitigation: str = "none",
                 extrapolator: str = "exponential"):
        super().__init__(wires=wires, backend=backend)  # shots come with each tape (the QNode's)
        self._kwargs["default_shots"] = shots
        self.runner = runner or jobs.LocalRunner(backend)
        self.limits = limits or jobs.Limits()
        self.optimization_level = optimization_level
        self.mitigation, self.extrapolator = mitigation, extrapolator
        self.zne_values: list = []  # zne on the Estimator: the service's per-factor values, (batch, factors, outputs)
        self.ledger: jobs.JobLedger | None = None
        self.batch_tag: str | None = None  # names the work of the next execution in the ledger
        self.confirm: Callable[[SubmissionPlan], None] | None = None
        self._approved: int | None = None  # submissions the confirmed plans cover
        self.planned_batches: list[tuple[str, int]] | None = None  # (tag, images) of the evaluation's batches
        self.resubmit_lost = False  # submit again the images of a job the service no longer knows
        self._compiled: dict[str, Compiled] = {}
        self.transpilations = 0
        self.jobs_submitted = 0
        self.jobs_retrieved = 0

    @property
    def name(self) -> str:
        return self.short_name

    @property
    def transpiled(self) -> list[Compiled]:
        """The circuits transpiled so far, one per structure."""
        return list(self._compiled.values())

    def preprocess(self, execution_config: ExecutionConfig | None = None):
        """Wires and measurements are checked; nothing is decomposed or expanded: ``to_parametric``
        lowers every operation itself and the batch stays one tape."""
        config = replace(execution_config or ExecutionConfig(), use_device_gradient=False)
        pipeline = CompilePipeline()
        pipeline.add_transform(validate_device_wires, self.wires, name=self.name)
        pipeline.add_transform(validate_measurements, sample_measurements=accepted_sample_measurement, name=self.name)
        return pipeline, config

    def execute(self, circuits, execution_config: ExecutionConfig | None = None):
        tapes = [circuits] if isinstance(circuits, QuantumScript) else list(circuits)
        return [self._run(t) for t in tapes]

    def compile(self, structure: Structure) -> Compiled:
        """The structure transpiled for this backend (once per structure and optimization level: the
        structure's digest holds every gate, wire and measurement; the device holds one backend)."""
        key = f"{structure.digest}/{self.optimization_level}"
        if key in self._compiled:
            return self._compiled[key]
        isa, columns = transpile(structure, self.compile_backend, self.optimization_level)
        self.transpilations += 1
        primitive = "sampler" if structure.measurement[0] == "probs" else "estimator"
        if primitive == "sampler" and self.mitigation == "zne":
            raise QkdError("--mitigation zne extrapolates expectation values, and a circuit reading probabilities runs "
                           "on qiskit-ibm-runtime's Sampler, which has none: use --mitigation readout")
        obs = None if primitive == "sampler" else [[o.apply_layout(isa.layout)] for o in observables(structure)]
        from .hardware_cost import circuit_seconds, measurements_only, with_measurements

        target = self.compile_backend.target
        duration = circuit_seconds(with_measurements(isa), target)
        folded, readout = (), 0.0
        if self.mitigation != "none" and primitive == "estimator":  # what the plan shows mitigation to cost
            from .mitigation import ZNE_FACTORS, fold_two_qubit_gates

            measured = with_measurements(isa)
            folded = tuple(jobs.REP_DELAY_S + circuit_seconds(fold_two_qubit_gates(measured, f), target)
                           for f in (ZNE_FACTORS if self.mitigation == "zne" else ()))
            readout = jobs.REP_DELAY_S + circuit_seconds(measurements_only(measured), target)
        compiled = Compiled(isa, columns, obs, primitive, jobs.REP_DELAY_S + duration, *size(isa), folded, readout)
        self._compiled[key] = compiled
        return compiled

    def plan(self, compiled: Compiled, structure: Structure | None, n_params: int, shots: int,
             batches: list[tuple[str, int]]) -> SubmissionPlan:
        """The jobs an evaluation of ``batches`` ((tag, images) each) submits, and those it retrieves:
        a planned job whose key the ledger holds (and can retrieve) is not submitted. Without a
        structure (a throughput estimate) nothing is looked up: every job is submitted."""
        per_job = self._rows_per_job(compiled, shots, n_params)
        submit = retrieve = rows = 0
        for tag, n in batches:
            chunks = jobs.split_rows(n, per_job)
            keys = (self._keys(tag, structure, compiled, shots, n, per_job) if structure is not None
                    else [None] * len(chunks))
            for key, chunk in zip(keys, chunks):
                if key is not None and self._retrievable(key):
                    retrieve += 1
                else:
                    submit, rows = submit + 1, rows + len(chunk)
        mode = getattr(self.runner, "mode", "local")
        circuits, seconds, extra = self._cost(compiled, rows, shots, submit)
        return SubmissionPlan(self.runner.name, mode, compiled.primitive, submit, circuits, shots, seconds, retrieve,
                              self.mitigation, extra)

    def _cost(self, compiled: Compiled, rows: int, shots: int, n_jobs: int) -> tuple[int, float, float]:
        """(circuit executions, QPU seconds, of which mitigation's) of ``rows`` images in ``n_jobs`` jobs."""
        mitigation = self.mitigation if compiled.primitive == "estimator" else "none"  # the Sampler's is client-side
        return jobs.qpu_cost(rows, shots, n_jobs, compiled.seconds_per_shot, compiled.folded_seconds_per_shot,
                             compiled.readout_seconds_per_shot, mitigation)

    def _rows_per_job(self, compiled: Compiled, shots: int, n_params: int) -> int:
        """Images per job: with zne each image is 3 circuits, longer ones folded."""
        factors = len(compiled.folded_seconds_per_shot) if self.mitigation == "zne" else 0
        if not factors:
            return self.limits.rows_per_job(shots, n_params, compiled.seconds_per_shot)
        return self.limits.rows_per_job(shots * factors, n_params, sum(compiled.folded_seconds_per_shot) / factors)

    def _keys(self, tag: str, structure: Structure, compiled: Compiled, shots: int, n_rows: int,
              per_job: int) -> list[str]:
        """The ledger keys of a batch's jobs: its images, the circuit structure, primitive, shots, chunk."""
        n = len(jobs.split_rows(n_rows, per_job))
        return [f"{tag}/{structure.digest}/{compiled.primitive}/{shots}/{c + 1}of{n}" for c in range(n)]

    def _retrievable(self, key: str) -> bool:
        record = self.ledger.find(key) if self.ledger is not None else None
        return (record is not None and record.retrievable and self.runner.retrievable
                and (record.status != "lost" or not self.resubmit_lost))

    def _run(self, tape):
        par = to_parametric(tape, list(self.wires))
        compiled = self.compile(par.structure)
        shots = int(tape.shots.total_shots) if tape.shots else int(self._kwargs["default_shots"])
        values = np.ascontiguousarray(par.values.detach().numpy()[:, compiled.columns])
        tag = self.batch_tag or hashlib.sha256(values.tobytes()).hexdigest()[:16]
        if self.confirm is not None and self._approved is None:  # the whole evaluation's plan, asked once
            plan = self.plan(compiled, par.structure, values.shape[1], shots,
                             self.planned_batches or [(tag, len(values))])
            if plan.jobs:  # nothing to pay for where every job is retrieved
                self.confirm(plan)
            self._approved = plan.jobs
        per_job = self._rows_per_job(compiled, shots, values.shape[1])
        chunks = jobs.split_rows(len(values), per_job)
        keys = self._keys(tag, par.structure, compiled, shots, len(values), per_job)
        submitted = [self._job(key, compiled, values[rows.start:rows.stop], shots)
                     for key, rows in zip(keys, chunks)]  # all submitted (and recorded) before any is awaited
        parts = [self._collect(job, record, compiled, par.structure) for job, record in submitted]
        if compiled.primitive == "sampler":
            probs = np.concatenate(parts, axis=0)
            return probs if par.batched else probs[0]
        evs = np.concatenate(parts, axis=1)  # (observables, batch)
        evs = evs if par.batched else evs[:, 0]
        return evs[0] if len(evs) == 1 else tuple(evs)

    def _job(self, key: str, compiled: Compiled, values: np.ndarray, shots: int):
        record = self.ledger.find(key) if self.ledger is not None else None
        if record is not None and record.retrievable and self.runner.retrievable:
            job = self._retrieve(record) if record.status != "lost" else None
            if job is not None:
                self.jobs_retrieved += 1
                return job, record
            if not self.resubmit_lost:
                raise QkdError(f"job {record.job_id} ({key}) is lost: {self.runner.name} no longer knows it "
                                    f"(marked lost in {self.ledger.path}); rerun with --resubmit-lost to submit its "
                                    f"{record.rows} image(s) again, at their cost")
        if self.confirm is not None and self.jobs_submitted >= (self._approved or 0):
            # beyond the approved plan (a job it meant to retrieve failed, or a failed job's retry): ask for it alone
            circuits, seconds, extra = self._cost(compiled, len(values), shots, 1)
            self.confirm(SubmissionPlan(self.runner.name, getattr(self.runner, "mode", "local"), compiled.primitive,
                                        1, circuits, shots, seconds, 0, self.mitigation, extra))
            self._approved = (self._approved or 0) + 1
        pub = ((compiled.circuit, compiled.observables, values) if compiled.primitive == "estimator"
               else (compiled.circuit, values))
        job = self.runner.submit(compiled.primitive, [pub], shots, self.mitigation, self.extrapolator)
        self.jobs_submitted += 1
        record = jobs.JobRecord(key, job.job_id(), self.runner.name, compiled.primitive, len(values), shots,
                                jobs.now(), retrievable=self.runner.retrievable)
        if self.ledger is not None:
            try:
                self.ledger.add(record)
            except Exception as exc:  # noqa: BLE001 - the id must reach the user, whatever stopped the write
                raise QkdError(f"job {record.job_id} ({key}) was submitted to {self.runner.name} but could not be "
                               f"recorded in {self.ledger.path} ({type(exc).__name__}); keep its id: a rerun "
                               f"cannot find it and would submit its images again") from None
        return job, record

    def _retrieve(self, record: jobs.JobRecord):
        """The recorded job, or None where the service says it does not know it (then marked lost)."""
        try:
            job = self.runner.retrieve(record.job_id)
        except Exception as exc:
            if not _not_found(exc):
                raise
            job = None
        if job is None:
            self.ledger.mark(record, "lost")
        return job

    def _collect(self, job, record: jobs.JobRecord, compiled: Compiled, structure: Structure) -> np.ndarray:
        try:
            result = job.result()
        except Exception as exc:
            if self.ledger is not None and _failed(job, exc):
                self.ledger.mark(record, "failed")  # a failed job may be submitted anew; a waiting one never
            raise
        if self.ledger is not None and record.status != "done":
            self.ledger.mark(record, "done")
        data = result[0].data
        if compiled.primitive == "estimator":
            evs = np.asarray(data.evs, dtype=np.float64).reshape(len(compiled.observables), -1)
            if self.mitigation == "zne" and hasattr(data, "evs_noise_factors"):  # the service's raw per-factor values
                raw = np.asarray(data.evs_noise_factors, dtype=np.float64).reshape(evs.shape + (-1,))
                self.zne_values.append(torch.from_numpy(raw.transpose(1, 2, 0).copy()))
            return evs
        probs = probabilities_from_bits(data.c, len(structure.measurement[1]))
        if self.mitigation == "readout":  # the Sampler: an assignment-matrix correction from the reported calibration
            from .mitigation import nearest_distribution, readout_confusion, unconfuse

            fixed = unconfuse(torch.from_numpy(probs), readout_confusion(self.compile_backend, compiled.circuit))
            probs = nearest_distribution(fixed).numpy()
        return probs


def _not_found(exc: BaseException) -> bool:
    """The service does not know the job id (deleted, expired, another account): retrying cannot help."""
    return any(t.__name__ in ("RuntimeJobNotFound", "JobNotFound") for t in type(exc).__mro__)


def _failed(job, exc: BaseException) -> bool:
    """Whether the job itself failed, so its images may be submitted anew: only when the job says so
    (status ERROR or CANCELLED). A wait that timed out, a dropped connection or an HTTP error while
    asking leave it ``submitted``: it may well finish, and a rerun retrieves it by id."""
    if any(t.__name__ in {"TimeoutError", "JobTimeoutError", "RuntimeJobTimeoutError"} for t in type(exc).__mro__):
        return False
    try:
        status = job.status()
    except Exception:  # noqa: BLE001 - cannot tell: keep the job, never pay for it twice
        return False
    return str(getattr(status, "name", status)).upper() in ("ERROR", "CANCELLED", "FAILED")
