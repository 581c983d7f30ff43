"""keep_freed_memory: glibc keeps freed blocks for reuse; off by environment; nothing elsewhere."""

import platform
import sys

import pytest

from qkd_pl.training import allocator


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
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("", ""))  # musl, or not Linux
    assert allocator.keep_freed_memory() is False
