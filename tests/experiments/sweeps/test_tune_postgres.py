"""qkd tune --storage postgresql://...: several machines searching one study, run for real on a
PostgreSQL server (issue 28). Two ``qkd tune`` processes share one study's trials, none lost and
none run twice; a process killed mid-trial leaves a trial that the heartbeat marks failed and the
next process tries again with the same parameters (as test_tune.py does on SQLite).

The server: ``$QKD_TEST_POSTGRES`` (a URL, e.g. ``postgresql://qkd@127.0.0.1:55432/qkd``; .ci/run
starts one), else a throwaway one started here when PostgreSQL's ``initdb`` and ``pg_ctl`` are on
PATH or in Debian's /usr/lib/postgresql/*/bin. Without a server, or without the driver SQLAlchemy
loads for the URL (psycopg 3: pip install 'psycopg[binary]'), the tests skip locally and fail in CI."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import optuna
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]

STUDY = """
name = "{name}"
trials = {trials}
seeds = [100]
final_seeds = []
prune = false
[data]
dataset = "digits"
classes = [0, 1, 2]
per_class = 20
[student]
qubits = 2
[train]
epochs = {epochs}
batch_size = {batch_size}
[space]
"train.lr" = {{low = 0.001, high = 0.05, log = true}}
"student.readout" = ["z", "probs"]
"""

# A real `qkd tune` whose heartbeat settings are shortened (tune.GRACE_S is 120 s): the process
# that finds a killed trial stale and tries it again, without the test waiting two minutes.
SHORT_GRACE = ("import sys; from qkd_pl.experiments.sweeps import tune; tune.GRACE_S = tune.HEARTBEAT_S = 1; "
               "from qkd_pl.cli import main; sys.argv[0] = 'qkd'; main()")


def unavailable(reason: str):
    """Skip here; fail in CI, where .ci/run provides the server and the driver."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _postgres_bin() -> Path | None:
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl", path=str(Path(found).parent)):
        return Path(found).parent
    for initdb in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]),
                         reverse=True):  # Debian's postgresql package keeps them off PATH
        return Path(initdb).parent
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(folder: Path) -> list[str]:
    """initdb and postgres refuse to run as root: as root, run them as the `postgres` user (which
    Debian's package makes) or nobody, owning ``folder``."""
    if os.geteuid() != 0:
        return []
    import pwd

    for user in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            continue
        os.chown(folder, entry.pw_uid, entry.pw_gid)
        runuser = shutil.which("runuser") or "/usr/sbin/runuser"
        return [runuser, "-u", user, "--"]
    unavailable("running as root, and no `postgres` or `nobody` user to run a PostgreSQL server as")


def _require_driver(url: str) -> None:
    """The driver SQLAlchemy loads for ``url`` (Optuna's storage is SQLAlchemy): psycopg 3 for a
    plain postgresql:// URL in SQLAlchemy 2.1, psycopg2 in 2.0. Making the engine imports it
    without connecting."""
    import sqlalchemy

    try:
        sqlalchemy.create_engine(url).dispose()
    except ImportError as exc:
        unavailable(f"no PostgreSQL driver for {url.split(':')[0]}:// ({exc}): pip install 'psycopg[binary]' "
                    f"(or the driver the URL names)")


@pytest.fixture(scope="module")
def postgres_url():
    """A PostgreSQL database URL: $QKD_TEST_POSTGRES, or a throwaway server on a free port."""
    url = os.environ.get("QKD_TEST_POSTGRES")
    _require_driver(url or "postgresql://qkd@127.0.0.1:1/qkd")
    if url:
        yield url
        return
    bindir = _postgres_bin()
    if bindir is None:
        unavailable("no PostgreSQL server: set QKD_TEST_POSTGRES=postgresql://user@host:port/db, or install "
                    "PostgreSQL (initdb, pg_ctl; Debian: apt-get install postgresql)")
    # a short folder of its own outside pytest's (which only its owner can enter): the socket lives in it
    folder = Path(tempfile.mkdtemp(prefix="qkd-pg-"))
    as_user = _as_server_user(folder)
    data, log, port = folder / "data", folder / "server.log", _free_port()

    def run(*cmd):
        r = subprocess.run([*as_user, *cmd], capture_output=True, text=True, timeout=120)
        if r.returncode:
            unavailable(f"could not start a PostgreSQL server ({' '.join(cmd[:1])}): {(r.stderr or r.stdout)[-500:]}"
                        f"{log.read_text()[-500:] if log.exists() else ''}")

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "qkd", "--auth=trust", "-E", "UTF8", "-N")
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o",
            f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={folder} -c fsync=off", "start")
        try:
            run(str(bindir / "createdb") if (bindir / "createdb").exists() else "createdb",
                "-h", "127.0.0.1", "-p", str(port), "-U", "qkd", "qkd")
            yield f"postgresql://qkd@127.0.0.1:{port}/qkd"
        finally:
            subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                           capture_output=True, timeout=120)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def study_file(tmp_path: Path, trials: int, epochs: int = 2, batch_size: int = 16) -> tuple[Path, str]:
    """A study of its own name (a server given by $QKD_TEST_POSTGRES may keep earlier runs' studies)."""
    name = f"digits-pg-{uuid.uuid4().hex[:10]}"
    path = tmp_path / "study.toml"
    path.write_text(STUDY.format(name=name, trials=trials, epochs=epochs, batch_size=batch_size))
    return path, name


