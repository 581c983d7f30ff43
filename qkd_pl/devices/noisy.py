"""``noisy:<fake backend>``: a student's circuit as that IBM device would run it, simulated exactly.

The tape is lowered to one fixed-structure circuit (``parametric``), transpiled for the fake
backend once per structure, and run under the backend's noise model as batched torch density
matrices (``noisy_dm``): gate errors after every gate, readout errors on every measured qubit,
every wire measured (``<Z>`` words are computed from the read-out bits, as a device without
error mitigation reports them). Without shots the outputs are the exact noisy expectation
values and probabilities, differentiable by backprop, so a student can be trained or
fine-tuned under the device's noise; with shots they are sampled from those probabilities.

The reference is Aer on the same transpiled circuit and noise model (``ibm:<fake backend>``,
``--device qiskit.aer --noise``): tests/devices/test_noisy_dm.py checks the density matrices
against Aer's to 1e-8 and the outputs against ibm:<fake> within shot noise.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace

import torch
from pennylane import CompilePipeline
from pennylane.devices import Device, ExecutionConfig
from pennylane.devices.preprocess import validate_device_wires, validate_measurements
from pennylane.tape import QuantumScript

from ..errors import QkdError
from .mitigation import (EXTRAPOLATORS, MITIGATIONS, ZNE_FACTORS, extrapolate_readouts, nearest_distribution,
                         unconfuse)
from .noisy_dm import NoisyCircuit, sample, z_signs
from .parametric import OPTIMIZATION_LEVEL, Structure, size, to_parametric, transpile


@dataclass(frozen=True)
class Emulation:
    """A structure transpiled for the backend, as density-matrix steps."""

    circuit: NoisyCircuit
    columns: torch.Tensor
    depth: int
    two_qubit_gates: int


class NoisyEmulator(Device):
    """A fake IBM backend's transpiled circuit and noise model as a differentiable PennyLane device.

    Args:
        wires: number of wires.
        backend: an IBM fake backend (``ibm.fake_backend(name)``).
        shots: None for exact noisy outputs (trainable); an integer to sample them.
        seed: seeds the shot sampling (so an evaluation with shots is repeatable).
        noiseless: the same transpiled circuit without its noise (to separate the noise from
            the transpilation, which changes nothing exactly).
        mitigation: ``none``; ``readout``: the read probabilities corrected by the inverse of
            each qubit's readout matrix; ``zne``: that, at noise factors 1, 3 and 5 (two-qubit
            gates folded), extrapolated to zero noise (devices/mitigation.py).
        extrapolator: ``zne``'s fit (``mitigation.EXTRAPOLATORS``); the raw per-factor outputs of
            every execution are kept in ``zne_values`` to fit another one later.
        optimization_level: the transpiler's preset level (1, as pennylane-qiskit; from 2 the
            layout weighs the qubits' calibrated errors).
        compute: the torch device of the density matrices; default a GPU where torch sees one
            (an 8-qubit circuit routed on a 127-qubit backend is ~770 noisy two-qubit steps on
            a 256 x 256 matrix per image), else the CPU. Outputs come back to the inputs' device.
    """

    def __init__(self, wires, backend, shots: int | None = None, seed: int = 0, noiseless: bool = False,
                 compute: str | None = None, mitigation: str = "none", optimization_level: int = OPTIMIZATION_LEVEL,
                 extrapolator: str = "exponential"):
        super().__init__(wires=wires)
        if mitigation not in MITIGATIONS:
            raise QkdError(f"unknown --mitigation {mitigation!r}; choose one of: {', '.join(MITIGATIONS)}")
        if extrapolator not in EXTRAPOLATORS:
            raise QkdError(f"unknown --extrapolator {extrapolator!r}; choose one of: {', '.join(EXTRAPOLATORS)}")
        self.mitigation, self.optimization_level, self.extrapolator = mitigation, optimization_level, extrapolator
        self.factors = ZNE_FACTORS if mitigation == "zne" else (1,)
        self.zne_values: list[torch.Tensor] = []  # (batch, factors, outputs) per execution, with zne
        self.compute = torch.device(compute or ("cuda" if torch.cuda.is_available() else "cpu"))
        from .ibm import noise_model

        self.backend = backend
        self.noise_model = None if noiseless else noise_model(backend)
        self.default_shots = shots
        self.generator = torch.Generator().manual_seed(seed)
        self._emulations: dict[str, Emulation] = {}

    @property
    def name(self) -> str:
        return "qkd.noisy"

    def setup_execution_config(self, config: ExecutionConfig | None = None, circuit=None) -> ExecutionConfig:
        config = config or ExecutionConfig()
        if config.gradient_method in ("best", None):
            config = replace(config, gradient_method="backprop")
        return replace(config, use_device_gradient=False)

    def supports_derivatives(self, execution_config: ExecutionConfig | None = None, circuit=None) -> bool:
        return execution_config is None or execution_config.gradient_method in ("backprop", "best", None)

    def preprocess_transforms(self, execution_config: ExecutionConfig | None = None) -> CompilePipeline:
        pipeline = CompilePipeline()
        pipeline.add_transform(validate_device_wires, self.wires, name=self.name)
        pipeline.add_transform(validate_measurements, name=self.name)
        return pipeline

    def emulation(self, structure: Structure, fold: int = 1) -> Emulation:
        """The structure transpiled (every wire measured) and compiled to density-matrix steps, once
        per noise factor ``fold`` (its two-qubit gates folded)."""
        key = f"{structure.digest}/{fold}"
        if key not in self._emulations:
            measured = dataclasses.replace(structure, measurement=("probs", tuple(range(structure.n_qubits))))
            isa, columns = transpile(measured, self.backend, self.optimization_level)
            index = {p: i for i, p in enumerate(isa.parameters)}
            circuit = NoisyCircuit(isa, self.noise_model, index, fold=fold).to(self.compute)
            self._emulations[key] = Emulation(circuit, torch.as_tensor(columns), *size(isa))
        return self._emulations[key]

    @property
    def transpiled(self) -> list[Emulation]:
        """The circuits as they run at noise factor 1 (as transpiled), one per structure."""
        return [e for key, e in self._emulations.items() if key.endswith("/1")]

    def execute(self, circuits, execution_config: ExecutionConfig | None = None):
        tapes = [circuits] if isinstance(circuits, QuantumScript) else list(circuits)
        return tuple(self._run(t) for t in tapes)

    def _run(self, tape):
        par = to_parametric(tape, list(self.wires))
        shots = int(tape.shots.total_shots) if tape.shots else self.default_shots
        per_factor = [self._outputs(par, fold, shots) for fold in self.factors]
        if len(per_factor) == 1:
            out = per_factor[0]
        else:  # zne: each output extrapolated to zero noise from its values at the factors
            values = torch.stack(per_factor, dim=1)
            self.zne_values.append(values.detach().cpu())
            out = extrapolate_readouts(values, par.structure.measurement[0], self.factors, self.extrapolator)
        out = out if par.batched else out[0]
        if par.structure.measurement[0] == "probs":
            return out
        return out[..., 0] if out.shape[-1] == 1 else tuple(out[..., i] for i in range(out.shape[-1]))

    def _outputs(self, par, fold: int, shots: int | None) -> torch.Tensor:
        """(batch, outputs): the measured probabilities or <Z> words of the circuit at noise factor ``fold``."""
        emu = self.emulation(par.structure, fold)
        n = par.structure.n_qubits
        probs = emu.circuit.probabilities(par.values[:, emu.columns])  # index bit j: wire n-1-j
        if shots:
            probs = sample(probs, shots, self.generator)
        kind, what = par.structure.measurement
        if self.mitigation != "none":  # the readout errors taken out, as the counts' assignment correction
            probs = unconfuse(probs, [m.to(probs.device) for m in emu.circuit.confusion()])
            if kind == "probs" and shots and self.mitigation == "readout":
                probs = nearest_distribution(probs)  # sampled: a probability read out must stay one (a log of it)
        if kind == "probs":  # PennyLane's index over ``what``: the first wire most significant
            full = probs.reshape((-1,) + (2,) * n)  # axes: wire 0 first (index bit n-1 first)
            rest = [1 + w for w in range(n) if w not in what]
            out = full.sum(dim=rest) if rest else full
            order = sorted(what)
            return out.permute([0, *[1 + order.index(w) for w in what]]).reshape(out.shape[0], -1)
        if any(p != "Z" for word in what for _, p in word):
            raise QkdError("the noisy emulation measures in the Z basis: only <Z> words (readouts z and zz) or "
                           "probabilities")
        words = [tuple(n - 1 - q for q, _ in word) for word in what]  # wire q is index bit n-1-q
        return probs @ z_signs(n, words)  # (batch, observables)
