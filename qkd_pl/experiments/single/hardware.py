"""A student's circuit on an IBM device, before any training or submission: what it costs there.

The transpiled depth, two-qubit gates and estimated fidelity (devices/hardware_cost.py) of a
student configuration on ``ibm:<backend>`` or ``noisy:<fake backend>``: ``qkd draw --device``
prints them, and a run on such a device says them (and warns in one line when its outputs would
be mostly noise) before its first batch.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import pennylane as qml
import torch

from ...config import StudentConfig
from ...devices import Backend
from ...errors import QkdError, QkdWarning

if TYPE_CHECKING:  # its module imports Qiskit, which a run on qkd.fused never needs
    from ...devices.hardware_cost import HardwareCost


def student_circuit(cfg: StudentConfig, seed: int = 0):
    """(qnode, example inputs, weights) for drawing: inputs are ones, weights as initialized from
    ``seed``, so a drawing's text and its PNG (and two runs of qkd draw) show the same angles."""
    from ...circuits import QuantumLayer, n_features
    from ...students.hybrid_cnn import v1_circuit
    from ...circuits.qlayer import qnode_for

    from ...registry import is_import_path

    if is_import_path(cfg.arch):
        raise QkdError(f"--student {cfg.arch} is your own module, whose circuit qkd-pl does not know: draw it "
                       f"with qml.draw on its QNode")
    backend = Backend("default.qubit", "backprop", "drawing")
    if cfg.arch == "hybrid-cnn":
        return qnode_for(v1_circuit(cfg.qubits), cfg.qubits, backend), (torch.ones(cfg.qubits),)
    with torch.random.fork_rng(devices=[]):  # the caller's random stream is left as it was
        torch.manual_seed(seed)
        layer = QuantumLayer.v2(cfg, backend)
    inputs = torch.ones(n_features(cfg.encoding, cfg.qubits), dtype=torch.float64)
    return layer.qnode, (inputs, layer.layer.weights.detach())


def hardware_target(device: str, n_qubits: int):
    """(backend, its name) for ``ibm:<fake or real backend>`` or ``noisy:<fake backend>``; nothing is submitted."""
    from ...devices.ibm import check_fits, fake_backend, is_fake, real_backend

    kind, _, name = device.partition(":")
    if kind not in ("ibm", "noisy") or not name:
        raise QkdError(f"--device {device!r}: qkd draw reports the cost on an IBM device, ibm:<backend> or "
                       f"noisy:<fake backend> (e.g. ibm:fake_brisbane)")
    if is_fake(name):
        backend = fake_backend(name)
        check_fits(backend, n_qubits)
        return backend, name
    if kind == "noisy":
        raise QkdError(f"noisy:<backend> emulates an IBM fake backend (e.g. noisy:fake_brisbane), not {name!r}")
    backend = real_backend(name, n_qubits)[1]
    return backend, backend.name  # ibm:least_busy: the backend it picked


def student_cost(cfg: StudentConfig, backend, name: str, optimization_level: int = 1):
    """The student's circuit transpiled for ``backend``: depth, two-qubit gates, estimated fidelity."""
    from ...devices.hardware_cost import hardware_cost
    from ...devices.parametric import to_parametric

    with torch.random.fork_rng(devices=[]):  # its example weights must not move the run's random state
        qnode, args = student_circuit(cfg)
    tape = qml.workflow.construct_tape(qnode)(*args)
    return hardware_cost(to_parametric(tape, list(range(cfg.qubits))).structure, backend, name, optimization_level)


def say_hardware_cost(cfg: StudentConfig, device: str, progress: bool = True, per_circuit: bool = False,
                      optimization_level: int = 1) -> HardwareCost | None:
    """For a fake IBM backend (``ibm:fake_*``, ``noisy:fake_*``): the student's cost there, printed, and
    one warning when its outputs would be mostly noise; None for any other device (a real backend's cost
    comes with its submission plan, from the transpilation it submits; ``per_circuit``: pennylane-qiskit
    transpiles each circuit its own way, so no estimate is made)."""
    kind, _, name = device.partition(":")
    if kind not in ("ibm", "noisy") or not name.startswith("fake_") or per_circuit:
        return None
    cost = student_cost(cfg, *hardware_target(device, cfg.qubits), optimization_level)
    if progress:
        print(f"circuit {cost.describe()}", flush=True)
    warn_if_noise(cost, cfg)
    return cost


def warn_if_noise(cost: HardwareCost, cfg: StudentConfig) -> None:
    """One QkdWarning when the outputs would be mostly noise, saying what of this student to change."""
    if cfg.encoding == "amplitude":
        hint = "angle or qubit encoding with --ansatz line transpiles to far fewer two-qubit gates"
    elif cfg.ansatz != "line":
        hint = "--ansatz line places its two-qubit gates on the coupling map without a SWAP"
    else:
        hint = ("fewer --layers or --qubits cost less; qkd evaluate --mitigation readout takes the readout errors "
                "out, and --mitigation zne extrapolates the gates' to zero")
    if cost.level < 2:  # level 1 keeps a SWAP-free placement however badly its qubits read (docs/noise/study-27)
        hint += ("; qkd evaluate and qkd draw take --optimization-level 2, which places it on qubits chosen by their "
                 "calibrated errors")
    if cost.warning(hint):
        warnings.warn(cost.warning(hint), QkdWarning, stacklevel=3)
