"""The whole training step (forward, loss, backward, optimizer) as one compiled function.

Why: at the batch sizes studies use (32), a student's step is mostly overhead around small
kernels: the per-operation dispatch of the traced circuit, autograd's bookkeeping, and the
optimizer's loop over its tensors. Compiling the circuit alone (``QKD_COMPILE=inductor``) leaves
all of that. Here one step of one batch shape is traced whole with ``make_fx`` (the circuit in its
real-arithmetic form, real_graph.py, so inductor can fuse it; the loss in its tensor form,
``Objective.terms``; the gradient by ``torch.func.grad_and_value``; Adam or SGD written out as the
arithmetic torch's optimizers do), and that flat graph is compiled by ``torch._inductor.compile``
(no Dynamo: the graph is already flat, and Dynamo's guards would cost every call).

What keeps its numbers honest:
- The optimizer's state stays torch's own (``exp_avg``, ``exp_avg_sq``, ``step``; the momentum
  buffer): the compiled step reads those tensors and the results are written back into them. So
  ``last.pt``, resume, an epoch's last smaller batch (stepped eagerly unless it pays on its own)
  and a fall back to the eager step all see one state.
- A compiled step is trusted only after it agreed with the eager step on a real batch: its first
  call runs beside the eager step; its loss, logits and gradients must equal the eager ones to
  rounding, and its new weights and optimizer state must equal what torch's optimizer makes from
  the same gradients (``check_gradients``, ``check_update``); else the shape stays eager, with
  one warning. A compiled call that fails later, a tensor laid out otherwise, or a loss or
  optimizer setting changed since the trace also sends the shape back to the eager step.
- A trace that read a tensor's value in Python (a branch on a value: make_fx refuses it), drew
  random numbers, or held a complex value (a circuit without a traced graph) is refused: it
  could be wrong on another batch.
- Refused outright (the fit steps eagerly): masked rows (a transfer set: the loss indexes rows
  by mask), mixup, a teacher called on every batch, dropout or batch norm, an optimizer other
  than the ones ``make_optimizer`` builds, a loss without a tensor form (a plain function).

When it runs (``QKD_COMPILE_STEP``, ``qkd --compile-step``): ``auto`` (the default) compiles a
batch shape when the fit plans at least ``break_even_steps`` steps of it: a cold compilation's
cost (``COLD_SECONDS``) over what a compiled step saves (the measured eager step, ``EAGER_B32``,
times the measured fraction saved, ``saved_fraction``). The rule reads the plan and constants
only, never timings or the cache, so the same command trains the same way on every run (a
compiled step agrees with the eager one to rounding, not to the bit). ``on`` compiles every
batch shape on its fourth step (studies of many short fits, whose shape the cache already holds;
tests; benchmarks); ``off`` never. The constants are measured on a CPU, so on a GPU ``auto`` steps
eagerly and ``on`` compiles (for CUDA, through Triton). Inductor's cache is kept in the user cache folder
(``circuits.compiled.cache_folder``), so a shape compiled once on a machine compiles in seconds
afterwards. docs/explanation/performance.md has the measured figures behind the constants.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import fx, nn
from torch.func import grad_and_value

from ..circuits.compiled import INDUCTOR_OPTIONS, CompiledLayer, NotBatchable, cache_folder, real_arithmetic
from ..circuits.functional import functional_forward
from ..errors import QkdError, QkdWarning, first_line
from .optim import Adam

MODES = ("auto", "on", "off")
EAGER_FIRST = 3  # eager steps of a shape before it may be compiled: the circuit is traced on its third call
# auto: the fraction of an eager step a compiled one saves, at least, and the eager step's seconds at
# batch 32 by qubits (the nearest measured count at or above), with the share of it that grows with
# the batch. Measured on a 2-core AMD EPYC, one thread,
# two runs of benchmarks/test_compiled_step.py (docs/explanation/performance.md, "The whole step compiled"): saved 0.73-0.97
# at 4-7 qubits and batch 32, 0.50-0.64 at 8 qubits, 0.24-0.36 at 8 qubits and batch 256,
# 0.12-0.33 at 10 qubits; eager steps 2.6 ms at 4 qubits, 2.7-4.4 at 6, 4.6-5.6 at 7, 4.0-6.1
# at 8, 15.3-17.3 at 10.
SAVED_UP_TO_7, SAVED_8_SMALL, SAVED_8, SAVED_LARGER = 0.6, 0.5, 0.24, 0.1
EAGER_B32 = {4: 0.0026, 6: 0.0035, 7: 0.0051, 8: 0.0051, 10: 0.0163}
BATCH_SHARE = {4: 0.03, 8: 0.34}  # 4 qubits: 1.24x the time at 8x the batch; 8 qubits: 3.4x; between: linear
COLD_SECONDS = 30.0  # auto: a first compiled step's cost (measured 16-43 s from an empty cache, 8-25 s from a warm one)
DATA_DEPENDENT = ("aten::_local_scalar_dense", "aten::is_nonzero", "aten::nonzero", "aten::item")
RANDOM = ("rand", "bernoulli", "normal", "dropout", "multinomial", "uniform", "exponential")
STATEFUL = (nn.modules.dropout._DropoutNd, nn.modules.batchnorm._NormBase)  # draw or update in training


def step_mode() -> str:
    """``QKD_COMPILE_STEP``: auto (the default), on or off."""
    value = os.environ.get("QKD_COMPILE_STEP", "auto").strip().lower()
    if value not in MODES:
        raise QkdError(f"QKD_COMPILE_STEP={value!r} is not a step-compile mode; choose one of: {', '.join(MODES)}")
    return value


def _compiled_layers(model: nn.Module) -> list[CompiledLayer]:
    """The traced-path wrappers of a model's circuits: qkd-pl's QuantumLayer's, an accelerated TorchLayer's."""
    found = []
    for m in model.modules():
        for candidate in (m, getattr(m, "compiled", None), m.__dict__.get("forward")):
            if isinstance(candidate, CompiledLayer) and candidate not in found:
                found.append(candidate)
    return found


def why_not_compiled(model: nn.Module, rows: Any, cfg: Any, loss_fn: Any, optimizer: torch.optim.Optimizer
                     ) -> str | None:
    """None where a fit's steps may be compiled, else why not (the fit steps eagerly)."""
    if step_mode() == "off":
        return "QKD_COMPILE_STEP=off"
    if not _compiled_layers(model):
        return "the model has no circuit on the traced path"
    if getattr(loss_fn, "terms", None) is None:
        return "the loss has no tensor form (Objective.terms)"
    if rows.hard is not None or rows.soft is not None:
        return "masked rows (a transfer set)"
    if getattr(cfg, "mixup", 0) > 0:
        return "mixup"
    if rows.teacher_fn is not None:
        return "a teacher called on every batch"
    if any(isinstance(m, STATEFUL) for m in model.modules()):
        return "dropout or batch norm"
    groups = optimizer.param_groups
    if len(groups) != 1 or type(optimizer) not in (torch.optim.Adam, Adam, torch.optim.SGD):
        return f"the optimizer {type(optimizer).__name__}"
    g = groups[0]
    if isinstance(optimizer, torch.optim.Adam) and (g["amsgrad"] or g["maximize"] or g["capturable"]
                                                    or g["differentiable"] or g.get("decoupled_weight_decay")):
        return "an Adam variant"
    if isinstance(optimizer, torch.optim.SGD) and (g["maximize"] or g["dampening"] or not g["momentum"]):
        return "an SGD variant"
    return None


