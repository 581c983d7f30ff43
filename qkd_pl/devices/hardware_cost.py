"""What a student's circuit costs on an IBM device, known before any training or submission.

Why: a circuit's noise grows with what the transpiler makes of it, not with what the student's
drawing shows. Amplitude encoding of 2^Q features becomes a tree of 2^Q - 1 rotations and about
as many CNOTs, routed onto the device's coupling map with SWAPs: at 8 qubits 714-774 two-qubit
gates (docs/noise/report.md), after which the outputs are noise. So a user choosing a student
for hardware needs the transpiled depth and two-qubit gate count, and an estimate of how much
signal survives, from the backend's own calibration data.

The estimate: the probability that no reported error happens, the product over the transpiled
circuit's gates of (1 - the gate's error on its qubits) times the product over the measured
qubits of (1 - their readout error), from the backend's ``Target``. It leaves out idle
decoherence (T1/T2 during other qubits' gates) and crosstalk, so it is an upper bound; under a
depolarizing picture an expectation value shrinks towards 0 by about this factor. Below
``MOSTLY_NOISE`` (0.5) the outputs are mostly noise, and qkd-pl says so in one line.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from .parametric import Structure, size, transpile
from .qiskit_batched import OPTIMIZATION_LEVEL

MOSTLY_NOISE = 0.5  # estimated fidelity below which the outputs are more noise than signal


@dataclass(frozen=True)
class HardwareCost:
    """A circuit transpiled for one backend: its size and the estimated fidelity of one run."""

    backend: str
    depth: int
    two_qubit_gates: int
    gates: int
    fidelity: float  # estimated probability that no reported gate or readout error happens

    @property
    def mostly_noise(self) -> bool:
        return self.fidelity < MOSTLY_NOISE

    def describe(self) -> str:
        return (f"on {self.backend}: depth {self.depth}, {self.two_qubit_gates} two-qubit gates, {self.gates} gates "
                f"in all; estimated fidelity {_percent(self.fidelity)} (gate and readout errors of its calibration)")

    def warning(self) -> str | None:
        """One line when the outputs would be mostly noise, else None."""
        if not self.mostly_noise:
            return None
        return (f"on {self.backend} this circuit's estimated fidelity is {_percent(self.fidelity)} "
                f"({self.two_qubit_gates} two-qubit gates, depth {self.depth}): its outputs would be mostly noise; "
                f"a student with angle or qubit encoding and --ansatz line transpiles to far fewer gates")


def _percent(p: float) -> str:
    return f"{100 * p:.2g} %" if p >= 1e-3 else f"{p:.1e}"


def hardware_cost(structure: Structure, backend, name: str | None = None) -> HardwareCost:
    """Transpile ``structure`` (every wire measured, as the devices run it) for ``backend`` and estimate its fidelity.

    Args:
        structure: a circuit's structure (``parametric.to_parametric(tape, wires).structure``).
        backend: a Qiskit backend with a ``target`` (an IBM fake backend, or a real one: nothing is submitted).
        name: how to name the backend in messages (default its own name).

    Returns:
        The transpiled circuit's depth, two-qubit gates, all gates and estimated fidelity.

    Example:
        >>> cost = hardware_cost(to_parametric(tape, range(4)).structure, fake_backend("fake_brisbane"))
        >>> cost.two_qubit_gates, cost.mostly_noise
    """
    measured = dataclasses.replace(structure, measurement=("probs", tuple(range(structure.n_qubits))))
    isa, _ = transpile(measured, backend, OPTIMIZATION_LEVEL)
    depth, two = size(isa)
    return HardwareCost(name or backend.name, depth, two, sum(1 for i in isa.data if i.operation.name != "barrier"),
                        estimated_fidelity(isa, backend.target))


def estimated_fidelity(isa, target) -> float:
    """Product of (1 - error) over a transpiled circuit's gates and measurements, from ``target``'s calibration
    (an operation or qubit without a reported error counts as perfect)."""
    log = 0.0
    for inst in isa.data:
        op = inst.operation.name
        if op in ("barrier", "delay") or op not in target.operation_names:
            continue
        qargs = tuple(isa.find_bit(q).index for q in inst.qubits)
        props = target[op].get(qargs)
        error = getattr(props, "error", None)
        if error:
            log += math.log1p(-min(error, 1.0 - 1e-15))
    return math.exp(log)
