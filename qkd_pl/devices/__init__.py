"""Which PennyLane device runs a student's circuit, and with which differentiation method."""

from .backends import AUTO_BACKPROP_MAX_QUBITS, EXACT, Backend, installed, make_device, resolve_backend
from .registry import DEVICES, Device, device_record

__all__ = ["AUTO_BACKPROP_MAX_QUBITS", "DEVICES", "EXACT", "Backend", "Device", "device_record", "installed", "make_device",
           "resolve_backend"]
