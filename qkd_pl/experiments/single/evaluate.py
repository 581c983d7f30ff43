"""Evaluate a saved run on any device: its test split, once more, on a simulator, a noisy
emulation or IBM hardware (``qkd evaluate``).

Shot-based and remote devices are evaluated batch by batch with retries, and their progress is
saved; on the batched IBM device every job id is recorded as it is submitted, so an interrupted
hardware evaluation retrieves its jobs instead of submitting them twice (remote_eval.py).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from ...data import load_data
from ...data.digest import tensor_digest
from ...devices import resolve_backend
from ...distill.saved import checkpoint_path, model_from_checkpoint, run_config, user_student
from ...errors import QkdError
from ...training import atomic_write_json, predict_logits, score
from ...training.checkpoint import read_run_checkpoint
from .hardware import say_hardware_cost
from .remote_eval import batched_devices, circuit_devices, remote_accuracy


@dataclass(frozen=True)
class Evaluation:
    """One evaluation of a saved run on its test split (``evaluation-<device>.json``)."""

    test_accuracy: float
    test_loss: float
    n_test: int
    trained_on: str | None
    evaluated_on: str
    shots: int | None
    noise: str | None
    limit: int | None
    checkpoint: str
    seconds: float
    per_circuit: bool = False
    batch_size: int | None = None  # shot-based devices: images per batch (per job when batched)
    jobs_submitted: int | None = None  # batched device: primitive jobs this evaluation submitted ...
    jobs_retrieved: int | None = None  # ... and retrieved by id from an earlier, interrupted one
    transpilations: int | None = None
    depth: int | None = None  # of the transpiled circuit
    two_qubit_gates: int | None = None
    ledger: str | None = None  # the job ids, as submitted
    mitigation: str = "none"  # noisy:<fake>: "readout" corrected the readouts, "zne" extrapolated too (mitigation.py)
    optimization_level: int | None = None  # the transpiler's level, where it was not the default (1)
    zne: dict | None = None  # zne: factors, extrapolator and the file of the raw per-factor readouts
    recalibrated: dict | None = None  # the head refitted on the device's readouts of validation images
    correct: str | None = None  # per test image, 1 if right: paired differences between evaluations (per_image.paired)


def evaluate_run(path: str | Path, device: str | None = None, shots: int | None = None, noise: str | None = None,
                 data_dir: str | None = None, limit: int | None = None, per_circuit: bool = False,
                 mode: str = "batch", batch_size: int | None = None, yes: bool = False,
                 ask: Callable[[str], bool] | None = None, new_evaluation: bool = False,
                 resubmit_lost: bool = False, mitigation: str = "none",
                 optimization_level: int | None = None, extrapolator: str | None = None,
                 recalibrate: int | None = None, folder: str | Path | None = None) -> Evaluation:
    """Test a saved run's best checkpoint, optionally on another device than it was trained on.

    Shot-based and remote devices are evaluated batch by batch with retries, and their progress
    is saved; on the batched device every job id is recorded as it is submitted, so an
    interrupted hardware evaluation retrieves its jobs instead of submitting them twice.

    Args:
        path: a run folder (its ``best.pt``) or a checkpoint file.
        device: any ``--device`` name; default the one it was trained on.
        shots: shots of a shot-based device (default 1024).
        noise: with ``qiskit.aer``, the IBM fake backend whose noise model to apply.
        data_dir: where the datasets live.
        limit: evaluate only the first N test images.
        per_circuit: on a shot-based device, pennylane-qiskit's path (a job per image).
        mode: on IBM Quantum, ``batch``, ``session`` or ``job``.
        batch_size: images per batch (per job on the batched device; default 1000, or 16 per circuit,
            or, continuing an evaluation, the one it began with).
        yes: submit to paid hardware without asking.
        ask: shows the plan and answers whether to submit it (a terminal prompt); without it, and
            without ``yes``, a paid submission is refused.
        new_evaluation: begin another job ledger beside one that records other work (another
            checkpoint, batch size, backend, shots or images), instead of being refused.
        resubmit_lost: submit again the images of jobs the service no longer knows (marked lost).
        mitigation: ``none``, or on ``noisy:<fake backend>``: ``readout``, the readouts corrected by
            the inverse of each qubit's readout matrix (``evaluation-<device>-readout.json``); ``zne``,
            that at noise factors 1, 3 and 5, extrapolated to zero noise; the raw per-factor
            readouts go to ``evaluation-<device>-zne.npz`` (``refit_zne`` fits another extrapolator).
        extrapolator: with ``zne``: ``exponential`` (default), ``linear`` or ``richardson``.
        recalibrate: refit the student's head on the device's readouts of the first N images of
            its validation split (``recalibrate.py``) before testing; ``-recal<N>`` in the file names.
        optimization_level: the transpiler's level for noisy:, qiskit.aer and ibm: devices (default
            1; 2 and 3 choose the qubits by their calibrated errors); ``-o<level>`` in the file names.
        folder: where ``evaluation-<tag>.json`` (and zne's ``.npz``) go, default beside the checkpoint
            (a study keeps its own); an IBM evaluation's job ledger stays beside the checkpoint.

    Returns:
        The evaluation, also written to ``evaluation-<device>.json`` beside the checkpoint.

    Example:
        >>> evaluate_run("runs/student-digits-1a2b3c4d", device="lightning.qubit").test_accuracy
        0.93...
    """
    ckpt_file = checkpoint_path(path)
    ckpt, digest = read_run_checkpoint(ckpt_file)
    saved = run_config(ckpt, ckpt_file)
    backend = None
    if saved.kind == "student" and user_student(saved):
        if device is not None:
            raise QkdError(f"{path} is your own student ({saved.student.arch}); --device applies to qkd-pl's "
                           f"circuit students only: evaluate it without --device")
    elif saved.kind == "student":
        s = saved.student
        backend = resolve_backend(device or s.device, s.qubits, shots, noise, per_circuit=per_circuit, mode=mode,
                                  mitigation=mitigation, optimization_level=optimization_level,
                                  extrapolator=extrapolator)
    elif device is not None:
        raise QkdError(f"{path} is a teacher; --device applies to quantum students only")
    _check_applies(saved, mitigation, extrapolator, recalibrate)
    if backend is not None and backend.remote and mitigation != "none":
        _check_remote_mitigation(backend, saved.student, mitigation)
    if backend is not None and per_circuit and backend.paid and not yes:
        raise QkdError("--per-circuit on IBM Quantum hardware submits one job per image and records none of them "
                       "(a resumed run submits unfinished images again): add --yes to accept that, or leave "
                       "--per-circuit out")
    if recalibrate is not None and (backend is None or backend.remote):
        raise QkdError("--recalibrate refits a circuit student's head on a simulated device's readouts (noisy:<fake "
                       "backend>, or an exact one); on qiskit.aer and ibm: its calibration images would be jobs no "
                       "ledger records yet" if backend is not None else
                       "--recalibrate applies to qkd-pl's circuit students, evaluated with --device")
    model, cfg, meta = model_from_checkpoint(ckpt, ckpt_file, backend)
    if backend is not None:  # a fake IBM device: the circuit's cost there, warned if its outputs are mostly noise
        say_hardware_cost(cfg.student, backend.device, per_circuit=per_circuit,
                          optimization_level=backend.optimization_level)
    data = load_data(cfg.data, data_dir)
    x, y = data.x_test, data.y_test
    if limit is not None:  # the first N test images: for hardware, where every circuit costs
        x, y = x[:limit], y[:limit]
    t0 = time.perf_counter()
    recalibrated = _recalibrate(model, data, recalibrate) if recalibrate is not None else None
    evaluated_on = backend.device if backend else "cpu (torch)"
    work_device = evaluated_on
    if backend is not None and backend.device == "ibm:least_busy":
        # The backend it resolved to this time names the work: a rerun that resolves to another is
        # another evaluation, and --device ibm:<name> continues this one.
        names = sorted({d.runner.name for d in batched_devices(model)})
        if len(names) == 1:
            work_device = f"ibm:{names[0]}"
            print(f"ibm:least_busy is {names[0]} now; --device {work_device} continues this evaluation", flush=True)
    tag = (work_device.split(" ")[0].replace(":", "-") + (f"-noise-{noise}" if noise else "")
           + ("-per-circuit" if per_circuit else "") + (f"-{mitigation}" if mitigation != "none" else "")
           + (f"-{extrapolator}" if extrapolator not in (None, "exponential") else "")
           + (f"-recal{recalibrate}" if recalibrate is not None else "")
           + (f"-o{optimization_level}" if optimization_level not in (None, 1) else ""))
    remote = correct = None
    if backend is not None and backend.remote:  # Qiskit jobs: slow and fallible
        # What the work is, never how it was named (the path as typed, the working folder): a rerun
        # spelled differently must find the jobs it paid for. The images are the whole test split's
        # (a --limit takes a prefix of them, and the ledger outlives a change of --limit).
        context = {"sha256": digest, "device": work_device, "shots": backend.shots, "noise": backend.noise,
                   "per_circuit": per_circuit, "data": cfg.data.dataset, "source": data.source,
                   "images": tensor_digest(data.x_test)}
        if optimization_level not in (None, 1):  # other circuits, other work (absent at the default: old ledgers match)
            context["optimization_level"] = optimization_level
        # the work's mitigation, always named: jobs of a ledger from before it was (an Estimator at the service's
        # default, TREX) are never mixed with raw ones
        context["mitigation"] = mitigation + (f"/{extrapolator or 'exponential'}" if mitigation == "zne" else "")
        if work_device != backend.device and not new_evaluation:
            _refuse_unfinished_elsewhere(ckpt_file.parent, context)
        remote = remote_accuracy(model, x, y, backend, ckpt_file.parent / f"evaluation-{tag}", context, limit,
                                 batch_size, _approval(yes, ask), new_evaluation, resubmit_lost)
        test, correct = remote.score, remote.correct
    else:
        with torch.no_grad():
            logits = predict_logits(model, x, batch_size=1000 if backend is not None and backend.shots else 256)
        test = score(logits, y)
        correct = "".join(map(str, (logits.argmax(1) == y).to(torch.int64).tolist()))
    files = Path(folder) if folder is not None else ckpt_file.parent
    zne = _save_zne(model, files / f"evaluation-{tag}.npz", y, digest) if mitigation == "zne" else None
    report = Evaluation(test.accuracy, test.loss, test.n, meta.get("trained_on"), evaluated_on,
                        backend.shots if backend else None, backend.noise if backend else None, limit,
                        str(ckpt_file), time.perf_counter() - t0, per_circuit,
                        **({k: getattr(remote, k) for k in REMOTE_FIELDS} if remote else {}),
                        mitigation=mitigation,
                        optimization_level=backend.optimization_level if backend is not None and (
                            backend.remote or backend.device.startswith("noisy:")) and not per_circuit else None,
                        zne=zne, recalibrated=recalibrated, correct=correct)
    atomic_write_json(files / f"evaluation-{tag}.json", dataclasses.asdict(report))
    return report


def _check_applies(saved, mitigation: str, extrapolator: str | None, recalibrate: int | None) -> None:
    """Mitigation and recalibration act on a qkd-pl circuit student's readouts: refused for anything else."""
    asked = [name for name, on in ((f"--mitigation {mitigation}", mitigation != "none"),
                                   ("--extrapolator", extrapolator is not None),
                                   ("--recalibrate", recalibrate is not None)) if on]
    if not asked:
        return
    if saved.kind != "student" or user_student(saved):
        what = "a teacher" if saved.kind != "student" else f"your own student ({saved.student.arch})"
        raise QkdError(f"{' and '.join(asked)} act on a qkd-pl circuit student's readouts; this run is {what}")
    if saved.student.control:
        raise QkdError(f"{' and '.join(asked)} act on a circuit's readouts; this run is the classical control, which "
                       f"has no circuit")
    if recalibrate is not None and saved.student.arch != "v2":
        raise QkdError(f"--recalibrate refits a v2 student's linear head; a {saved.student.arch} student has none")


def _check_remote_mitigation(backend, student, mitigation: str) -> None:
    """Refuse, before any work, mitigation that would not run as asked: ZNE of sampled probabilities
    (the Sampler has none), and the Estimator's TREX or ZNE on a local fake backend (local mode drops
    qiskit-ibm-runtime's resilience options without a word)."""
    from ...devices.ibm import is_fake

    sampled = student.arch == "hybrid-cnn" or student.readout == "probs"
    target = backend.device.split(":", 1)[1]
    if mitigation == "zne" and sampled:
        raise QkdError("--mitigation zne extrapolates expectation values, and a student reading probabilities runs "
                       "on qiskit-ibm-runtime's Sampler, which has none: use --mitigation readout, or a student with "
                       "--readout z or zz")
    if not sampled and is_fake(target):
        raise QkdError(f"{target} runs locally, where qiskit-ibm-runtime ignores the Estimator's error mitigation; "
                       f"evaluate on noisy:{target} with --mitigation {mitigation} (the same device emulated, "
                       f"mitigated the same way)")


def _recalibrate(model, data, n: int) -> dict:
    """The head refitted on the first ``n`` validation images, as the device reads them out."""
    from .recalibrate import recalibrate_head

    if n > len(data.x_val):
        raise QkdError(f"--recalibrate {n}: the validation split holds {len(data.x_val)} images")
    done = recalibrate_head(model, data.x_val[:n], data.y_val[:n])
    for device in _emulators(model):
        device.zne_values.clear()  # the calibration's readouts are not the test's
    print(f"head recalibrated on {n} validation images on this device: their accuracy {done.accuracy_before:.4f} "
          f"-> {done.accuracy_after:.4f} (fitted on them)", flush=True)
    return dataclasses.asdict(done)


def _emulators(model) -> list:
    """The model's devices that keep zne's raw per-factor readouts (the emulation, or IBM's Estimator)."""
    return circuit_devices(model, lambda d: hasattr(d, "zne_values"))


def _save_zne(model, path: Path, labels, digest: str) -> dict:
    """The raw per-factor readouts of a zne evaluation, in test order, with what they were fitted with."""
    import numpy as np

    emulators = _emulators(model)
    if len(emulators) != 1:
        raise QkdError(f"zne keeps the readouts of one quantum layer; this student has {len(emulators)}")
    from ...devices.mitigation import ZNE_FACTORS

    device = emulators[0]
    record = {"factors": list(ZNE_FACTORS), "extrapolator": device.extrapolator, "values": None}
    values = torch.cat(device.zne_values).numpy() if device.zne_values else None
    device.zne_values.clear()
    if values is None or len(values) != len(labels):
        # IBM's service returned no per-factor values, or a resumed evaluation ran only some batches here
        record["values_missing"] = (f"per-factor values of {0 if values is None else len(values)} of "
                                    f"{len(labels)} images came back in this run")
        return record
    head = getattr(model, "head", None)  # the head that read them (a recalibrated one, if so)
    extra = ({"head_weight": head.weight.detach().double().numpy(), "head_bias": head.bias.detach().double().numpy()}
             if isinstance(head, torch.nn.Linear) else {})
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, values=values, factors=np.asarray(ZNE_FACTORS), labels=labels.numpy(),
                 extrapolator=np.asarray(device.extrapolator), checkpoint_sha256=np.asarray(digest), **extra)
    tmp.replace(path)
    record["values"] = path.name
    return record