@dataclass
class _Shape:
    """What one batch shape has seen: its steps, and its compiled step once trusted (with the
    inputs' layout it was compiled for: inductor's code, called without Dynamo, has no guards)."""

    steps: int = 0
    compiled: Callable | None = None
    refused: str | None = None
    pending: tuple | None = None  # a compiled step's outputs for a batch also stepped eagerly, to compare
    layout: tuple | None = None
    settings: str | None = None  # what the trace baked in (loss and optimizer settings), to see them change


@dataclass
class StepResult:
    """A compiled step's outputs for one batch; ``commit`` writes them into the model and optimizer."""

    loss: torch.Tensor
    parts: dict[str, float]
    logits: torch.Tensor
    commit: Callable[[], None]


class CompiledSteps:
    """The compiled steps of one fit, per batch shape.

    Args:
        model: the student (its circuits on qkd.fused's traced path).
        loss_fn: the loop's loss of a batch, with a ``terms`` tensor form.
        optimizer: the fit's Adam or SGD (``make_optimizer``); its state is read and written here.
        planned: the steps the fit has left, by batch length (``auto``'s rule): the full batches,
            and the epoch's last, smaller one.

    Example:
        >>> steps = CompiledSteps(model, loss_fn, optimizer, planned={32: epochs * batches})
        >>> done = steps.step(batch)           # None: step eagerly this time
        >>> if done: check(done.loss); done.commit()
    """

    def __init__(self, model: nn.Module, loss_fn: Any, optimizer: torch.optim.Optimizer, planned: dict[int, int]):
        self.model, self.terms, self.optimizer, self.planned = model, loss_fn.terms, optimizer, planned
        self.objective = getattr(loss_fn, "objective", None)
        self.shapes: dict[tuple, _Shape] = {}
        named = dict(model.named_parameters())
        # a frozen module's parameters (fine-tuning) stay in the optimizer but never step: inputs here
        trained = {id(p) for p in optimizer.param_groups[0]["params"] if p.requires_grad}
        self.names = [n for n, p in named.items() if id(p) in trained]
        self.params = [named[n] for n in self.names]
        self.frozen = {n: p for n, p in named.items() if id(p) not in trained}
        self.adam = isinstance(optimizer, torch.optim.Adam)
        modules = dict(model.named_modules())
        self.buffer_names = [name for name, _ in model.named_buffers()]
        self.buffers = [(modules[name.rpartition(".")[0]], name.rpartition(".")[2]) for name in self.buffer_names]
        # a circuit in complex64 (qkd.fused32) rounds its float64 weights' gradients to single precision
        self.single = any("complex64" in str(getattr(layer.layer.qnode.device, "c_dtype", ""))
                          for layer in _compiled_layers(model))
        self.qubits = max((len(layer.layer.qnode.device.wires) for layer in _compiled_layers(model)), default=0)
        self.runs = 0  # steps taken by a compiled function (tests)

    def step(self, batch) -> StepResult | None:
        """The compiled step's result for ``batch``, or None: step it eagerly."""
        shape = self.shapes.setdefault(self._key(batch), _Shape())
        shape.steps += 1
        if shape.refused is not None:
            return None
        if shape.compiled is not None:
            return self._run(shape, batch)
        if shape.steps <= EAGER_FIRST or not self._optimizer_ready():
            return None
        if step_mode() == "auto" and not self._pays(shape, batch):
            return None
        return self._compile(shape, batch)

    # ------------------------------------------------------------------ the rule
    def _pays(self, shape: _Shape, batch) -> bool:
        """``auto``: compile when the fit's planned steps of this shape reach the break-even count.
        Decided from the plan and measured constants only, never from timings or the cache's
        contents, so the same command takes the same steps (compiled or eager) on every run."""
        if batch.x.device.type != "cpu":  # the constants are this CPU's; a GPU's are not measured yet
            shape.refused = "auto compiles on the CPU only (QKD_COMPILE_STEP=on compiles on a GPU too)"
            return False
        if self.planned.get(len(batch.x), 0) >= break_even_steps(self.qubits, len(batch.x)):
            return True
        shape.refused = "it would not pay for its compilation"
        return False

    # ------------------------------------------------------------------ build
    def _key(self, batch) -> tuple:
        t = batch.teacher
        return (tuple(batch.x.shape), batch.x.dtype, tuple(batch.y.shape),
                None if t is None else (tuple(t.shape), t.dtype))

    def _batch_inputs(self, batch) -> int:
        """How many of ``_inputs`` are the batch's (images, labels, teacher logits) and the step's numbers."""
        return 2 + (batch.teacher is not None) + (2 if self.adam else 1)

    def _settings(self) -> str:
        """The values a trace bakes in besides its inputs: the loss's hyperparameters and the
        optimizer's settings other than the learning rate (which is an input)."""
        group = {k: v for k, v in self.optimizer.param_groups[0].items() if k not in ("params", "lr", "initial_lr")}
        return repr((self.objective, sorted(group.items(), key=lambda kv: kv[0])))

    def _optimizer_ready(self) -> bool:
        """torch's optimizer makes its state on its first step; the compiled step reads it."""
        state = self.optimizer.state
        key = "exp_avg" if self.adam else "momentum_buffer"
        return all(p in state and state[p].get(key) is not None for p in self.params)

    def _state(self) -> list[torch.Tensor]:
        state = self.optimizer.state
        if self.adam:
            return [state[p]["exp_avg"] for p in self.params] + [state[p]["exp_avg_sq"] for p in self.params]
        return [state[p]["momentum_buffer"] for p in self.params]

    def _scalars(self) -> list[torch.Tensor]:
        """The step's numbers that change every step, computed as torch's optimizer does (in Python floats)."""
        g = self.optimizer.param_groups[0]
        where = self.params[0].device  # beside the parameters: a GPU graph then reads no host scalar
        if not self.adam:
            return [torch.tensor(float(g["lr"]), dtype=torch.float64, device=where)]
        step = float(self.optimizer.state[self.params[0]]["step"]) + 1
        beta1, beta2 = g["betas"]
        step_size = g["lr"] / (1 - beta1 ** step)
        bc2_sqrt = (1 - beta2 ** step) ** 0.5
        return [torch.tensor(step_size, dtype=torch.float64, device=where),
                torch.tensor(bc2_sqrt, dtype=torch.float64, device=where)]

    def _inputs(self, batch) -> list[torch.Tensor]:
        buffers = [getattr(module, name) for module, name in self.buffers]  # read now: a buffer may be reassigned
        extra = [batch.teacher] if batch.teacher is not None else []
        return [*self.params, *self._state(), *buffers, *self.frozen.values(), batch.x, batch.y, *extra,
                *self._scalars()]

    def _function(self, batch) -> Callable:
        """The step as a function of flat tensors: (new params, new state, loss, ce, kd, logits)."""
        forward = functional_forward(self.model)
        names, n = self.names, len(self.params)
        buffer_names, frozen_names = self.buffer_names, list(self.frozen)
        g = self.optimizer.param_groups[0]
        wd, adam, terms = g["weight_decay"], self.adam, self.terms
        has_teacher = batch.teacher is not None

        def step(*flat):
            params, flat = list(flat[:n]), flat[n:]
            k = 2 * n if adam else n
            state, flat = list(flat[:k]), flat[k:]
            buffers = dict(zip(buffer_names, flat[:len(buffer_names)]))
            flat = flat[len(buffer_names):]
            frozen = dict(zip(frozen_names, flat[:len(frozen_names)]))
            flat = flat[len(frozen_names):]
            x, y, flat = flat[0], flat[1], flat[2:]
            teacher, flat = (flat[0], flat[1:]) if has_teacher else (None, flat)

            def loss_of(trained):
                logits = forward({**trained, **frozen}, buffers, x)
                loss, ce, kd = terms(logits, y, teacher, None, None)
                return loss, (ce, kd, logits)

            grads, (loss, (ce, kd, logits)) = grad_and_value(loss_of, has_aux=True)(dict(zip(names, params)))
            grads = [grads[name] for name in names]
            raw = grads  # returned too: the first compiled step is checked on them (``check``)
            if wd:
                grads = [gr + wd * p for gr, p in zip(grads, params)]
            if adam:
                step_size, bc2_sqrt = flat
                beta1, beta2 = g["betas"]
                m = [mi.lerp(gr, 1 - beta1) for mi, gr in zip(state[:n], grads)]
                v = [vi * beta2 + (1 - beta2) * gr * gr for vi, gr in zip(state[n:], grads)]
                new = [p - step_size.to(p.dtype) * mi / (vi.sqrt() / bc2_sqrt.to(p.dtype) + g["eps"])
                       for p, mi, vi in zip(params, m, v)]
                return (*new, *m, *v, loss, ce, kd, logits, *raw)
            (lr,) = flat
            momentum = g["momentum"]
            bufs = [b * momentum + gr for b, gr in zip(state, grads)]
            steps = [gr + momentum * b for gr, b in zip(grads, bufs)] if g["nesterov"] else bufs
            new = [p - lr.to(p.dtype) * s for p, s in zip(params, steps)]
            return (*new, *bufs, loss, ce, kd, logits, *raw)

        return step

    def _trace(self, batch) -> fx.GraphModule:
        from torch.fx.experimental.proxy_tensor import make_fx

        for layer in _compiled_layers(self.model):  # their real forms, made before tracing (their checks run tensors)
            for traced in layer._graphs.values():
                if traced is not None:
                    traced.real_graph()
        with real_arithmetic():
            graph = make_fx(self._function(batch))(*(t.detach() for t in self._inputs(batch)))
        why = _unfit(graph)
        if why is not None:
            raise NotBatchable(why)
        return graph

    def _compile(self, shape: _Shape, batch) -> StepResult | None:
        """Trace, compile and check the step on this batch; None (and the shape stays eager) if it fails."""
        try:
            graph = self._trace(batch)
        except NotBatchable as exc:  # a circuit not traced yet for this shape, or a trace unfit to compile
            shape.refused = str(exc)
            return None
        except Exception as exc:  # noqa: BLE001 - a model or loss make_fx cannot trace stays eager
            shape.refused = f"tracing the step failed ({first_line(exc)})"
            return None
        inputs = self._inputs(batch)
        key = _graph_key(graph) + repr(_layout(inputs))  # inductor's code is specialized to the layout
        compiled = COMPILED.get(key)
        try:
            if compiled is None:
                logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
                compiled = compile_graph(graph, inputs)
            with torch.no_grad():
                out = compiled(*inputs)
        except Exception as exc:  # noqa: BLE001 - no C++ compiler, say: the eager step is always there
            shape.refused = f"torch.compile failed ({first_line(exc)})"
            warnings.warn(f"the training step is not compiled: {shape.refused}; it runs eagerly", QkdWarning,
                          stacklevel=3)
            return None
        COMPILED[key] = compiled
        shape.pending = (compiled, out)
        return None  # this batch steps eagerly; ``check_gradients`` and ``check_update`` compare the two

    def check_gradients(self, batch, loss: torch.Tensor, logits: torch.Tensor) -> None:
        """Between the eager backward and the optimizer's step, on the batch ``_compile`` compiled for:
        the compiled step's loss, logits and gradients against the eager ones (gradients at their own
        scale, everything to rounding: 1e-8 for a model in float64 throughout, else 1e-5, the least
        precise stage rounding every later one). If they agree, the parameters' ``.grad`` become the
        compiled gradients, so ``check_update`` can hold the compiled optimizer arithmetic to rounding
        against torch's own on the same gradients (with a complex64 circuit, gradients carry single
        precision, which Adam's division by sqrt(v) magnifies in a weight whose gradients are near zero)."""
        shape = self.shapes.get(self._key(batch))
        if shape is None or shape.pending is None:
            return
        compiled, out = shape.pending
        n, k = len(self.params), len(self._state())
        double = (not self.single and batch.x.dtype == torch.float64
                  and all(p.dtype == torch.float64 for p in self.params))
        tol = 1e-8 if double else 1e-5
        checks = [("the loss", loss, out[n + k], tol), ("the logits", logits, out[n + k + 3], tol)]
        for name, p, g in zip(self.names, self.params, out[n + k + 4:]):
            if p.grad is None:  # a parameter the eager step gave no gradient: the graph's is not checkable
                return self._refuse(shape, f"the eager step gave {name} no gradient")
            # each entry to rounding of itself, and of the tensor's largest (a sum's rounding)
            checks.append((f"the gradient of {name}", p.grad, g, 1e-2 * tol * max(1.0, p.grad.abs().max().item())))
        for name, e, g, atol in checks:
            if e.shape != g.shape or not torch.allclose(e.detach(), g.to(e.dtype), rtol=tol, atol=atol):
                return self._refuse(shape, f"it differs from the eager step in {name}")
        for p, g in zip(self.params, out[n + k + 4:]):
            p.grad = g.to(p.dtype).clone()
        shape.pending = (compiled, out, [p.detach().clone() for p in self.params])

    def check_update(self, batch) -> None:
        """After the optimizer's step of that batch: the compiled new weights and optimizer state
        against torch's from the same gradients, each update to 1e-4 of itself and a few units in
        the last place of its tensor; the compiled step is trusted (used from the next batch) only if
        they agree."""
        shape = self.shapes.get(self._key(batch))
        if shape is None or shape.pending is None or len(shape.pending) < 3:
            return
        compiled, out, before = shape.pending
        shape.pending = None
        n, k = len(self.params), len(self._state())
        checks = [(name, p - old, new - old) for name, p, old, new in zip(self.names, self.params, before, out[:n])]
        checks += [("the optimizer's state", e, g) for e, g in zip(self._state(), out[n:n + k])]
        for name, e, g in checks:
            ulps = 4 * torch.finfo(e.dtype).eps * max(1.0, e.abs().max().item())
            if e.shape != g.shape or not torch.allclose(e.detach(), g.to(e.dtype), rtol=1e-4, atol=ulps):
                return self._refuse(shape, f"its update differs from the optimizer's in {name}")
        inputs = self._inputs(batch)
        shape.compiled, shape.settings = compiled, self._settings()
        shape.layout = (_layout(inputs), [id(t) for t in inputs[:-self._batch_inputs(batch)]])

    def _refuse(self, shape: _Shape, why: str) -> None:
        shape.refused, shape.pending = why, None
        warnings.warn(f"the compiled training step was not used: {why}; this fit steps eagerly (correct, slower). "
                      f"Set QKD_COMPILE_STEP=off to silence this", QkdWarning, stacklevel=3)

    def _run(self, shape: _Shape, batch) -> StepResult | None:
        inputs = self._inputs(batch)
        held = len(inputs) - self._batch_inputs(batch)
        if ([id(t) for t in inputs[:held]] != shape.layout[1]  # weights, state or buffers replaced: check anew
                and _layout(inputs[:held]) != shape.layout[0][:held]):
            return None
        if _layout(inputs[held:]) != shape.layout[0][held:]:  # a batch laid out otherwise: eager
            return None
        if self._settings() != shape.settings:  # a hyperparameter changed mid-fit (a callback, a schedule)
            shape.compiled, shape.refused = None, "a loss or optimizer setting changed after it was compiled"
            return None
        try:
            with torch.no_grad():
                out = shape.compiled(*inputs)
        except Exception as exc:  # noqa: BLE001 - the eager step is always there
            shape.compiled, shape.refused = None, f"a compiled call failed ({first_line(exc)})"
            warnings.warn(f"the compiled training step {shape.refused}; this fit steps eagerly from here",
                          QkdWarning, stacklevel=3)
            return None
        self.runs += 1
        n, k = len(self.params), len(self._state())
        loss, ce, kd, logits = out[n + k:n + k + 4]

        def commit() -> None:
            with torch.no_grad():
                torch._foreach_copy_([*self.params, *self._state()], list(out[:n + k]))
                if self.adam:
                    torch._foreach_add_([self.optimizer.state[p]["step"] for p in self.params], 1)

        return StepResult(loss, {"ce": ce.item(), "kd": kd.item()}, logits, commit)


