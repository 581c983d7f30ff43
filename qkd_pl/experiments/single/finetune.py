"""``qkd finetune RUN --noise FAKE_BACKEND``: a trained student's circuit and head trained on under a
device's noise.

How: the run's own configuration (data, loss, teacher) with the device ``noisy:<backend>``:
the circuit transpiled for that backend and simulated under its noise model as exact, batched,
differentiable density matrices (devices/noisy.py), so the gradient is the exact gradient of
the noisy expectation values. The alternatives were slower or noisier: PennyLane's default.mixed
with ``load_noise_model`` simulates the same channels one operation at a time in Python on the
logical circuit (not the transpiled one the device runs, so its noise would sit on other
gates), and shot-based parameter-shift gradients on Aer need two jobs per parameter per batch,
each with its own shot noise. The reduction stays frozen (it maps images to features and knows
nothing of the device); the circuit and the head learn.

Selection is on validation accuracy measured on the noisy device; the starting weights are
epoch 0, so fine-tuning that does not help on validation keeps them. The report sets the
exact accuracy (the run's own test evaluation) beside the test accuracy on the noisy device
(1,024 shots) before and after.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

from ...devices.backends import DEFAULT_SHOTS
from ...errors import QkdError
from ...training import atomic_write_json
from ...training.checkpoint import read_run_checkpoint
from .per_image import Job, evaluate, paired, share_of_drop
from ...distill.saved import run_config
from .train import StartFrom, checkpoint_path, train_student

FROZEN = ("standardize", "reduce", "prepare")  # the classical front end: images to the circuit's inputs


@dataclass(frozen=True)
class Finetuned:
    """Test accuracies of one fine-tuning (``finetune.json``); differences are paired over the same
    test images: {"mean", "low", "high", "n"}, a 95 % interval (per_image.paired)."""

    run: str
    source: str
    device: str
    shots: int
    exact_accuracy: float  # the source run on its exact simulator
    noisy_before: float  # the source run on the noisy device
    noisy_after: float  # the fine-tuned run on the noisy device
    drop: dict  # exact - noisy_before
    drop_device_noise: dict  # exact - the source on the noisy device without shots (exact noisy expectations)
    drop_shots: dict  # exact - the source on noiseless Aer with the same shots: what sampling alone costs
    gain: dict  # noisy_after - noisy_before
    recovered: float | None  # gain / drop: the share of the noise-induced drop won back (where both are significant)
    best_epoch: int  # 0: no epoch beat the starting weights on validation
    val_before: float
    val_after: float
    n_test: int
    seconds: float
    control_run: str | None = None  # the same fine-tuning on the exact simulator: what more training alone gives
    control_noisy_after: float | None = None  # ... measured on the noisy device
    control_gain: dict | None = None  # control_noisy_after - noisy_before
    over_control: dict | None = None  # noisy_after - control_noisy_after: what the noise-aware training adds


def finetune_run(path: str | Path, noise: str, out: str | Path | None = None, name: str | None = None,
                 epochs: int = 3, lr: float = 1e-3, batch_size: int = 64, shots: int = DEFAULT_SHOTS,
                 data_dir: str | None = None, progress: bool = True, resume: bool = False,
                 overwrite: bool = False, control: bool = True, per_class: int | None = None,
                 test_images: int | None = None) -> Finetuned:
    """Fine-tune a trained v2 student under ``noise``'s device noise and report what it recovers.

    Args:
        path: the trained student's run folder (its ``best.pt``) or checkpoint.
        noise: an IBM fake backend, e.g. ``fake_brisbane``.
        out, name: where the fine-tuned run goes (default ``RUN/finetune-<noise>``).
        epochs, lr, batch_size: the fine-tuning's training (Adam, constant rate).
        shots: shots of the test evaluations on the noisy device.
        data_dir: where the datasets live.
        progress, resume, overwrite: as for ``train_student``.
        control: also fine-tune the same way on the exact simulator (``RUN/finetune-<noise>-exact``)
            and test it on the noisy device, so the report separates what the noise-aware
            training recovers from what more epochs alone give.
        per_class: fine-tune on N images of each class of the training split (about 80 % of them
            trained on, the rest its validation part), not all of it: at 8 qubits a noisy training
            image costs about a third of a second here, so all of MNIST is hours. The test split
            stays the source's (``full_test``), so before and after are read on the same images.
        test_images: test on the first N test images (default all), every evaluation the same ones.

    Returns:
        The exact, noisy and fine-tuned test accuracies, also written to ``finetune.json``.
    """
    t0 = time.perf_counter()
    source = checkpoint_path(path)
    cfg = run_config(read_run_checkpoint(source)[0], source)
    if cfg.kind != "student" or cfg.student.arch != "v2" or cfg.student.control:
        raise QkdError(f"{path}: qkd finetune takes a v2 quantum student (its circuit has trainable weights); "
                       f"this run is a {cfg.kind if cfg.kind != 'student' else cfg.student.arch} "
                       f"{'classical control' if cfg.kind == 'student' and cfg.student.control else ''}".rstrip())
    device = f"noisy:{noise}"
    if per_class is not None and cfg.data.per_class is not None and not cfg.data.full_test:
        raise QkdError(f"--per-class: {path} was trained and tested with --per-class {cfg.data.per_class}, so its "
                       f"test split is capped too; fine-tune it without --per-class (its data are already a subset)")
    # fewer training images, the source's test split: before and after are read on the same images
    data = cfg.data if per_class is None else dataclasses.replace(cfg.data, per_class=per_class, full_test=True)
    tuned = dataclasses.replace(cfg, data=data, student=dataclasses.replace(cfg.student, device=device),
                                train=dataclasses.replace(cfg.train, epochs=epochs, lr=lr, batch_size=batch_size,
                                                          optimizer="adam", schedule="constant", weight_decay=0.0))
    out = Path(out) if out is not None else source.parent
    name = name or f"finetune-{noise}"
    # with test_images, the run's own look at the whole test split (hours at 8 qubits) is left to the
    # evaluations below, on those images
    whole_test = test_images is None
    result = train_student(tuned, out, name, resume=resume, data_dir=data_dir, progress=progress,
                           overwrite=overwrite, start_from=StartFrom(source, FROZEN), test=whole_test)
    evals = result.run_dir / "evaluations"

    def correct(run: Path, dev: str, tag: str) -> dict:
        return evaluate(Job(str(run), dev, test_images, None if dev == "exact" else shots, str(evals / f"{tag}.json")),
                        data_dir)

    exact, before = correct(source, "exact", "source-exact"), correct(source, device, "source-noisy")
    after = correct(result.run_dir, device, "finetuned-noisy")
    if not len(exact["correct"]) == len(before["correct"]) == len(after["correct"]):
        raise QkdError(f"{result.run_dir}: the fine-tuned run's test images are not the source's "
                       f"({len(after['correct'])} against {len(before['correct'])}); nothing to pair")
    drop, gain = paired(exact["correct"], before["correct"]), paired(after["correct"], before["correct"])
    # where the drop comes from: the device's noise without sampling, and sampling without noise
    infinite_shots = evaluate(Job(str(source), device, test_images, None, str(evals / "source-noisy-no-shots.json")),
                              data_dir)
    sampled = correct(source, "qiskit.aer", "source-aer-noiseless")
    split = (paired(exact["correct"], infinite_shots["correct"]), paired(exact["correct"], sampled["correct"]))
    controls: tuple = (None, None, None, None)
    if control:
        plain = dataclasses.replace(tuned, student=dataclasses.replace(tuned.student, device=cfg.student.device))
        c = train_student(plain, out, f"{name}-exact", resume=resume, data_dir=data_dir, progress=progress,
                          overwrite=overwrite, start_from=StartFrom(source, FROZEN), test=whole_test)
        c_after = correct(c.run_dir, device, "control-noisy")
        controls = (str(c.run_dir), c_after["accuracy"], paired(c_after["correct"], before["correct"]),
                    paired(after["correct"], c_after["correct"]))
    summary = result.run_dir / ("test_metrics.json" if whole_test else "selection.json")
    start_val = json.loads(summary.read_text())["start_val_accuracy"]
    report = Finetuned(
        str(result.run_dir), str(source), device, shots, exact["accuracy"], before["accuracy"], after["accuracy"],
        drop, *split, gain, share_of_drop(gain, drop), result.best["epoch"],
        start_val, result.best["val_accuracy"], after["n"], time.perf_counter() - t0, *controls)
    atomic_write_json(result.run_dir / "finetune.json", dataclasses.asdict(report))
    return report