def refit_zne(path: str | Path, extrapolator: str, run: str | Path | None = None) -> float:
    """The accuracy of a zne evaluation with another extrapolator fitted to its stored raw readouts
    (no circuit runs again), read by the head that read them then (the trained one, or the one a
    ``--recalibrate`` refitted, stored beside them).

    Args:
        path: an ``evaluation-<device>-zne[...].npz`` beside its run's ``best.pt``.
        extrapolator: ``exponential``, ``linear`` or ``richardson``.
        run: the run folder or checkpoint it evaluated, where the file is not beside it (a study's).

    Returns:
        The test accuracy on the refitted readouts.

    Example:
        >>> refit_zne("runs/hw/mnist-8q/evaluation-noisy-fake_brisbane-zne.npz", "linear")
        0.89...
    """
    import numpy as np

    from ...devices.mitigation import extrapolate_readouts

    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            stored = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise QkdError(f"{path} is not a zne evaluation's readouts ({type(exc).__name__})") from None
    if "head_weight" not in stored:
        raise QkdError(f"{path} holds no linear head: refit_zne reads a v2 student's readouts")
    ckpt_file = checkpoint_path(path.parent if run is None else run)
    ckpt, digest = read_run_checkpoint(ckpt_file)
    if str(stored.get("checkpoint_sha256", digest)) != digest:
        raise QkdError(f"{path} was evaluated from another checkpoint than {ckpt_file}'s")
    cfg = run_config(ckpt, ckpt_file)
    values = torch.from_numpy(stored["values"])
    kind = "probs" if cfg.student.readout == "probs" else "expval"
    readouts = extrapolate_readouts(values, kind, tuple(int(f) for f in stored["factors"]), extrapolator)
    logits = readouts @ torch.from_numpy(stored["head_weight"]).T + torch.from_numpy(stored["head_bias"])
    return float((logits.argmax(1).numpy() == stored["labels"]).mean())


