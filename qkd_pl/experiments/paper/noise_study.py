"""``qkd reproduce noise``: trained students on IBM fake backends of three processor generations,
raw, error-mitigated and fine-tuned under the device's noise.

Two student families, each labels only and distilled from LeNet5 at the kd study's setting, at 4
and 8 qubits, on MNIST and FashionMNIST (CIFAR-10 with ``--datasets``):
- ``amplitude``: FC -> amplitude encoding -> 2 StronglyEntanglingLayers -> <Z> (the paper's
  student; the kd study's all-data training, Adam 1e-2, batch 256, 10 epochs). Its 2^Q - 1 rotation
  tree routes to hundreds of two-qubit gates at 8 qubits;
- ``line``: FC -> angle encoding -> 6 layers of a CNOT line laid on the coupling map -> <Z> and
  <ZZ> of neighbours (the depth-aware student of docs/noise/hardware.md: Adam 0.02 one-cycle,
  batch 32, 20 epochs): 6 (Q - 1) two-qubit gates, no SWAP.
Each is evaluated exactly and on fake backends of a Falcon (fake_kolkata, 27 qubits), an Eagle
(fake_brisbane, 127) and a Heron (fake_torino, 133), at 1,024 shots, at the transpiler's default
level 1; the line students also at level 2, which places a circuit on the qubits whose calibrated
errors are least (level 1 keeps qubits 0..Q-1 wherever they need no SWAP, as on fake_brisbane and
fake_torino, however badly they read). The distilled student of each family is also evaluated with
each mitigation of ``qkd evaluate`` (readout, zne, a head recalibrated on validation images) and
fine-tuned under each backend's noise (``qkd finetune``, then read out with readout mitigation
too).

How it was sized for the project's 2-core machine: a noisy evaluation is a density-matrix
simulation of the transpiled circuit. At 4 qubits the torch emulation (``noisy:<backend>``,
devices/noisy.py) runs thousands of test images a second, so every 4-qubit student is evaluated on
its whole test split, and Aer (``ibm:<backend>``) evaluates the first ``check_images`` as a
cross-check of the emulation. At 8 qubits an image takes about 0.1 s (line) to 1 s (amplitude),
so 8-qubit students are evaluated on the first ``images_8q`` (line, default 1,000) or
``images_8q_amplitude`` (default 100: 1,000 would be about 8 hours of this study's 2 cores for
students whose outputs are noise) test images; the report gives n beside every such number.
Fine-tuning runs under each backend's noise on a subset of the training split
(``FINETUNE_PER_CLASS``): 2 to 15 minutes a student and backend here (each also evaluates its
source exactly and noiselessly again), and not for the 8-qubit amplitude students (a noisy
training step of theirs is about a second an image).

Every evaluation and fine-tuning is saved as it finishes (per-image correctness), so an interrupted
study resumes where it stopped; differences are paired over the same images, with 95 % normal
intervals of the mean of per-image differences.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from ...config import DataConfig, StudentConfig, TrainConfig
from ..single.per_image import Job, evaluate, identity, saved_result
from ..sweeps.grid import BASELINE, GridSpec, run_grid, validate, worker_pool, worker_threads

BACKENDS = {"fake_kolkata": "Falcon r5.11 (27 qubits)", "fake_brisbane": "Eagle r3 (127 qubits)",
            "fake_torino": "Heron r1 (133 qubits)"}
SHOTS = 1024
IMAGES_8Q = 1000  # the line student's 8-qubit evaluations (about 0.1 s an image on one core)
IMAGES_8Q_AMPLITUDE = 100  # the amplitude student's (about 1 s an image: 700-800 two-qubit gates)
CHECK_IMAGES = 1000
FAMILIES = {
    "amplitude": {"student.encoding": "amplitude", "student.ansatz": "strong", "student.layers": 2,
                  "student.readout": "z"},
    "line": {"student.encoding": "angle", "student.ansatz": "line", "student.layers": 6, "student.readout": "zz",
             "train.epochs": 20, "train.batch_size": 32, "train.lr": 0.02, "train.schedule": "onecycle"},
}
FINETUNE_BACKENDS = ("fake_brisbane", "fake_kolkata", "fake_torino")  # the Eagle first: its level-1 placement reads worst
MITIGATED = ("readout", "zne", "recal")  # the distilled students' mitigated evaluations, as qkd evaluate runs them
PLACED_LEVEL = 2  # the transpiler's level that chooses qubits by their calibration (VF2Layout scores its errors)
RECALIBRATION_IMAGES = 500  # validation images the recalibrated head is fitted on (at most the test images evaluated)
FINETUNE_EPOCHS = 3
FINETUNE_PER_CLASS = {4: 300, 8: 50}  # images per class of the fine-tuning's train and validation parts


def noise_study_spec(quick: bool = False, datasets: list[str] | None = None) -> GridSpec:
    """The students of the study: one seed, all the training data, both families (``FAMILIES``) at 4
    and 8 qubits. ``quick``: digits, 2 and 3 qubits, 2 epochs (the CI run)."""
    if quick:
        families = {"amplitude": {**FAMILIES["amplitude"], "student.layers": 1},
                    "line": {**{k: v for k, v in FAMILIES["line"].items() if k.startswith("student.")},
                             "student.layers": 2}}
        return validate(GridSpec(
            name="noise-study-quick", datasets=datasets or ["digits"], classes=["0-3"], seeds=[0],
            student=StudentConfig(qubits=2, reducer="fc", encoding="amplitude", ansatz="strong", layers=1),
            student_train=TrainConfig(epochs=2, batch_size=32, lr=1e-2), teachers=[BASELINE, "lenet5"],
            teacher_data="all", teacher_train=TrainConfig(epochs=2, batch_size=64, lr=1e-3),
            axes={"student.qubits": [2, 3]}, bundles={"family": families}))
    return validate(GridSpec(
        name="noise-study", datasets=datasets or ["mnist", "fashion-mnist"], seeds=[0],
        student=StudentConfig(qubits=4, reducer="fc", encoding="amplitude", ansatz="strong", layers=2),
        student_train=TrainConfig(epochs=10, batch_size=256, lr=1e-2), teachers=[BASELINE, "lenet5"],
        teacher_data="all", teacher_train=TrainConfig(epochs=10, batch_size=128, lr=1e-3),
        axes={"student.qubits": [4, 8]}, bundles={"family": FAMILIES}, data=DataConfig()))


@dataclass(frozen=True)
class FinetuneJob:
    """A distilled student fine-tuned under ``backend``'s noise (``qkd finetune``), then its test
    images read out raw and with readout mitigation."""

    run: str
    backend: str
    folder: str  # where the fine-tuned run goes
    name: str
    per_class: int | None
    test_images: int | None
    out: str  # the result file
    epochs: int = FINETUNE_EPOCHS
    shots: int = SHOTS

    def result(self) -> dict | None:
        """The saved result, if it answers this job (its fields and the source checkpoint); else None."""
        return saved_result(self.out, identity(self))


def finetune(job: FinetuneJob, data_dir: str | None, threads: int | None = None) -> dict:
    """Run one FinetuneJob (saved to ``job.out``): finetune.json's fields, the per-image correctness
    before and after, and after with readout mitigation."""
    if (done := job.result()) is not None:
        return done
    import torch

    from ...training import atomic_write_json
    from ..single.finetune import finetune_run

    if threads:
        torch.set_num_threads(threads)
    # the fine-tuned run resumes only if it was begun for this very job (its marker), else it is begun anew:
    # a run left by other settings or from an older source checkpoint is never continued
    marker, ident = Path(job.folder) / f"{job.name}.job.json", identity(job)
    fresh = not marker.exists() or json.loads(marker.read_text()) != ident
    if fresh:
        marker.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(marker, ident)
    r = finetune_run(job.run, job.backend, job.folder, job.name, job.epochs, shots=job.shots, data_dir=data_dir,
                     progress=False, resume=not fresh, overwrite=fresh, control=False, per_class=job.per_class,
                     test_images=job.test_images)
    evals = Path(r.run) / "evaluations"
    exact, before, after = (json.loads((evals / f"{t}.json").read_text())
                            for t in ("source-exact", "source-noisy", "finetuned-noisy"))
    mitigated = evaluate(Job(r.run, f"noisy:{job.backend}", job.test_images, job.shots,
                             str(evals / "finetuned-readout.json"), mitigation="readout"), data_dir)
    result = {"job": identity(job), **dataclasses.asdict(r), "per_class": job.per_class, "epochs": job.epochs,
              "exact_correct": exact["correct"], "before_correct": before["correct"], "after_correct": after["correct"],
              "readout_accuracy": mitigated["accuracy"], "readout_correct": mitigated["correct"]}
    atomic_write_json(Path(job.out), result)
    return result


def _run(job, data_dir: str | None, threads: int | None = None) -> dict:
    return finetune(job, data_dir, threads) if isinstance(job, FinetuneJob) else evaluate(job, data_dir, threads)


def images(row: dict, images_8q: int, images_8q_amplitude: int, quick: bool = False) -> int | None:
    """Test images a student is evaluated on under noise (None: all)."""
    if int(row["qubits"]) <= 4 or quick:
        return None
    return images_8q_amplitude if row.get("family") == "amplitude" else images_8q


def plan(rows: list[dict], out: Path, images_8q: int = IMAGES_8Q, check_images: int = CHECK_IMAGES,
         backends: tuple[str, ...] = tuple(BACKENDS), quick: bool = False,
         images_8q_amplitude: int = IMAGES_8Q_AMPLITUDE,
         finetune_backends: tuple[str, ...] = FINETUNE_BACKENDS) -> list:
    """Every evaluation and fine-tuning of the grid's students, the cheap and telling ones first
    (4 qubits, then the 8-qubit line students, their fine-tuning, then the 8-qubit amplitude ones)."""
    work = []
    for row in rows:
        if row.get("role") not in ("baseline", "distilled"):
            continue
        run, q = str(out / row["run_dir"]), int(row["qubits"])
        where = out / "evaluations" / Path(run).name
        n = images(row, images_8q, images_8q_amplitude, quick)
        order = (q > 4, row.get("family") == "amplitude")
        work.append((order, 0, Job(run, "exact", None, None, str(where / "exact.json"))))
        for b in backends:
            work.append((order, 0, Job(run, f"noisy:{b}", n, SHOTS, str(where / f"noisy-{b}.json"))))
            if q <= 4 and check_images:
                work.append((order, 2, Job(run, f"ibm:{b}", check_images, SHOTS, str(where / f"ibm-{b}.json"))))
            if row.get("family") == "line":  # placed by calibration: raw, and the distilled one readout-mitigated too
                for m in ("none", "readout")[: 2 if row["role"] == "distilled" else 1]:
                    name = f"noisy-{b}{'' if m == 'none' else '-' + m}-o{PLACED_LEVEL}.json"
                    work.append((order, 1, Job(run, f"noisy:{b}", n, SHOTS, str(where / name), mitigation=m,
                                               level=PLACED_LEVEL)))
            if row["role"] != "distilled":
                continue
            for m in MITIGATED:
                recal = (20 if quick else min(RECALIBRATION_IMAGES, n or RECALIBRATION_IMAGES)) if m == "recal" else None
                work.append((order, 1, Job(run, f"noisy:{b}", n, SHOTS, str(where / f"noisy-{b}-{m}.json"),
                                           mitigation="none" if m == "recal" else m, recalibrate=recal)))
        if row["role"] != "distilled" or (q > 4 and row.get("family") == "amplitude" and not quick):
            continue
        per_class = 20 if quick else FINETUNE_PER_CLASS.get(q, FINETUNE_PER_CLASS[8])
        for k, b in enumerate(finetune_backends):
            work.append((order, 1 if k == 0 else 3, FinetuneJob(
                run, b, str(out / "finetuned"), f"{Path(run).name}-{b}", per_class, n,
                str(where / f"finetuned-{b}.json"), epochs=1 if quick else FINETUNE_EPOCHS)))
    return [job for *_, job in sorted(work, key=lambda w: w[:2])]


def run_noise_study(out: str | Path, quick: bool = False, datasets: list[str] | None = None, workers: int = 1,
                    data_dir: str | None = None, progress: bool = True, images_8q: int = IMAGES_8Q,
                    check_images: int = CHECK_IMAGES, torch_device: str = "auto",
                    images_8q_amplitude: int = IMAGES_8Q_AMPLITUDE) -> Path:
    """Train (or reuse) the students, evaluate them exactly, on the three fake backends, mitigated and
    fine-tuned, and report.

    Args:
        out: the study's folder (runs, evaluations, report).
        quick: digits, tiny students, fake_manila only: checks the path in a minute.
        datasets: restrict the datasets (default MNIST and FashionMNIST).
        workers: processes that train and evaluate side by side.
        images_8q, images_8q_amplitude: test images of the 8-qubit line and amplitude students per
            backend (their first ones).
        check_images: test images of each 4-qubit student also run on Aer (0: none).

    Returns:
        The report's path (``OUT/report.md``).

    Example:
        >>> run_noise_study("runs/noise", workers=2)
        PosixPath('runs/noise/report.md')
    """
    from tqdm.auto import tqdm

    from .noise_report import write_noise_report

    out = Path(out)
    spec = noise_study_spec(quick, datasets)
    rows = run_grid(spec, out, workers, "processes", data_dir, progress, torch_device)
    backends = ("fake_manila",) if quick else tuple(BACKENDS)
    jobs = plan(rows, out, images_8q, 20 if quick else check_images, backends, quick, images_8q_amplitude,
                backends if quick else FINETUNE_BACKENDS)
    todo = [j for j in jobs if j.result() is None]
    bar = tqdm(total=len(todo), desc="noisy evaluations", unit="job", disable=None if progress else True)
    if workers > 1 and len(todo) > 1:
        threads = worker_threads(workers)
        with worker_pool(workers) as pool:
            for _ in pool.map(_run, todo, [data_dir] * len(todo), [threads] * len(todo)):
                bar.update()
    else:
        for job in todo:
            _run(job, data_dir)
            bar.update()
    bar.close()
    return write_noise_report(out, jobs, backends, BACKENDS, FAMILIES, quick)