# Compiled steps by graph, for every fit in this process: a grid worker's students of one shape
# compile once. The key is the graph's code and its constants' bytes (index tables, fixed gates).
COMPILED: dict[str, Callable] = {}


def _layout(tensors: list[torch.Tensor]) -> tuple:
    return tuple((tuple(t.shape), t.stride(), t.dtype, t.device) for t in tensors)


def break_even_steps(qubits: int, batch: int) -> int:
    """The planned steps from which ``auto`` compiles a batch shape: a cold compilation's cost over
    what a compiled step saves (the measured eager step times the measured fraction saved)."""
    b32 = next((EAGER_B32[q] for q in sorted(EAGER_B32) if qubits <= q), None)
    if b32 is None:  # beyond what was measured: each qubit doubles the state
        b32 = EAGER_B32[max(EAGER_B32)] * 2 ** (qubits - max(EAGER_B32))
    low, high = BATCH_SHARE[4], BATCH_SHARE[8]
    share = min(high, max(low, low + (high - low) * (qubits - 4) / 4))
    eager = b32 * (1 - share + share * batch / 32)
    return math.ceil(COLD_SECONDS / (eager * saved_fraction(qubits, batch)))


def saved_fraction(qubits: int, batch: int) -> float:
    """The fraction of an eager step the compiled one saves, at least, as measured for this size."""
    if qubits <= 7:
        return SAVED_UP_TO_7
    if qubits == 8:
        return SAVED_8_SMALL if batch <= 64 else SAVED_8
    return SAVED_LARGER


