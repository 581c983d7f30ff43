"""qkd grid --executor ray on a cluster started by ``ray start --head`` (issue 28): the grid
connects to it through $RAY_ADDRESS, as a machine of a real cluster would, rather than starting a
Ray of its own (test_grid.py covers ``ray.init()`` in-process), and its numbers are a local run's.

The cluster is this test's own (its own --temp-dir and ports) and is stopped by the ids of its
processes: ``ray stop`` would stop every Ray on the machine. Where Ray cannot start, the test
skips locally and fails in CI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from qkd_pl.data.sources import data_root
from qkd_pl.experiments.sweeps.grid import load_spec, run_grid

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]

GRID = """
name = "ray-cluster"
seeds = [0, 1]
[data]
datasets = ["digits"]
classes = ["0-2"]
per_class = 15
[student]
qubits = [2]
epochs = 1
[teacher]
arch = ["none"]
"""

# The cluster's jobs, from its GCS: the dashboard (and the state API behind it) is off here.
JOBS = ("import json, sys, ray; from ray._private import state; "
        "ray.init(address=sys.argv[1], log_to_driver=False, logging_level='ERROR'); "
        "print(json.dumps([{'job': j['JobID'], 'driver_pid': j['DriverPid']} for j in state.jobs()])); "
        "ray.shutdown()")


def unavailable(reason: str):
    """Skip here; fail in CI, where Ray (the dev extra) is installed and must start."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes() -> dict[int, tuple[int, str]]:
    """pid: (parent pid, command line) of every process."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            out[int(entry)] = (ppid, cmd)
    return out


def _cluster_pids(temp_dir: Path) -> set[int]:
    """The cluster's processes: those naming its temp dir (GCS, raylet, monitors) and their
    descendants (agents and workers, which rename themselves ray::IDLE and so on)."""
    procs = _processes()
    mine = {pid for pid, (_, cmd) in procs.items() if str(temp_dir) in cmd and pid != os.getpid()}
    while True:
        children = {pid for pid, (ppid, _) in procs.items() if ppid in mine} - mine
        if not children:
            return mine
        mine |= children


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _stop_cluster(temp_dir: Path) -> None:
    """As ``ray stop`` does (SIGTERM, then SIGKILL), to this cluster's processes only."""
    for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        pids = _cluster_pids(temp_dir)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not any(_alive(p) for p in _cluster_pids(temp_dir) | pids):
            return


@pytest.fixture(scope="module")
def ray_cluster():
    """(address, environment) of a one-node cluster from ``ray start --head``, stopped afterwards."""
    try:
        import ray  # noqa: F401
    except ImportError:
        unavailable("Ray is not installed: pip install 'qkd-pl[ray]'")
    ray_cli = Path(sys.executable).parent / "ray"
    if not ray_cli.exists():
        unavailable(f"no `ray` command beside {sys.executable}")
    # a short folder: Ray's unix socket paths (<temp>/session_<date>_<pid>/sockets/plasma_store)
    # must fit in 107 bytes, which pytest's tmp_path can exceed
    temp = Path(tempfile.mkdtemp(prefix="qr-", dir="/tmp"))
    # Ray (2.60 here) turns token authentication on for `ray start` when ~/.ray/auth_token exists, and
    # a driver needs RAY_AUTH_MODE=token to join it; this test's cluster and drivers agree on none
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    try:
        r = subprocess.run([str(ray_cli), "start", "--head", f"--port={_free_port()}", "--num-cpus=2",
                            "--include-dashboard=false", f"--dashboard-port={_free_port()}",
                            f"--dashboard-agent-listen-port={_free_port()}", f"--temp-dir={temp}",
                            "--disable-usage-stats"], env=env, capture_output=True, text=True, timeout=180)
        address_file = temp / "ray_current_cluster"
        if r.returncode or not address_file.exists():
            unavailable(f"`ray start --head` failed (status {r.returncode}): {(r.stderr or r.stdout)[-800:]}")
        yield address_file.read_text().strip(), env
    finally:
        _stop_cluster(temp)
        shutil.rmtree(temp, ignore_errors=True)


def test_a_grid_runs_as_tasks_of_a_ray_start_cluster(tmp_path, ray_cluster):
    address, env = ray_cluster
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    out = tmp_path / "cluster"
    proc = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "grid", str(grid), "--out", str(out),
                             "--executor", "ray", "--quiet", "--no-report", "--data-dir", str(data_root())],
                            cwd=ROOT, env={**env, "RAY_ADDRESS": address}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        log = proc.communicate(timeout=600)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log

    # the grid was a job of this cluster, its driver that qkd grid process: not a job of a Ray it started
    query = subprocess.run([sys.executable, "-c", JOBS, address], env=env, capture_output=True, text=True,
                           timeout=180)
    assert query.returncode == 0, query.stderr[-2000:]
    jobs = json.loads(query.stdout.strip().splitlines()[-1])
    assert any(j["driver_pid"] == proc.pid for j in jobs), f"qkd grid (pid {proc.pid}) is no job of {jobs}"

    cluster = json.loads((out / "results.json").read_text())
    local = run_grid(load_spec(grid), tmp_path / "local", progress=False, data_dir=str(data_root()))
    assert len(cluster) == 2 and [(r["id"], r["test_accuracy"]) for r in cluster] == \
        [(r["id"], r["test_accuracy"]) for r in local]
