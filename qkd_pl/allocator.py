"""Freed memory kept by the process, so that a training step's large temporaries reuse pages.

Why: glibc returns a freed block above its mmap threshold to the kernel at once, and the next
step's allocation of the same size faults in fresh zeroed pages. A student's step allocates
gradients and Adam temporaries of the FC reduction's size (3 MB at 8 qubits on CIFAR-10, 15 MB for
a stack of five) every step, and on this project's 2-core machine those page faults took up to a
third of the step, in a way that came and went between processes (glibc moves its threshold as it
sees frees). Raising the mmap threshold to its largest value (32 MiB) and the trim threshold to
1 GiB keeps such blocks in the heap. The arithmetic does not change; only where the memory comes
from. Measured: docs/performance/step-memory-2026-12-04.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest (HEAP_MAX_SIZE / 2 on 64-bit)
TRIM_THRESHOLD = 1024 * 1024 * 1024
_done = False


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed blocks up to 32 MiB for reuse (once per process).

    The qkd command calls it first thing, and the worker processes of a grid, a tuning or a noise
    study (``grid.worker_pool``) before their first task; the Python API never calls
    it in your own process (it would change all of it), nor do Ray's workers. Call it early in a
    program of your own, before it allocates from other threads: glibc's ``mallopt`` is not
    thread-safe. ``QKD_KEEP_FREED_MEMORY=0`` turns it off. Elsewhere than glibc
    (macOS, Windows, musl) it does nothing; under a preloaded jemalloc or tcmalloc glibc accepts
    the settings and they change nothing. A process may then hold up to 1 GiB of freed memory
    that it would otherwise have returned.

    Returns:
        Whether glibc accepted both settings (True also when done before in this process).

    Example:
        >>> from qkd_pl.allocator import keep_freed_memory
        >>> keep_freed_memory()
        True
    """
    global _done
    if _done:
        return True
    if os.environ.get("QKD_KEEP_FREED_MEMORY", "1") == "0" or not sys.platform.startswith("linux") \
            or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        _done = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(M_TRIM_THRESHOLD,
                                                                                              TRIM_THRESHOLD))
    except (OSError, AttributeError):
        return False
    return _done