def _refuse_unfinished_elsewhere(folder: Path, context: dict[str, Any]) -> None:
    """ibm:least_busy: a ledger of this same work on another backend, with jobs still out, is
    continued there (or a new evaluation begun on purpose), never left behind while the same
    images are paid for again on whichever backend is least busy now."""
    from ...devices.jobs import read_ledger

    same = ("sha256", "shots", "noise", "per_circuit", "images", "optimization_level", "mitigation")
    for path in sorted(folder.glob("evaluation-ibm-*.jobs.json")):
        saved, records = read_ledger(path)
        if saved.get("device") != context["device"] and all(saved.get(k) == context.get(k) for k in same) \
                and any(r.status == "submitted" for r in records):
            level = f" --optimization-level {saved['optimization_level']}" if "optimization_level" in saved else ""
            raise QkdError(f"{path} holds unfinished jobs of this evaluation on {saved.get('device')}: rerun with "
                           f"--device {saved.get('device')}{level} to retrieve them, or add --new-evaluation to "
                           f"evaluate on {context['device']}, which ibm:least_busy picks now")


REMOTE_FIELDS = ("batch_size", "jobs_submitted", "jobs_retrieved", "transpilations", "depth", "two_qubit_gates",
                 "ledger")  # what an Evaluation reports of a RemoteScore


def _approval(yes: bool, ask: Callable[[str], bool] | None) -> Callable[[str], None]:
    """What stands between a plan and a paid submission: ``--yes``, a terminal's answer, or a refusal."""

    def approve(plan: str) -> None:
        print(f"plan: {plan}", flush=True)
        if yes:
            return
        if ask is None:
            raise QkdError("submitting to IBM Quantum hardware needs confirmation and there is no terminal to ask: "
                           "rerun with --yes to submit this plan")
        if not ask("submit these jobs?"):
            raise QkdError("not submitted: the plan was declined")

    return approve
