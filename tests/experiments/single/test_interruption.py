"""Real processes: a run killed with SIGKILL mid-epoch, or stopped with Ctrl-C, and resumed ends
bit-identical to an uninterrupted run (its metrics, and every tensor and value of best.pt and
last.pt: weights, optimizer state, RNG state); the same command twice gives the same numbers."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from qkd_pl.training.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[3]
# Batch size 1 on all of digits: a few seconds per epoch, long enough to interrupt inside one.
ARGS = ["train-student", "--dataset", "digits", "--qubits", "3", "--epochs", "2", "--batch-size", "1", "--quiet"]
TIMING = ("seconds", "train_samples_per_s")


def command(out: Path, *extra: str) -> list[str]:
    return [sys.executable, str(ROOT / "cli.py"), *ARGS, "--out", str(out), "--name", "run", *extra]


def numbers(run: Path) -> tuple[list[dict], dict]:
    metrics = [{k: v for k, v in row.items() if k not in TIMING} for row in json.loads((run / "metrics.json").read_text())]
    test = json.loads((run / "test_metrics.json").read_text())
    return metrics, {k: test[k] for k in ("test_accuracy", "test_loss", "best_epoch", "best_val_accuracy")}


def assert_identical(a, b, where: str = "") -> None:
    """``a`` and ``b`` equal to the bit, recursively: tensors by torch.equal (and dtype and shape),
    containers key by key, everything else by type and ==. Excluded by name: the wall-clock
    timings of each epoch's history row (``seconds``, ``train_samples_per_s``), which differ
    between any two runs."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape, where
        assert torch.equal(a, b), f"{where}: differs by up to {(a.double() - b.double()).abs().max()}"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: keys {set(a) ^ set(b)}"
        for k in a:
            if where.startswith("/history[") and k in TIMING:
                continue  # wall-clock time, not a result
            assert_identical(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{where}[{i}]")
    else:
        assert type(a) is type(b) and a == b, f"{where}: {a!r} != {b!r}"


def tensors_in(obj) -> int:
    if isinstance(obj, torch.Tensor):
        return 1
    if isinstance(obj, dict):
        return sum(tensors_in(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(tensors_in(v) for v in obj)
    return 0


def assert_same_run(run: Path, reference: Path) -> None:
    """The same metrics, test numbers and checkpoints (best.pt, last.pt) as the reference run."""
    assert numbers(run) == numbers(reference)
    for name in ("best.pt", "last.pt"):
        mine, theirs = load_checkpoint(run / name), load_checkpoint(reference / name)
        assert_identical(mine, theirs, "")
        assert tensors_in(theirs["state_dict"]) > 0
    last = load_checkpoint(reference / "last.pt")
    assert tensors_in(last["optimizer"]["state"]) > 0 and isinstance(last["rng"], torch.Tensor)


def epochs_done(run: Path) -> int:
    try:
        return len(json.loads((run / "metrics.json").read_text()))
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


def start_and_interrupt(out: Path, sig: int) -> subprocess.CompletedProcess:
    """Start a run, wait until epoch 1 is saved, then send ``sig`` during epoch 2."""
    # Ctrl-C's default action in the run, even where pytest was started in the background by a
    # script (`cmd &`), whose children inherit SIGINT ignored and would never see it
    proc = subprocess.Popen(command(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while epochs_done(out / "run") < 1:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "epoch 1 never finished"
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert epochs_done(out / "run") == 1, "the signal arrived after epoch 2 had finished: nothing was interrupted"
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    subprocess.run(command(out), check=True, cwd=ROOT, capture_output=True)
    return out / "run"


@pytest.mark.slow
def test_the_same_command_twice_gives_the_same_numbers(reference, tmp_path):
    subprocess.run(command(tmp_path), check=True, cwd=ROOT, capture_output=True)
    assert_same_run(tmp_path / "run", reference)


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(reference, tmp_path):
    killed = start_and_interrupt(tmp_path, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    assert not list((tmp_path / "run").glob(".*.tmp"))  # no half-written file was left behind
    subprocess.run(command(tmp_path, "--resume"), check=True, cwd=ROOT, capture_output=True)
    assert_same_run(tmp_path / "run", reference)


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_saying_how_to_resume(reference, tmp_path):
    stopped = start_and_interrupt(tmp_path, signal.SIGINT)
    assert stopped.returncode == 130 and "Traceback" not in stopped.stderr
    line = stopped.stderr.strip()
    assert "\n" not in line and line.startswith("Interrupted: stopped during epoch 2") and "--resume" in line
    subprocess.run(command(tmp_path, "--resume"), check=True, cwd=ROOT, capture_output=True)
    assert_same_run(tmp_path / "run", reference)
    sessions = json.loads((tmp_path / "run" / "environment.json").read_text())
    assert [s["resumed"] for s in sessions] == [False, True]


def test_the_comparison_sees_one_bit(reference):
    """The checkpoint comparison above is not vacuous: one ulp in one optimizer moment fails it."""
    ckpt = load_checkpoint(reference / "last.pt")
    changed = load_checkpoint(reference / "last.pt")
    moment = changed["optimizer"]["state"][0]["exp_avg"]
    moment.view(-1)[0] = torch.nextafter(moment.view(-1)[0], torch.tensor(float("inf"), dtype=moment.dtype))
    with pytest.raises(AssertionError, match="exp_avg"):
        assert_identical(changed, ckpt)
    assert_identical(load_checkpoint(reference / "last.pt"), ckpt)
