"""What ``--device`` may name, what each device can do, and the ``auto`` rule.

Exact simulators train students; shot-based devices (Aer, IBM fake backends, IBM hardware)
evaluate them. Every combination is checked here, before any data is loaded or any circuit
runs, so a refusal costs nothing and says why.

``auto`` exists because the obvious choice is the slow one. lightning.qubit is PennyLane's
fast C++ simulator, but adjoint differentiation cannot broadcast over a batch, so it runs one
circuit per sample, and it must decompose the amplitude embedding (a state preparation) into
gates to differentiate through it. default.qubit with backprop runs the whole batch as one
broadcast torch computation, one gate at a time; ``qkd.fused`` (this project's device, see
``fused.py``) runs the same tapes as a few fused torch operations, and was the fastest of the
three in every measurement of a training step up to 16 qubits (docs/explanation/performance.md
section gives the numbers and the ``qkd bench`` command). Above 16 qubits backprop's memory
(batch x 2^Q amplitudes kept per step) becomes the limit, so ``auto`` hands larger circuits
to lightning.qubit.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass, field

from ..errors import QkdError
from .ibm import is_fake
from .mitigation import EXTRAPOLATORS, MITIGATIONS
from .parametric import OPTIMIZATION_LEVEL
from .registry import DEVICES

# Exact simulators: name -> differentiation method used for training.
EXACT = {d.name: d.diff_method for d in DEVICES.values() if d.diff_method and not d.examples}
AUTO_BACKPROP_MAX_QUBITS = 16
DEFAULT_SHOTS = 1024
MODES = ("batch", "session", "job")
NAMES = ("auto", *EXACT, "noisy:<fake backend>", "qiskit.aer", "ibm:<fake backend>", "ibm:<backend>", "ibm:least_busy")


@dataclass(frozen=True)
class Backend:
    """A resolved device: what to build, how to differentiate, and why it was chosen."""

    device: str  # the name the user gave (or auto's pick): recorded in run folders
    diff_method: str
    reason: str
    shots: int | None = None
    noise: str | None = None
    trainable: bool = True  # False: evaluation only (shot-based)
    options: dict = field(default_factory=dict, compare=False)
    per_circuit: bool = False  # shot-based: pennylane-qiskit's own path, one circuit and one job per sample
    mode: str = "batch"  # IBM Quantum: jobs in a Batch, a Session, or each alone ("job")
    mitigation: str = "none"  # noisy:<fake>: "readout" corrects the readouts, "zne" extrapolates too (mitigation.py)
    optimization_level: int = OPTIMIZATION_LEVEL  # the transpiler's, for noisy:, qiskit.aer and ibm: circuits
    extrapolator: str = "exponential"  # zne's fit

    @property
    def remote(self) -> bool:
        """Runs its circuits as Qiskit jobs (Aer, fake or real IBM backends): slow and fallible."""
        return self.device == "qiskit.aer" or self.device.startswith("ibm:")

    @property
    def paid(self) -> bool:
        """IBM Quantum hardware: every job costs QPU time."""
        return self.device.startswith("ibm:") and not is_fake(self.device.split(":", 1)[1])

    def describe(self) -> str:
        shots = f", {self.shots} shots" if self.shots else ""
        noise = f", noise of {self.noise}" if self.noise else ""
        path = ", per circuit" if self.per_circuit else (", one job per batch" if self.remote else "")
        mitigated = f", {self.mitigation} mitigation" if self.mitigation != "none" else ""
        mitigated += f" ({self.extrapolator} extrapolation)" if self.mitigation == "zne" else ""
        level = f", optimization level {self.optimization_level}" \
            if self.optimization_level != OPTIMIZATION_LEVEL else ""
        return f"{self.device} ({self.diff_method}{shots}{noise}{path}{mitigated}{level}): {self.reason}"


def installed(device: str) -> bool:
    """Whether a PennyLane device plugin can be built here (lightning.kokkos/gpu are optional)."""
    if device in EXACT and not DEVICES[device].optional:
        return True
    if device in EXACT:
        import pennylane as qml

        try:
            qml.device(device, wires=1)
            return True
        except Exception:  # noqa: BLE001 - not installed, or no GPU: either way, not usable
            return False
    return importlib.util.find_spec("pennylane_qiskit") is not None


def resolve_backend(device: str, n_qubits: int, shots: int | None = None, noise: str | None = None,
                    training: bool = False, per_circuit: bool = False, mode: str = "batch",
                    mitigation: str = "none", optimization_level: int | None = None,
                    extrapolator: str | None = None) -> Backend:
    """Turn ``--device`` (+ ``--shots``, ``--noise``) into a Backend, or refuse up front with the reason.

    Args:
        device: ``auto``, an exact simulator, ``qiskit.aer`` or ``ibm:<backend>`` (``DEVICES``).
        n_qubits: the circuit's width (checked against a fake or real backend's size).
        shots: shots of a shot-based device (default 1024); refused for exact simulators.
        noise: with ``qiskit.aer``, the IBM fake backend whose noise model to apply.
        training: refuse shot-based devices, which evaluate only.
        per_circuit: on a shot-based device, run pennylane-qiskit's path (one circuit, one
            transpilation and one job per sample: the reference) instead of one job per batch.
        mode: on IBM Quantum, ``batch`` (default), ``session`` or ``job``.
        mitigation: ``none``, ``readout`` or ``zne`` for evaluation on ``noisy:<fake backend>``
            (devices/mitigation.py) or ``ibm:<backend>`` (qiskit-ibm-runtime's TREX and ZNE on the
            Estimator; the Sampler's readouts corrected by the backend's reported calibration).
        extrapolator: with ``zne``: ``exponential`` (default), ``linear`` or ``richardson``.
        optimization_level: the transpiler's preset level (0-3) for circuits that are transpiled
            (noisy:, qiskit.aer, ibm:); default 1. From 2 the layout weighs the qubits' calibrated
            errors, where 1 takes the first placement that needs no SWAP.

    Returns:
        The resolved device with its differentiation method and the reason it was chosen.

    Example:
        >>> resolve_backend("auto", 4).device
        'qkd.fused'
    """
    if noise is not None and device != "qiskit.aer":
        raise QkdError("--noise applies to --device qiskit.aer only (ibm:<fake backend> carries its own noise)")
    if mode not in MODES:
        raise QkdError(f"unknown --mode {mode!r}; choose one of: {', '.join(MODES)}")
    if optimization_level is not None and optimization_level not in (0, 1, 2, 3):
        raise QkdError(f"--optimization-level {optimization_level}: the transpiler's levels are 0, 1, 2 and 3")
    if optimization_level is not None and (device == "auto" or device in EXACT or per_circuit):
        raise QkdError(f"--optimization-level applies to circuits qkd-pl transpiles (noisy:, qiskit.aer and ibm: "
                       f"devices, without --per-circuit); {'--per-circuit' if per_circuit else device} takes none")
    level = OPTIMIZATION_LEVEL if optimization_level is None else optimization_level
    if mitigation not in MITIGATIONS:
        raise QkdError(f"unknown --mitigation {mitigation!r}; choose one of: {', '.join(MITIGATIONS)}")
    if mitigation != "none" and (training or not (device.startswith("noisy:") or device.startswith("ibm:"))
                                 or per_circuit):
        raise QkdError(f"--mitigation {mitigation} corrects evaluations in the noisy:<fake backend> emulation "
                       f"(e.g. qkd evaluate RUN --device noisy:fake_brisbane --mitigation {mitigation}) and on IBM "
                       f"Quantum (ibm:<backend>, one job per batch); "
                       f"{'training' if training else '--per-circuit' if per_circuit else device} does not take it")
    if extrapolator is not None and mitigation != "zne":
        raise QkdError("--extrapolator is zero-noise extrapolation's fit: add --mitigation zne, or leave it out")
    if extrapolator is not None and extrapolator not in EXTRAPOLATORS:
        raise QkdError(f"unknown --extrapolator {extrapolator!r}; choose one of: {', '.join(EXTRAPOLATORS)}")
    if device == "auto" or device in EXACT:
        if per_circuit:
            raise QkdError(f"--per-circuit applies to shot-based devices (qiskit.aer, ibm:...); {device} "
                           f"already runs a whole batch at once")
        if shots is not None:
            raise QkdError(f"--shots applies to shot-based devices (qiskit.aer, ibm:...); {device} simulates "
                           f"exactly: leave --shots out")
        return _exact(device, n_qubits)
    if device.startswith("noisy:"):
        if per_circuit:
            raise QkdError("--per-circuit applies to qiskit.aer and ibm:... devices; noisy:... runs a whole batch at once")
        return dataclasses.replace(_noisy(device, n_qubits, shots, training), mitigation=mitigation,
                                   optimization_level=level, extrapolator=extrapolator or "exponential")
    if device == "qiskit.aer" or device.startswith("ibm:"):
        backend = dataclasses.replace(_shot_based(device, n_qubits, shots or DEFAULT_SHOTS, noise),
                                      per_circuit=per_circuit, mode=mode, optimization_level=level,
                                      mitigation=mitigation, extrapolator=extrapolator or "exponential")
        if training:
            raise QkdError(f"{device} is for evaluation: its shot-based parameter-shift gradients cannot "
                           f"differentiate a batch of trainable inputs; train on default.qubit or "
                           f"lightning.qubit, then run qkd evaluate RUN --device {device}")
        return backend
    raise QkdError(f"unknown --device {device!r}; choose one of: {', '.join(NAMES)}")


def _exact(device: str, n_qubits: int) -> Backend:
    if device == "auto":
        if n_qubits <= AUTO_BACKPROP_MAX_QUBITS:
            return Backend("qkd.fused", "backprop",
                           f"auto: up to {AUTO_BACKPROP_MAX_QUBITS} qubits, fused batched backprop (qkd.fused); "
                           f"qkd bench measures it against the other devices on this machine")
        return Backend("lightning.qubit", "adjoint",
                       f"auto: above {AUTO_BACKPROP_MAX_QUBITS} qubits backprop's memory grows past what "
                       f"broadcasting saves; lightning.qubit's adjoint method keeps one state per sample")
    if not installed(device):
        raise QkdError(f"{device} is not usable here (plugin not installed or no matching hardware); "
                       f"use default.qubit or lightning.qubit")
    return Backend(device, EXACT[device], "chosen with --device")


def _noisy(device: str, n_qubits: int, shots: int | None, training: bool) -> Backend:
    from . import ibm

    target = device.split(":", 1)[1]
    if not ibm.is_fake(target):
        raise QkdError(f"noisy:<backend> emulates an IBM fake backend (e.g. noisy:fake_brisbane), not {target!r}")
    ibm.check_fits(ibm.fake_backend(target), n_qubits)
    if shots is not None and training:
        raise QkdError(f"{device} trains on exact noisy expectation values: leave --shots out (shots are for "
                       f"evaluation)")
    return Backend(device, "backprop", f"IBM fake backend {target}'s transpiled circuit and noise model, exact "
                                       f"density matrices in torch" + (f", {shots} shots sampled" if shots else ""),
                   shots=shots, trainable=shots is None)


def _shot_based(device: str, n_qubits: int, shots: int, noise: str | None) -> Backend:
    from . import ibm

    if device == "qiskit.aer":
        if noise is not None:
            ibm.check_fits(ibm.fake_backend(noise), n_qubits)
        why = f"Aer simulator with the noise model of {noise}" if noise else "noiseless Aer simulator"
        return Backend(device, "parameter-shift", why, shots=shots, noise=noise, trainable=False)
    target = device.split(":", 1)[1]
    if ibm.is_fake(target):
        ibm.check_fits(ibm.fake_backend(target), n_qubits)
        return Backend(device, "parameter-shift", f"IBM fake backend {target}: real calibrations, run locally on Aer",
                       shots=shots, trainable=False)
    ibm.credentials()  # refuse now, not after loading data, when none are set
    return Backend(device, "parameter-shift", "IBM Quantum hardware through qiskit-ibm-runtime", shots=shots,
                   trainable=False)


def make_device(backend: Backend, n_qubits: int):
    """The PennyLane device of a resolved backend, ``n_qubits`` wires.

    Exact simulators by name; shot-based backends (Aer, with or without a fake backend's noise;
    IBM fake backends; IBM Quantum) as ``BatchedQiskitDevice`` (one transpilation per circuit
    structure, one job per batch), or with ``per_circuit`` as pennylane-qiskit's own devices.
    """
    import pennylane as qml

    if backend.device in ("qkd.fused", "qkd.fused32"):
        from .fused import FusedQubit, FusedQubit32  # the classes qml.device("qkd.fused[32]") builds

        return (FusedQubit32 if backend.device == "qkd.fused32" else FusedQubit)(wires=n_qubits)
    if backend.device in EXACT:
        return qml.device(backend.device, wires=n_qubits)
    from . import ibm

    if backend.device.startswith("noisy:"):
        from .noisy import NoisyEmulator

        return NoisyEmulator(n_qubits, ibm.fake_backend(backend.device.split(":", 1)[1]), shots=backend.shots,
                             mitigation=backend.mitigation, optimization_level=backend.optimization_level,
                             extrapolator=backend.extrapolator)
    if backend.device == "qiskit.aer":
        if backend.per_circuit and backend.noise is None:
            return qml.device("qiskit.aer", wires=n_qubits)
        hw = ibm.aer(backend.noise)
        runner = None
    else:
        target = backend.device.split(":", 1)[1]
        if ibm.is_fake(target):
            hw, runner = ibm.fake_backend(target), None
        else:
            service, hw = ibm.real_backend(target, n_qubits)
            from .jobs import RuntimeRunner

            runner = RuntimeRunner(service, hw, backend.mode)
    if backend.per_circuit:
        return qml.device("qiskit.remote", wires=n_qubits, backend=hw)
    from .qiskit_batched import BatchedQiskitDevice

    return BatchedQiskitDevice(wires=n_qubits, backend=hw, shots=backend.shots, runner=runner,
                               optimization_level=backend.optimization_level, mitigation=backend.mitigation,
                               extrapolator=backend.extrapolator)
