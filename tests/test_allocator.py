"""keep_freed_memory: glibc keeps freed blocks for reuse; off by environment; nothing elsewhere."""

import platform
import sys
from pathlib import Path

import pytest

from qkd_pl import allocator


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(allocator, "_done", False)


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_glibc_accepts_the_thresholds_once_per_process(fresh, monkeypatch):
    calls = []
    real = allocator.ctypes.CDLL

    def recording(name):
        libc = real(name)

        class Libc:
            def mallopt(self, option, value):
                calls.append((option, value))
                return libc.mallopt(option, value)
        return Libc()

    monkeypatch.setattr(allocator.ctypes, "CDLL", recording)
    assert allocator.keep_freed_memory() is True
    assert calls == [(allocator.M_MMAP_THRESHOLD, 32 * 1024 * 1024), (allocator.M_TRIM_THRESHOLD, 1024 ** 3)]
    assert allocator.keep_freed_memory() is True and len(calls) == 2  # once per process


def test_qkd_keep_freed_memory_0_leaves_malloc_alone(fresh, monkeypatch):
    monkeypatch.setenv("QKD_KEEP_FREED_MEMORY", "0")
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda name: pytest.fail("mallopt was called"))
    assert allocator.keep_freed_memory() is False


def test_a_malloc_that_refuses_is_reported_not_raised(fresh, monkeypatch):
    monkeypatch.setattr(allocator.sys, "platform", "linux")
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("glibc", "2.36"))

    class Refusing:
        def mallopt(self, option, value):
            return 0
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda name: Refusing())
    assert allocator.keep_freed_memory() is False


@pytest.mark.parametrize("where", [("linux", ("", "")), ("darwin", ("", "")), ("win32", ("", ""))],
                         ids=["musl", "macos", "windows"])
def test_elsewhere_than_glibc_malloc_is_left_alone(fresh, monkeypatch, where):
    monkeypatch.setattr(allocator.sys, "platform", where[0])
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: where[1])
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda name: pytest.fail("mallopt was called"))
    assert allocator.keep_freed_memory() is False


def test_the_qkd_command_and_grid_workers_set_it_before_their_work(monkeypatch):
    from qkd_pl.cli import app
    from qkd_pl.experiments.sweeps import grid

    calls = []
    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: calls.append("main") or True)
    monkeypatch.setattr(sys, "argv", ["qkd", "--version"])
    with pytest.raises(SystemExit):
        app.main()
    assert calls == ["main"]
    seen = {}

    class Pool:
        def __init__(self, workers, mp_context=None, initializer=None):
            seen["initializer"] = initializer

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def submit(self, *args):
            raise AssertionError("no task in this test")

    monkeypatch.setattr(grid, "ProcessPoolExecutor", Pool)
    assert list(grid._pool([], "out", None, 2)) == []
    assert seen["initializer"] is allocator.keep_freed_memory  # in each worker, before its first task


def test_tuning_and_noise_workers_come_from_the_same_pool_as_grid_workers(monkeypatch):
    from qkd_pl.experiments.paper import noise_study
    from qkd_pl.experiments.sweeps import grid, tune

    seen = {}
    monkeypatch.setattr(grid, "ProcessPoolExecutor", lambda workers, mp_context=None, initializer=None:
                        seen.update(workers=workers, start=mp_context.get_start_method(), initializer=initializer))
    grid.worker_pool(3)
    assert seen == {"workers": 3, "start": "spawn", "initializer": allocator.keep_freed_memory}
    assert tune.worker_pool is grid.worker_pool and noise_study.worker_pool is grid.worker_pool
    for module in (tune, noise_study):  # no pool of their own beside it
        assert "ProcessPoolExecutor(" not in Path(module.__file__).read_text()
