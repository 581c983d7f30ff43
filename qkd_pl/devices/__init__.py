"""Which PennyLane device runs a student's circuit, and with which differentiation method."""

from .backends import AUTO_BACKPROP_MAX_QUBITS, DEVICES, EXACT, Backend, installed, make_device, resolve_backend

__all__ = ["AUTO_BACKPROP_MAX_QUBITS", "DEVICES", "EXACT", "Backend", "installed", "make_device", "resolve_backend"]
