"""A model with TorchLayers as a pure function of its parameters, so many copies run as one (vmap).

Why this is not plain ``torch.func.functional_call``: a ``qml.qnn.TorchLayer`` hands its QNode the
tensors of its ``qnode_weights`` dict, which ``functional_call`` does not see (it swaps the
module's attributes), so the circuit would keep the module's own weights. Here each TorchLayer's
dict is pointed at the swapped tensors for the call. Under ``vmap`` a layer must already have a
traced graph for the call's shape (compiled.py): its QNode cannot take a batched tensor, and
``CompiledLayer`` refuses rather than guess (``NotBatchable``).
"""

from __future__ import annotations

from typing import Callable

import pennylane as qml
import torch
from torch import nn
from torch.func import functional_call

from .compiled import circuit_signature


def functional_forward(model: nn.Module) -> Callable[[dict, dict, torch.Tensor], torch.Tensor]:
    """``f(params, buffers, x)``: ``model(x)`` with those parameters and buffers (named as in the model).

    Args:
        model: any module; its TorchLayers read the given tensors too.

    Returns:
        A function of (parameters, buffers, inputs), for ``torch.func.vmap`` over stacked copies.

    Example:
        >>> params, buffers = torch.func.stack_module_state(students)
        >>> logits = torch.func.vmap(functional_forward(students[0]))(params, buffers, x_per_student)
    """
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, qml.qnn.TorchLayer)]

    def forward(params: dict, buffers: dict, x: torch.Tensor) -> torch.Tensor:
        saved = [m.qnode_weights for _, m in layers]
        try:
            for name, m in layers:
                m.qnode_weights = {k: params[f"{name}.{k}" if name else k] for k in m.qnode_weights}
            return functional_call(model, (params, buffers), (x,))
        finally:
            for (_, m), weights in zip(layers, saved):
                m.qnode_weights = weights

    return forward


SIMPLE = (int, float, str, bool, type(None), torch.dtype, torch.device)


def structure(model: nn.Module) -> list[tuple]:
    """What a forward's function is, beyond its parameters: every submodule's class and plain
    settings (numbers, strings, flags, tuples of them), and the circuit of a layer that holds a
    QNode. Students stepped as one run through the first one's forward, so these must agree."""
    out = []
    for name, module in model.named_modules():
        settings = []
        for key, value in sorted(vars(module).items()):
            if key.startswith("_") or key == "training":
                continue
            if isinstance(value, SIMPLE) or (isinstance(value, tuple) and all(isinstance(v, SIMPLE) for v in value)):
                settings.append((key, value))
            elif hasattr(value, "func") and hasattr(value, "device") and key == "qnode":
                settings.append((key, circuit_signature(value) or id(value)))
        out.append((name, type(module), tuple(settings)))
    return out
