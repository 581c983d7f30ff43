"""``qkd.fused``: default.qubit with a fast path for the batched small circuits students run.

Why a device and not a hand-written torch model: the student stays a PennyLane QNode in a
TorchLayer, built, decomposed and validated by PennyLane exactly as on default.qubit (this
class inherits its preprocessing), so the same circuit function runs here, on
lightning.qubit and on IBM hardware. Only the execution of the resulting tapes changes:
``fused_sim`` compiles each tape structure once into a few fused torch steps. A tape it does
not understand (shots, mid-circuit measurements, observables other than products of Z,
adjoint or parameter-shift differentiation, numpy or JAX parameters) is executed by
default.qubit itself, so an unsupported feature costs speed, never correctness.
"""

from __future__ import annotations

from collections import OrderedDict

import pennylane as qml
import torch
from pennylane.devices import DefaultQubit, ExecutionConfig
from pennylane.math import Interface
from pennylane.transforms.core import CompilePipeline

from .fused_sim import Plan, plan_for, plan_key, run_plan

PLAN_CACHE_SIZE = 64


class FusedQubit(DefaultQubit):
    """A state-vector simulator for torch backprop that fuses gates; falls back to default.qubit."""

    def __init__(self, wires=None, shots=None, seed="global", max_workers=None,
                 c_dtype: torch.dtype = torch.complex128) -> None:
        """Args beyond default.qubit's: ``c_dtype``, the fast path's state dtype: complex128 (the
        default: agrees with default.qubit to 1e-9) or complex64 (``qkd.fused32``: half the
        arithmetic and memory traffic, about 1e-7 relative error, float32 results)."""
        super().__init__(wires=wires, shots=shots, seed=seed, max_workers=max_workers)
        if c_dtype not in (torch.complex128, torch.complex64):
            raise ValueError(f"c_dtype must be torch.complex128 or torch.complex64, not {c_dtype}")
        self.c_dtype = c_dtype
        self._plans: OrderedDict[tuple, Plan | None] = OrderedDict()
        self.fast_executions = 0  # tapes run by the fused path: lets tests see which path ran
        self.fallback_executions = 0

    @property
    def name(self) -> str:
        return "qkd.fused" if self.c_dtype == torch.complex128 else "qkd.fused32"

    def preprocess_transforms(self, execution_config: ExecutionConfig | None = None) -> CompilePipeline:
        """default.qubit's pipeline for tapes the fused path cannot run; nothing for those it can.

        The fused path reads the templates it knows (AngleEmbedding, StronglyEntanglingLayers,
        BasicEntanglerLayers) whole, so decomposing them into gates first would only cost time.
        """
        config = execution_config or ExecutionConfig()
        default = super().preprocess_transforms(config)
        device = self

        @qml.transform
        def fused_or_default(tape):
            if device._plan(tape, config) is not None:
                return (tape,), lambda results: results[0]
            tapes, postprocess = default((tape,))
            return tapes, lambda results: postprocess(results)[0]

        pipeline = CompilePipeline()
        pipeline.add_transform(fused_or_default)
        return pipeline

    def execute(self, circuits, execution_config: ExecutionConfig | None = None):
        single = isinstance(circuits, qml.tape.QuantumScript)
        tapes = (circuits,) if single else tuple(circuits)
        config = execution_config or ExecutionConfig()
        plans = [self._plan(t, config) for t in tapes]
        if any(p is None for p in plans):
            self.fallback_executions += len(tapes)
            return super().execute(circuits, execution_config)
        self.fast_executions += len(tapes)
        results = tuple(run_plan(p, t, self.c_dtype) for p, t in zip(plans, tapes))
        return results[0] if single else results

    def _plan(self, tape, config: ExecutionConfig) -> Plan | None:
        if tape.shots or config.gradient_method not in ("backprop", None) or config.interface != Interface.TORCH:
            return None
        wire_order = list(self.wires) if self.wires is not None else list(tape.wires)
        key = plan_key(tape, wire_order)
        if key in self._plans:
            self._plans.move_to_end(key)
            return self._plans[key]
        plan = plan_for(tape, wire_order)
        self._plans[key] = plan
        if len(self._plans) > PLAN_CACHE_SIZE:
            self._plans.popitem(last=False)
        return plan


class FusedQubit32(FusedQubit):
    """``qkd.fused32``: qkd.fused whose fast path runs in complex64 (float32 results, about 1e-7
    relative error). Its own class so that ``qml.device("qkd.fused32", wires=n, shots=...)`` can
    build it by name from the ``pennylane.plugins`` entry point; tapes the fast path does not run
    still go to default.qubit, in float64."""

    def __init__(self, wires=None, shots=None, seed="global", max_workers=None) -> None:
        super().__init__(wires=wires, shots=shots, seed=seed, max_workers=max_workers, c_dtype=torch.complex64)
