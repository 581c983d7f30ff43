"""Per-image correctness of a saved run on a device, saved as it finishes, and paired differences.

Accuracy alone cannot say whether two evaluations of the same test images differ by more than
chance; per-image correctness can: the difference of two accuracies on the same images is the
mean of per-image differences, whose spread gives a 95 % interval (``paired``). The noise study
and ``qkd finetune`` evaluate through here, so their drops and gains carry intervals.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ...training import atomic_write_json


@dataclass(frozen=True)
class Job:
    """One evaluation: a student's first ``n`` test images (None: all) on ``device``; ``mitigation``,
    ``level`` (the transpiler's) and ``recalibrate`` (validation images the head is refitted on) as
    ``qkd evaluate`` takes them."""

    run: str
    device: str
    n: int | None
    shots: int | None
    out: str  # the result file
    mitigation: str = "none"
    level: int | None = None
    recalibrate: int | None = None

    @property
    def plain(self) -> bool:
        """Whether the device's raw readouts, as the run's head reads them, at the default level."""
        return self.mitigation == "none" and self.recalibrate is None and self.level in (None, 1)

    def result(self) -> dict | None:
        """The saved result, if it answers this job (its fields and the checkpoint it read); else None."""
        return saved_result(self.out, identity(self))


def identity(job) -> dict:
    """What a saved result answers: the job's fields but where it is saved and how its run folder was
    named, and the SHA-256 of the checkpoint it reads (a retrained student is evaluated anew)."""
    from ...distill.saved import checkpoint_path

    fields = {k: v for k, v in dataclasses.asdict(job).items() if k not in ("out", "run", "folder")}
    digest = hashlib.sha256(checkpoint_path(job.run).read_bytes()).hexdigest()
    return {"kind": type(job).__name__, **fields, "checkpoint_sha256": digest}


def saved_result(out: str | Path, ident: dict) -> dict | None:
    """``out``'s result if it was saved for ``ident`` (a file from other work, or from before results
    said what they answer, is done again)."""
    path = Path(out)
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return data if data.get("job") == ident else None


def evaluate(job: Job, data_dir: str | None, threads: int | None = None) -> dict:
    """Per-image correctness of one student on one device (saved to ``job.out``); ``threads``:
    torch threads of a worker process that shares the cores with others (grid.worker_threads)."""
    if (done := job.result()) is not None:
        return done
    if threads:
        torch.set_num_threads(threads)
    if not job.plain:
        return _through_evaluate(job, data_dir)
    from ...config import RunConfig
    from ...data import load_data
    from ...devices import resolve_backend
    from ...training import predict_logits
    from ...training.checkpoint import read_run_checkpoint
    from .train import checkpoint_path, model_from_checkpoint

    path = checkpoint_path(job.run)
    ckpt, _ = read_run_checkpoint(path)
    qubits = RunConfig.from_dict(ckpt["config"]).student.qubits
    backend = resolve_backend(job.device, qubits, shots=job.shots) if job.device != "exact" else None
    model, run_cfg, _ = model_from_checkpoint(ckpt, path, backend)
    data = load_data(run_cfg.data, data_dir)
    x, y = data.x_test[: job.n], data.y_test[: job.n]
    t0 = time.perf_counter()
    # a noisy 8-qubit batch holds a 256 x 256 density matrix per image: keep it small
    pred = predict_logits(model, x, 1000 if qubits <= 5 or job.device == "exact" else 25).argmax(1)
    correct = (pred == y).to(torch.int64)
    qnode = getattr(getattr(model, "quantum", None), "qnode", None)
    transpiled = getattr(qnode.device, "transpiled", []) if qnode is not None else []
    result = {"job": identity(job), "run": job.run, "device": job.device, "shots": job.shots, "n": len(y),
              "accuracy": correct.sum().item() / len(y), "correct": "".join(map(str, correct.tolist())),
              "seconds": time.perf_counter() - t0,
              "depth": transpiled[0].depth if transpiled else None,
              "two_qubit_gates": transpiled[0].two_qubit_gates if transpiled else None}
    Path(job.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(Path(job.out), result)
    return result


def _through_evaluate(job: Job, data_dir: str | None) -> dict:
    """A mitigated, recalibrated or re-levelled evaluation: ``qkd evaluate``'s own path (its files
    beside the run too), its per-image correctness saved to ``job.out``."""
    from .evaluate import evaluate_run

    out = Path(job.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.redirect_stdout(io.StringIO()):  # its lines (the circuit's cost, the recalibration) are its files'
        # its evaluation-<tag> files beside job.out, not beside the run: another --limit there would replace them
        r = evaluate_run(job.run, job.device, job.shots, data_dir=data_dir, limit=job.n, mitigation=job.mitigation,
                         optimization_level=job.level, recalibrate=job.recalibrate, folder=out.parent)
    result = {"job": identity(job), "run": job.run, "device": job.device, "shots": job.shots, "n": r.n_test,
              "accuracy": r.correct.count("1") / len(r.correct), "correct": r.correct, "seconds": r.seconds, "depth": r.depth, "two_qubit_gates": r.two_qubit_gates,
              "mitigation": job.mitigation, "level": job.level, "recalibrate": job.recalibrate,
              "recalibrated": r.recalibrated, "zne": r.zne}
    Path(job.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(Path(job.out), result)
    return result


def share_of_drop(gain: dict, drop: dict) -> float | None:
    """A gain as a share of a drop (both ``paired`` results), where both intervals exclude 0: else
    there is no share to speak of."""
    significant = drop["low"] > 0 and (gain["low"] > 0 or gain["high"] < 0)
    return gain["mean"] / drop["mean"] if significant else None


def paired(a: str, b: str) -> dict:
    """Mean of a_i - b_i over the images both have (bit strings of correctness), 95 % interval."""
    n = min(len(a), len(b))
    d = [int(x) - int(y) for x, y in zip(a[:n], b[:n])]
    mean = sum(d) / n
    var = sum((v - mean) ** 2 for v in d) / (n - 1) if n > 1 else 0.0
    half = 1.96 * math.sqrt(var / n) if n > 1 else float("nan")
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n}
