"""The devices ``--device`` may name, each a record of what it can do.

``backends.py`` resolves a name against these records (and the ``auto`` rule), ``qkd
backends`` lists them with a measured speed, and ``qkd bench`` times the installed exact
ones; so a new device is one record here plus, if PennyLane cannot build it by name, one
branch in ``backends.make_device``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..registry import Registry


@dataclass(frozen=True)
class Device:
    """A PennyLane device, or a family of them (``ibm:<backend>``).

    ``diff_method`` is how students train on it; None means shot-based and evaluation only.
    ``examples`` are the names the backend table shows for a family.
    """

    name: str
    help: str
    diff_method: str | None
    broadcasting: str = "no (one circuit per sample)"
    optional: bool = False  # a plugin that may be missing here
    timing_batch: int = 256  # batch of the backend table's speed measurement
    examples: tuple[str, ...] = ()  # a family (``ibm:<backend>``) has examples; a single device none


DEVICES: Registry[Device] = Registry("device", "--device")
DEVICES.add(Device("qkd.fused", "this project's device: batched backprop, gates fused into few torch operations",
                   "backprop", "yes (fused gates)"))
DEVICES.add(Device("qkd.fused32", "qkd.fused in complex64: half the arithmetic, float32 results (~1e-7 relative)",
                   "backprop", "yes (fused gates)"))
DEVICES.add(Device("default.qubit", "PennyLane's reference simulator, batched backprop", "backprop", "yes"))
DEVICES.add(Device("lightning.qubit", "PennyLane's C++ simulator, adjoint gradients", "adjoint"))
DEVICES.add(Device("lightning.kokkos", "lightning with Kokkos (when installed)", "adjoint", optional=True))
DEVICES.add(Device("lightning.gpu", "lightning on an NVIDIA GPU (when installed)", "adjoint", optional=True))
BATCHED = "yes (one transpilation and one job per batch; --per-circuit: one of each per sample)"
DEVICES.add(Device("qiskit.aer", "Qiskit Aer with shots, noiseless or with --noise FAKE_BACKEND", None, BATCHED,
                   timing_batch=256))
DEVICES.add(Device("noisy", "noisy:<fake backend>: that device's transpiled circuit under its noise model, exact "
                            "density matrices in torch (trains and fine-tunes by backprop; --shots samples)",
                   "backprop", "yes (batched density matrices)", timing_batch=256, examples=("noisy:fake_brisbane",)))
DEVICES.add(Device("ibm", "ibm:<fake backend> (local, that device's noise), ibm:<backend> or ibm:least_busy "
                          "(IBM Quantum; token from QISKIT_IBM_TOKEN / QISKIT_IBM_INSTANCE or a saved account)",
                   None, BATCHED, timing_batch=64, examples=("ibm:fake_manila", "ibm:least_busy")))


def device_record(name: str) -> Device:
    """The record of a ``--device`` name (``ibm:fake_manila`` -> the ``ibm`` family)."""
    return DEVICES[name.split(":", 1)[0] if ":" in name else name]
