"""Refuse a student that cannot fit in this machine's memory before anything is allocated.

``--qubits`` is bounded by the device for hardware (checked in devices/), but on a simulator
the bound is memory, and it arrives fast: the FC reduction to 2^Q amplitudes has
(pixels x 2^Q) weights, and backprop keeps a batch of 2^Q-amplitude states per fused step.
Letting such a run start means minutes of loading and then an out-of-memory kill with no
message, so the estimate below (deliberately rough, within a small factor) is compared with
the physical memory first.
"""

from __future__ import annotations

import math
import os

from ..circuits import n_features
from ..config import StudentConfig
from ..devices import Backend
from ..errors import QkdError
from ..reduction import REDUCERS

MEMORY_FRACTION = 0.8  # of physical memory a run may plan to use
GIB = 2**30


def physical_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def estimate_bytes(cfg: StudentConfig, backend: Backend, image_shape: tuple[int, int, int], batch: int) -> dict:
    """Bytes for the reduction's weights (with gradients and Adam's two moments) and the states."""
    amplitudes = 2**cfg.qubits
    learned = cfg.arch == "v2" and REDUCERS[cfg.reducer].pixel_weights  # fc's weights, pca's fitted components
    reduce_weights = math.prod(image_shape) * n_features(cfg.encoding, cfg.qubits) if learned else 0
    # complex128 states: backprop keeps about one per layer step plus embedding and measurement for
    # the whole batch; adjoint differentiation keeps a few per sample, one sample at a time.
    states = (batch * (2 * cfg.layers + 4) if backend.diff_method == "backprop" else 4) * amplitudes * 16
    return {"reduction": reduce_weights * 4 * 4, "states": states}


def check_memory(cfg: StudentConfig, backend: Backend, image_shape: tuple[int, int, int], batch: int) -> None:
    need = estimate_bytes(cfg, backend, image_shape, batch)
    total, have = sum(need.values()), physical_memory()
    if total > MEMORY_FRACTION * have:
        raise QkdError(f"--qubits {cfg.qubits} needs about {total / GIB:,.0f} GiB on {backend.device} "
                       f"(reduction weights {need['reduction'] / GIB:,.1f} GiB, states for batch {batch} "
                       f"{need['states'] / GIB:,.1f} GiB) but this machine has {have / GIB:,.0f} GiB; use fewer "
                       f"--qubits, a smaller --batch-size, or a pooling / crop --reducer")
