"""What a student's circuit costs on an IBM device, known before any training or submission.

Why: a circuit's noise grows with what the transpiler makes of it, not with what the student's
drawing shows. Amplitude encoding of 2^Q features becomes a tree of 2^Q - 1 rotations and about
as many CNOTs, routed onto the device's coupling map with SWAPs: at 8 qubits 714-774 two-qubit
gates (docs/noise/report.md), after which the outputs are noise. So a user choosing a student
for hardware needs the transpiled depth and two-qubit gate count, and an estimate of how much
signal survives, from the backend's own calibration data.

The estimate: the probability that no reported error happens, the product over the transpiled
circuit's gates of (1 - the gate's error on its qubits) times the product over the measured
qubits of (1 - their readout error), from the backend's ``Target``, with the readouts' share
given apart (readout mitigation, devices/mitigation.py, takes that share out). It counts only
the errors the calibration reports per gate and readout: idle decoherence during other qubits'
gates and crosstalk are not in it. Below ``MOSTLY_NOISE`` (0.5) less than half of the runs are
free of a reported error, and qkd-pl warns in one line. It is a measure of the circuit, not an
accuracy: an argmax over outputs can survive a low estimate (docs/noise).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from .parametric import OPTIMIZATION_LEVEL, Structure, size, transpile

MOSTLY_NOISE = 0.5  # estimated fidelity below which the outputs are more noise than signal


@dataclass(frozen=True)
class HardwareCost:
    """A circuit transpiled for one backend: its size and the estimated fidelity of one run."""

    backend: str
    depth: int
    two_qubit_gates: int
    gates: int
    fidelity: float  # estimated probability that no reported gate or readout error happens
    readout: float = 1.0  # the readouts' factor of it
    seconds_per_shot: float = 0.0  # one shot on the QPU: the circuit's duration and the repetition delay
    folded_seconds_per_shot: tuple[float, ...] = ()  # zne: the same at each noise factor (mitigation.ZNE_FACTORS)
    readout_seconds_per_shot: float = 0.0  # the measurements alone: one shot of TREX's calibration
    level: int = OPTIMIZATION_LEVEL  # the transpiler's level it was placed at (2 and 3 choose qubits by calibration)

    def qpu_seconds(self, images: int, shots: int, mitigation: str = "none", images_per_job: int = 1000) -> float:
        """Estimated QPU seconds of ``images`` images on the Estimator, ``mitigation`` as qiskit-ibm-runtime
        runs it (jobs.qpu_cost), from the backend's reported gate durations (0 where it reports none)."""
        from .jobs import qpu_cost

        return qpu_cost(images, shots, math.ceil(images / images_per_job), self.seconds_per_shot,
                        self.folded_seconds_per_shot, self.readout_seconds_per_shot, mitigation)[1]

    @property
    def mostly_noise(self) -> bool:
        return self.fidelity < MOSTLY_NOISE

    def describe(self) -> str:
        return (f"on {self.backend}: depth {self.depth}, {self.two_qubit_gates} two-qubit gates, {self.gates} gates "
                f"in all; estimated fidelity {_percent(self.fidelity)} from its calibration's gate and readout errors "
                f"(readouts {_percent(self.readout)}, gates {_percent(self.fidelity / max(self.readout, 1e-300))})")

    def warning(self, hint: str = "fewer two-qubit gates or measured qubits cost less") -> str | None:
        """One line when the outputs would be mostly noise (with ``hint``: what to change), else None."""
        if not self.mostly_noise:
            return None
        return (f"on {self.backend} this circuit's estimated fidelity is {_percent(self.fidelity)} "
                f"({self.two_qubit_gates} two-qubit gates, depth {self.depth}): less than half of its outputs' "
                f"signal would survive the device's noise; {hint}")


def _percent(p: float) -> str:
    return f"{100 * p:.3g} %" if p >= 1e-3 else f"{p:.1e}"


def hardware_cost(structure: Structure, backend, name: str | None = None,
                  optimization_level: int = OPTIMIZATION_LEVEL) -> HardwareCost:
    """Transpile ``structure`` (every wire measured, as the devices run it) for ``backend`` and estimate its fidelity.

    Args:
        structure: a circuit's structure (``parametric.to_parametric(tape, wires).structure``).
        backend: a Qiskit backend with a ``target`` (an IBM fake backend, or a real one: nothing is submitted).
        name: how to name the backend in messages (default its own name).
        optimization_level: the transpiler's level, as the device that will run it uses.

    Returns:
        The transpiled circuit's depth, two-qubit gates, all gates and estimated fidelity.

    Example:
        >>> cost = hardware_cost(to_parametric(tape, range(4)).structure, fake_backend("fake_brisbane"))
        >>> cost.two_qubit_gates, cost.mostly_noise
    """
    from .jobs import REP_DELAY_S
    from .mitigation import ZNE_FACTORS, fold_two_qubit_gates

    measured = dataclasses.replace(structure, measurement=("probs", tuple(range(structure.n_qubits))))
    isa, _ = transpile(measured, backend, optimization_level)
    depth, two = size(isa)
    target = backend.target
    return HardwareCost(name or backend.name, depth, two, sum(1 for i in isa.data if i.operation.name != "barrier"),
                        estimated_fidelity(isa, target), estimated_fidelity(isa, target, ("measure",)),
                        REP_DELAY_S + circuit_seconds(isa, target),
                        tuple(REP_DELAY_S + circuit_seconds(fold_two_qubit_gates(isa, f), target) for f in ZNE_FACTORS),
                        REP_DELAY_S + circuit_seconds(measurements_only(isa), target), optimization_level)


def circuit_seconds(circuit, target) -> float:
    """A transpiled circuit's duration on ``target`` (0 where its target reports no gate durations)."""
    try:
        return float(circuit.estimate_duration(target, unit="s"))
    except Exception:  # noqa: BLE001 - simulators' targets carry no gate durations
        return 0.0


def with_measurements(isa):
    """The circuit as the device runs it: an Estimator's circuit carries no measurements, yet every
    shot measures its qubits (those its layout maps the circuit's qubits to); a Sampler's has them."""
    if any(inst.operation.name == "measure" for inst in isa.data) or isa.layout is None:
        return isa
    from qiskit.circuit import ClassicalRegister

    physical = isa.layout.final_index_layout()
    out = isa.copy()
    out.add_register(ClassicalRegister(len(physical), "meas"))
    for clbit, qubit in enumerate(physical):
        out.measure(qubit, clbit)
    return out


def measurements_only(isa):
    """The circuit's measurements alone (what a readout calibration runs)."""
    out = isa.copy_empty_like()
    for inst in isa.data:
        if inst.operation.name == "measure":
            out.append(inst)
    return out


def estimated_fidelity(isa, target, only: tuple[str, ...] | None = None) -> float:
    """Product of (1 - error) over a transpiled circuit's gates and measurements (or only the operations
    named in ``only``), from ``target``'s calibration (an operation or qubit without a reported error
    counts as perfect)."""
    log = 0.0
    for inst in isa.data:
        op = inst.operation.name
        if op in ("barrier", "delay") or op not in target.operation_names or (only and op not in only):
            continue
        qargs = tuple(isa.find_bit(q).index for q in inst.qubits)
        props = target[op].get(qargs)
        error = getattr(props, "error", None)
        if error:
            log += math.log1p(-min(error, 1.0 - 1e-15))
    return math.exp(log)