def compile_graph(graph: fx.GraphModule, inputs: list[torch.Tensor]) -> Callable:
    """The traced step compiled by inductor directly (``torch._inductor.compile``: a flat aten graph
    needs no Dynamo, whose guards would cost every call tens of microseconds)."""
    import torch._inductor

    cache_folder()  # inductor's on-disk cache in the user cache folder: a shape compiled once loads in seconds
    for node in graph.graph.nodes:  # make_fx's fake values belong to its own fake mode, not inductor's
        node.meta.pop("val", None)
        node.meta.pop("tensor_meta", None)
    return torch._inductor.compile(graph, [t.detach() for t in inputs], options=INDUCTOR_OPTIONS)


def _graph_key(graph: fx.GraphModule) -> str:
    """The graph's code and every constant it reads (index tables, fixed gates), by name, dtype, shape and bytes."""
    h = hashlib.sha256(graph.code.encode())
    for node in graph.graph.nodes:
        value = getattr(graph, node.target) if node.op == "get_attr" else None
        if isinstance(value, torch.Tensor):
            h.update(f"{node.target}{value.dtype}{tuple(value.shape)}{value.device}".encode())
            h.update(value.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    h.update(torch.__version__.encode())
    return h.hexdigest()


def _unfit(graph: fx.GraphModule) -> str | None:
    """Why a traced step must not be compiled: a value read back into Python, a random draw, a complex value."""
    for node in graph.graph.nodes:
        if node.op != "call_function":
            continue
        schema = getattr(node.target, "_schema", None)
        name = schema.name if schema is not None else ""
        if name in DATA_DEPENDENT:
            return "the model or loss reads a tensor's value in Python (a branch on a value)"
        if any(word in name for word in RANDOM):
            return "the model or loss draws random numbers"
        val = node.meta.get("val")
        if isinstance(val, torch.Tensor) and val.is_complex():
            return "a circuit without a traced graph in real arithmetic"
    return None
