"""Device names the user may pass to ``--device``, and the ``auto`` rule.

``auto`` exists because the obvious choice is the slow one. lightning.qubit is PennyLane's
fast C++ simulator, but adjoint differentiation cannot broadcast over a batch, so it runs one
circuit per sample, and it must decompose the amplitude embedding (a state preparation) into
gates to differentiate through it. default.qubit with backprop runs the whole batch as one
broadcast torch computation. Measured on this project's 2-core machine with a trainable FC
layer before amplitude encoding (``pytest benchmarks/``): 4 qubits about 17,000 vs 46
samples/s, 8 qubits about 3,300 vs 6, 12 qubits 295 vs 0.4, 16 qubits 6.8 (lightning too slow
to finish a batch). Above 16 qubits backprop's memory (batch x 2^Q amplitudes kept per gate)
becomes the limit, so ``auto`` hands larger circuits to lightning.qubit.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import QkdError

# name -> differentiation method used for training on that device.
DEVICES = {
    "default.qubit": "backprop",
    "lightning.qubit": "adjoint",
}
AUTO_BACKPROP_MAX_QUBITS = 16


@dataclass(frozen=True)
class Backend:
    device: str
    diff_method: str
    reason: str

    def describe(self) -> str:
        return f"{self.device} ({self.diff_method}): {self.reason}"


def resolve_backend(device: str, n_qubits: int, shots: int | None = None) -> Backend:
    """Turn ``--device`` into a concrete device and differentiation method, or refuse up front."""
    if shots is not None:
        raise QkdError("--shots applies to shot-based devices only; default.qubit and lightning.qubit "
                       "here simulate exactly (leave --shots out)")
    if device == "auto":
        if n_qubits <= AUTO_BACKPROP_MAX_QUBITS:
            return Backend("default.qubit", "backprop",
                           f"auto: broadcasting a whole batch through torch backprop was the fastest exact "
                           f"simulator measured up to {AUTO_BACKPROP_MAX_QUBITS} qubits (about 17,000 vs 46 "
                           f"samples/s for lightning.qubit adjoint at 4 qubits on 2 cores)")
        return Backend("lightning.qubit", "adjoint",
                       f"auto: above {AUTO_BACKPROP_MAX_QUBITS} qubits backprop's memory grows past what "
                       f"broadcasting saves; lightning.qubit's adjoint method keeps one state per sample")
    if device not in DEVICES:
        raise QkdError(f"unknown --device {device!r}; choose auto or one of: {', '.join(DEVICES)}")
    return Backend(device, DEVICES[device], "chosen with --device")


def make_device(backend: Backend, n_qubits: int):
    import pennylane as qml

    return qml.device(backend.device, wires=n_qubits)