def qkd_tune(study: Path, out: Path, url: str, *, short_grace: bool = False, **popen) -> subprocess.Popen:
    """``qkd tune STUDY --out OUT --storage URL`` as its own process, one torch thread (two share the cores)."""
    start = ["-c", SHORT_GRACE] if short_grace else [str(ROOT / "cli.py")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, *start, "tune", str(study), "--out", str(out), "--storage", url,
                             "--quiet"], cwd=ROOT, env=env, text=True, **popen)


@contextlib.contextmanager
def ending(*procs: subprocess.Popen):
    """The processes are not left searching when the test fails or times out."""
    try:
        yield
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def trial_numbers(out: Path) -> set[int]:
    """The trials this process ran: its folder's trials/trial-NNNN-s<seed>."""
    return {int(p.name.split("-")[1]) for p in (out / "trials").glob("trial-*")} if (out / "trials").exists() \
        else set()


def test_two_processes_share_one_study(tmp_path, postgres_url):
    trials = 6
    study, name = study_file(tmp_path, trials)
    outs = [tmp_path / "machine-a", tmp_path / "machine-b"]  # as two machines: each its own folder
    procs = [qkd_tune(study, out, postgres_url, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for out in outs]
    with ending(*procs):
        logs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs

    got = optuna.load_study(study_name=name, storage=postgres_url).trials
    numbers = [t.number for t in got]
    # every trial once; none lost (none left running or failed). A process that starts a trial while
    # the other finishes the last may add one (Optuna's MaxTrialsCallback counts finished trials).
    assert sorted(numbers) == list(range(len(got))) and trials <= len(got) <= trials + 1, numbers
    assert [t.state.name for t in got] == ["COMPLETE"] * len(got), [t.state.name for t in got]
    ran = [trial_numbers(out) for out in outs]
    assert ran[0] and ran[1], f"one process ran every trial: {ran}"  # shared: both searched
    assert not ran[0] & ran[1] and ran[0] | ran[1] == set(numbers), ran  # each trial by one process only
    # the two processes drew different points, not the same seeded start-up points twice
    points = [tuple(sorted(t.params.items())) for t in got]
    assert len(set(points)) == len(points), points
    for out in outs:  # each process's summary is the whole shared study
        rows = (out / "trials.csv").read_text().splitlines()
        assert len(rows) >= 1 + trials and rows[0].startswith("trial,state,value")


def test_a_killed_process_trial_is_retried_by_the_next(tmp_path, postgres_url):
    # slow enough to be killed mid-trial, short enough for the retry to run out
    study, name = study_file(tmp_path, trials=2, epochs=5, batch_size=1)
    first, second = tmp_path / "machine-a", tmp_path / "machine-b"
    proc = qkd_tune(study, first, postgres_url, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    try:
        while not list(first.glob("trials/*/metrics.json")):  # killed in the middle of trial 0
            assert proc.poll() is None, "qkd tune ended before it could be killed mid-trial"
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    left = optuna.load_study(study_name=name, storage=postgres_url).trials
    assert [t.state.name for t in left] == ["RUNNING"]  # as a killed machine leaves it
    killed_params = left[0].params

    time.sleep(2)  # the killed trial's last heartbeat is now older than the next process's grace period
    again = qkd_tune(study, second, postgres_url, short_grace=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    with ending(again):
        log = again.communicate(timeout=600)[0]
    assert again.returncode == 0, log

    got = optuna.load_study(study_name=name, storage=postgres_url).trials
    assert [t.state.name for t in got] == ["FAIL", "COMPLETE", "COMPLETE"], [t.state.name for t in got]
    assert got[1].params == killed_params  # tried again with the killed trial's parameters
    assert got[1].system_attrs.get("failed_trial") == 0
    assert trial_numbers(second) == {1, 2}  # ... by the next process, which then finished the study
    rerun = second / "trials" / "trial-0001-s100"
    config = json.loads((rerun / "config.json").read_text())
    assert config["train"]["lr"] == pytest.approx(killed_params["train.lr"])
    assert config["student"]["readout"] == killed_params["student.readout"]
    assert config["train"]["epochs"] == 5 and (rerun / "selection.json").exists()  # trained to the end


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_processes_opening_a_new_study_at_once_draw_different_points(tmp_path, postgres_url):
    """Two machines opening a new study before either has a trial have the same sampler seed; each
    trial's draw is seeded by its number as well, or each would draw the other's start-up points."""
    from qkd_pl.experiments.sweeps.tune import load_tune_spec, open_study

    spec = load_tune_spec(study_file(tmp_path, trials=4)[0])
    a, b = open_study(spec, postgres_url), open_study(spec, postgres_url)
    drawn = []
    for study in (a, b, a, b):
        trial = study.ask()
        drawn.append((trial.number, *(p.suggest(trial) for p in spec.space)))
    assert [d[0] for d in drawn] == [0, 1, 2, 3]
    assert len({d[1:] for d in drawn}) == 4, drawn
