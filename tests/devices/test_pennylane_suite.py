"""PennyLane's own device test suite (``pennylane/devices/tests`` of the installed PennyLane, what
``pl-device-test`` runs) against qkd.fused and qkd.fused32, analytic and with shots.

Each run is a separate pytest process (the suite has its own conftest and options: --device,
--shots, --skip-ops), started as ``python -m pytest <suite> --device=NAME [--shots=N]``. It needs
the pytest plugins pytest-mock and flaky (the ``dev`` extra). No test is deselected and no
tolerance is loosened: qkd.fused32 passes at the suite's analytic tolerance, 1e-6 (its ``tol``
fixture, ``TOL`` in the environment), because most of the suite runs numpy/autograd tapes or
shots, which qkd.fused hands to default.qubit (float64) either way; the tapes it does run on its
fused path there (torch backprop in test_gradients_torch.py: a few <Z>, probs and Hessian
circuits) agree to better than 1e-6 in complex64 too. The fused path itself is compared with
default.qubit far more widely in test_fused.py, test_fused_differential.py and test_fused_wide.py.

The selected runs go two at a time (one process each, one thread each), each test waiting for its
own while the next one starts.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

SHOTS = 10_000
RUNS = {f"{device}-{'analytic' if shots is None else f'shots{shots}'}": (device, shots)
        for device in ("qkd.fused", "qkd.fused32") for shots in (None, SHOTS)}
TIMEOUT_S = 600  # each run takes well under a minute


def suite_command(device: str, shots: int | None) -> list[str]:
    from pennylane.devices.tests import get_device_tests

    command = [sys.executable, "-m", "pytest", get_device_tests(), f"--device={device}", "--tb=short", "-q",
               "--no-flaky-report", "-p", "no:cacheprovider"]  # the suite lies in site-packages: write nothing there
    return command + ([f"--shots={shots}"] if shots is not None else [])


class Runs:
    """The selected suite runs, each a process writing to its own log, at most ``parallel`` at once:
    when a test waits for its run, the next ones are already going."""

    def __init__(self, selected: list[str], root, parallel: int):
        self.pending, self.root, self.parallel = list(selected), root, parallel
        self.procs: dict[str, tuple[list[str], subprocess.Popen, object]] = {}
        self.env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        self.env.pop("PYTEST_ADDOPTS", None)
        self.env.pop("TOL", None)  # the suite's own analytic tolerance (1e-6), not one set for something else

    def _start(self, run: str) -> None:
        self.pending.remove(run)
        cwd = self.root / run.replace(".", "_")
        cwd.mkdir()
        log = cwd / "suite.log"
        command = suite_command(*RUNS[run])
        with open(log, "w") as out:
            proc = subprocess.Popen(command, cwd=cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.procs[run] = (command, proc, log)

    def _fill(self) -> None:
        while self.pending and sum(p.poll() is None for _, p, _ in self.procs.values()) < self.parallel:
            self._start(self.pending[0])

    def wait(self, run: str) -> tuple[list[str], int | None, str]:
        """(command, exit status or None if it ran past TIMEOUT_S, output) of one run."""
        if run not in self.procs:
            self._start(run)
        self._fill()
        command, proc, log = self.procs[run]
        try:
            status = proc.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            status = None
        self._fill()
        return command, status, log.read_text()

    def close(self) -> None:
        for _, proc, _ in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def runs(request, tmp_path_factory):
    missing = [m for m in ("pytest_mock", "flaky") if not _importable(m)]
    if missing:
        pytest.fail(f"PennyLane's device test suite needs {', '.join(missing)}: pip install -e '.[dev]'")
    selected = {item.callspec.params["run"] for item in request.session.items
                if item.module is request.module and hasattr(item, "callspec")}
    runs = Runs([r for r in RUNS if r in selected], tmp_path_factory.mktemp("pennylane-suite"),
                parallel=min(2, os.cpu_count() or 1))
    yield runs
    runs.close()


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def summary_counts(output: str) -> dict[str, int]:
    """pytest's closing line ('399 passed, 35 skipped, 9 xfailed, 76 warnings in 24.19s') as counts."""
    lines = [line for line in output.splitlines() if re.search(r"\bin [\d.]+s\b", line)]
    if not lines:
        return {}
    return {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", lines[-1])}


@pytest.mark.slow
@pytest.mark.parametrize("run", list(RUNS))
def test_pennylane_device_suite(runs, run):
    command, status, output = runs.wait(run)
    command = " ".join(command)
    tail = output[-20_000:]  # the failures' short tracebacks and the summary
    assert status is not None, f"{command} ran past {TIMEOUT_S} s:\n{tail}"
    assert status == 0, f"{command} exited {status}:\n{tail}"
    counts = summary_counts(output)
    assert counts.get("passed", 0) > 0, f"{command} passed nothing:\n{tail}"
    assert not counts.get("failed") and not counts.get("error") and not counts.get("errors"), tail
    print(f"{run}: {[line for line in output.splitlines() if line.strip()][-1]}")  # pytest's closing line
