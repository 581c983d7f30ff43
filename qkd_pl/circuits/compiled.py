"""A student's TorchLayer on qkd.fused, traced into a flat torch graph the layer then calls directly.

Why: on qkd.fused a 4-qubit student's circuit is a few dozen small tensor operations, but every
call through ``TorchLayer`` and the QNode also builds a tape, runs the transform pipeline, keys
and looks up the device's plan and dispatches the results: bookkeeping that costs more than the
arithmetic. Tracing one call with ``make_fx`` records only the aten operations that reach the
tensors (the fused plan's steps, the embedding's normalization, TorchLayer's stacking) as a
graph. Constants (index tables, sign tables, fixed gate matrices) are folded in once, and the
no-op aliases tracing leaves are dropped. Calling the graph gives the same outputs and, through
ordinary autograd, the same gradients as the QNode, bit for bit
(tests/circuits/test_compiled.py).

What a trace bakes in, and so what keys it: the input's shape, dtype and torch device (its
constants are made there: a student on CUDA traces its own graph), the weights' shapes, dtypes
and torch devices, the circuit's device and the QNode's circuit function. A trace also bakes in every Python branch
the call took on input or weight values (PennyLane's ``AmplitudeEmbedding(normalize=True)``
divides only when the norm is not already 1; a user's circuit may test a value), which no key
can see. So a new graph is trusted only after it agrees with the QNode on probes unlike the
traced call: random inputs with norms from 1e-2 to 1e2 and signs of every kind, and random
weights. A graph that disagrees is dropped, with one warning, and that layer runs through its
QNode from then on (slower, never wrong). qkd-pl's own encodings take no such branch
(encoding.py normalizes unconditionally), so its students keep their graphs. A branch taken
only on rare values (a test no probe reaches) is beyond what probing can show: keep circuit
functions free of Python tests on tensor values, or set ``QKD_COMPILE=off``.

Anything else runs through the QNode: a layer whose call did not run on qkd.fused's own fast
path (another device, shots, adjoint or parameter-shift gradients, a tape qkd.fused hands to
default.qubit) is never traced. A key is traced on its third call, so one-off shapes (an
evaluation's last batch) never pay the trace, which takes a fraction of a second to a few
seconds.

``QKD_COMPILE`` chooses how far this goes: ``off`` (every call through the QNode), ``trace`` (the
default: the traced graph, run eagerly) or ``inductor``: the graph rewritten into real arithmetic
(real_graph.py) and compiled by ``torch.compile`` for training steps (calls with gradients
enabled; evaluation keeps the eager graph rather than compile a second time). A compiled step is
faster, but compiling costs seconds to a minute per input shape, which a run of a few epochs does
not earn back; docs/explanation/performance.md has both figures, measured.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import types
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import torch
from torch import fx, nn

from ..errors import QkdError, QkdWarning
from .real_graph import to_real

TRACE_AFTER = 2  # calls of a key through the QNode before it is traced
COMPILE_AFTER = 50  # inductor mode: training calls of a traced key before it is compiled
CACHE_SIZE = 8
NO_OPS = ("aten::alias", "aten::lift_fresh_copy", "aten::detach")


MODES = ("off", "trace", "inductor")
ALIASES = {"0": "off", "1": "trace"}
# Inductor options, for these compilations only: a C++ rather than a Python wrapper around the
# generated kernels (the graph's step is dozens of small kernels, so the per-kernel call matters).
INDUCTOR_OPTIONS = {"cpp_wrapper": True}


def cache_folder() -> Path:
    """Where inductor keeps what it compiled, set just before qkd-pl compiles: a folder the user
    chose (``TORCHINDUCTOR_CACHE_DIR``), else one per torch version in the user cache
    (``$QKD_CACHE_DIR/inductor`` or platformdirs' ``qkd-pl``), so a graph compiled once on a
    machine loads in seconds afterwards (torch's own default is under /tmp, lost on a restart)."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    global _CHOSEN
    current = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if current and current not in (_CHOSEN, os.path.abspath(default_cache_dir())):
        return Path(current)  # the user's (torch writes its default there when Dynamo is imported)
    root = os.environ.get("QKD_CACHE_DIR")
    if not root:
        from platformdirs import user_cache_dir
        root = user_cache_dir("qkd-pl")
    folder = Path(root) / "inductor" / f"torch-{torch.__version__}"
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = _CHOSEN = str(folder)
    return folder


_CHOSEN: str | None = None  # the folder cache_folder set, told apart from one the user set

_REAL_ARITHMETIC = False  # set while a whole training step is traced: graphs answer in real arithmetic


@contextlib.contextmanager
def real_arithmetic():
    """Within: every traced circuit graph runs in its real-arithmetic form (``NotBatchable`` where it
    has none), so a trace of a whole training step holds no complex value inductor cannot fuse."""
    global _REAL_ARITHMETIC
    saved, _REAL_ARITHMETIC = _REAL_ARITHMETIC, True
    try:
        yield
    finally:
        _REAL_ARITHMETIC = saved


class NotBatchable(Exception):
    """A layer asked to run many students at once (under ``vmap``) without a graph that can."""


def batched(x: torch.Tensor) -> bool:
    """Whether ``x`` is one student's view of a batch of students (inside ``torch.func.vmap``)."""
    return torch._C._functorch.is_batchedtensor(x)


def mode() -> str:
    """``QKD_COMPILE``: off (every call through the QNode, to compare or to rule this out), trace
    (the default) or inductor."""
    value = os.environ.get("QKD_COMPILE", "trace").strip().lower()
    value = ALIASES.get(value, value)
    if value not in MODES:
        raise QkdError(f"QKD_COMPILE={value!r} is not a compile mode; choose one of: {', '.join(MODES)}")
    return value


def enabled() -> bool:
    return mode() != "off"


class Traced:
    """A traced call: the eager graph, and in inductor mode its real form, compiled once the key
    has run ``COMPILE_AFTER`` training calls (so an epoch's last, smaller batch, or a shape used
    for a few steps, never pays a compilation it would not earn back)."""

    def __init__(self, graph: fx.GraphModule, real: fx.GraphModule | None = None,
                 make_real: Callable[[], fx.GraphModule | None] | None = None):
        self.graph, self.real = graph, real
        self.training_calls = 0
        self.compiled: Callable | None = None
        self._make_real = make_real
        self._real_made = self.inductor = real is not None  # inductor mode: the circuit alone compiled

    def real_graph(self) -> fx.GraphModule | None:
        """The graph in real arithmetic (made once, on first ask), or None where the rewrite does not apply."""
        if not self._real_made and self._make_real is not None:
            self.real, self._real_made = self._make_real(), True
        return self.real

    def __call__(self, *args: torch.Tensor) -> torch.Tensor:
        if _REAL_ARITHMETIC:  # a whole step being traced for compilation (training/compiled_step.py)
            real = self.real_graph()
            if real is None:
                raise NotBatchable("the circuit's graph has no real-arithmetic form")
            return real(*args)
        if not self.inductor or self.real is None or not torch.is_grad_enabled() or batched(args[0]):
            return self.graph(*args)
        if self.compiled is None:
            self.training_calls += 1
            if self.training_calls < COMPILE_AFTER:
                return self.graph(*args)
            # inductor's C++ toolchain lookup warns that a CPU-only machine has no CUDA runtime: noise here
            logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
            cache_folder()
            compiled = torch.compile(self.real, fullgraph=True, dynamic=False, options=INDUCTOR_OPTIONS)
            try:  # compiles now: a machine without a C++ compiler, say, keeps the eager graph
                out = compiled(*args)
            except Exception as exc:  # noqa: BLE001 - any failure to compile leaves a working graph
                warnings.warn(f"QKD_COMPILE=inductor: torch.compile failed ({_first_line(exc, 200)}); "
                              f"the circuit runs on its traced graph, uncompiled", QkdWarning, stacklevel=2)
                self.real = None
                return self.graph(*args)
            self.compiled = compiled
            return out
        return self.compiled(*args)


class CompiledLayer:
    """Calls ``layer`` (a TorchLayer) through traced graphs where it can, through itself otherwise.

    Args:
        layer: a ``qml.qnn.TorchLayer`` whose QNode may run on qkd.fused.
        direct: how to call the layer through its QNode (default: ``layer`` itself).
    """

    def __init__(self, layer: nn.Module, direct: Callable[[torch.Tensor], torch.Tensor] | None = None):
        self.layer = layer
        self._direct = direct or layer  # the QNode's own call (accelerate.py: the layer's unpatched forward)
        self._graphs: OrderedDict[tuple, Traced | None] = OrderedDict()
        self._calls: dict[tuple, int] = {}
        self.traces = 0  # graphs made (or found in SHARED) and trusted: lets tests see that a change of key retraced
        self.shared = 0  # of those, graphs another layer of the same circuit had traced
        self.untraceable: str | None = None  # why this layer's calls stay on the QNode, once a probe disagreed
        self._warned_real = False

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        weights = dict(self.layer.qnode_weights)
        key = self._key(x, weights)
        if key in self._graphs:
            self._graphs.move_to_end(key)
            graph = self._graphs[key]
            if graph is not None:
                return graph(x, *weights.values())
        if batched(x) or _REAL_ARITHMETIC:  # many students at once (vmap), or a step traced whole: graphs only
            raise NotBatchable(f"{_layer_name(self.layer)} has no traced graph for inputs of shape "
                               f"{tuple(x.shape)}" + (f" ({self.untraceable})" if self.untraceable else ""))
        if key in self._graphs:
            return self._direct(x)
        self._calls[key] = self._calls.get(key, 0) + 1
        if self._calls[key] <= TRACE_AFTER or not enabled() or self.untraceable:
            return self._direct(x)
        graph = self._trace(x, weights)
        self._graphs[key] = graph
        if len(self._graphs) > CACHE_SIZE:
            self._graphs.popitem(last=False)
        return self._direct(x) if graph is None else graph(x, *weights.values())

    def _key(self, x: torch.Tensor, weights: dict[str, torch.Tensor]) -> tuple:
        qnode = self.layer.qnode
        return (tuple(x.shape), x.dtype, x.device, tuple((k, tuple(v.shape), v.dtype, v.device)
                                                         for k, v in weights.items()),
                id(qnode.device), qnode.func, qnode.diff_method)

    def _trace(self, x: torch.Tensor, weights: dict[str, torch.Tensor]) -> Traced | None:
        """The graph of one call, or None where the call did not run on qkd.fused's fast path."""
        from torch.fx.experimental.proxy_tensor import make_fx

        from ..devices.fused import FusedQubit

        device = self.layer.qnode.device
        if not isinstance(device, FusedQubit):
            return None
        names = list(weights)
        fast, fallback = device.fast_executions, device.fallback_executions

        def call(inputs, *values):  # TorchLayer passes the QNode its ``qnode_weights`` dict's tensors
            saved = self.layer.qnode_weights
            self.layer.qnode_weights = dict(zip(names, values))
            try:
                return self._direct(inputs)
            finally:
                self.layer.qnode_weights = saved

        shared_key = _shared_key(self.layer, x, weights)
        shared = SHARED.get(shared_key) if shared_key is not None else None
        if shared is not None:  # the same circuit traced for another layer: trusted once it matches this QNode
            try:
                if _disagreement(shared, call, x, weights) is None:
                    SHARED.move_to_end(shared_key)
                    self.traces += 1
                    self.shared += 1
                    return self._traced(shared, x, weights)
            except Exception:  # noqa: BLE001 - this QNode refused a probe: trace it for itself below
                pass
        try:
            graph = make_fx(call)(x.detach(), *(v.detach() for v in weights.values()))
        except Exception as exc:  # noqa: BLE001 - e.g. a Python test on a tensor value, which tracing refuses
            return self._leave_on_qnode(f"tracing it failed ({_first_line(exc, 160)})")
        if device.fast_executions == fast or device.fallback_executions != fallback:
            return None
        parameters = {id(p) for p in self.layer.parameters()}
        if any(id(getattr(graph, n.target)) in parameters for n in graph.graph.nodes if n.op == "get_attr"):
            return None  # a weight read some other way than through the call's arguments: it would be frozen
        graph = _simplified(graph)
        try:
            differs = _disagreement(graph, call, x, weights)
        except Exception as exc:  # noqa: BLE001 - a QNode that validates its inputs refuses a probe: unverifiable
            return self._leave_on_qnode(f"its QNode refused a probe input ({_first_line(exc, 120)}), so its "
                                        f"traced graph cannot be checked")
        if differs is not None:
            return self._leave_on_qnode(f"its traced graph disagrees with its QNode on {differs}, so the circuit "
                                        f"takes a Python branch on input or weight values")
        self.traces += 1
        if shared_key is not None:
            SHARED[shared_key] = graph
            if len(SHARED) > SHARED_SIZE:
                SHARED.popitem(last=False)
        return self._traced(graph, x, weights)

    def _traced(self, graph: fx.GraphModule, x: torch.Tensor, weights: dict[str, torch.Tensor]) -> Traced:
        """A trusted graph; its real form made now in inductor mode, else on first ask (a compiled step's)."""
        if mode() == "inductor":
            return Traced(graph, self._real(graph, x, weights))
        x, weights = x.detach().clone(), {k: v.detach().clone() for k, v in weights.items()}
        return Traced(graph, make_real=lambda: self._real(graph, x, weights))

    def _leave_on_qnode(self, why: str) -> None:
        self.untraceable = why
        self._graphs.clear()  # graphs of other shapes, traced before, may hold the same branch
        warnings.warn(f"{_layer_name(self.layer)}: {why}; this layer runs through its QNode from now on (correct, "
                      f"slower). Compute with torch functions rather than Python tests on tensor values, or set "
                      f"QKD_COMPILE=off to silence this", QkdWarning, stacklevel=4)

    def _real(self, graph: fx.GraphModule, x: torch.Tensor, weights: dict[str, torch.Tensor]) -> fx.GraphModule | None:
        real, why = _real(graph, x, weights)
        if real is None and not self._warned_real:
            self._warned_real = True  # once per layer: every key of one circuit fails the same way
            warnings.warn(f"QKD_COMPILE=inductor: {_layer_name(self.layer)} is not compiled ({why}); it runs on its "
                          f"traced complex graph, uncompiled", QkdWarning, stacklevel=4)
        return real

    def __getstate__(self) -> dict:  # graphs are remade after a copy or a trip to another process
        return {"layer": self.layer, "_direct": self._direct, "_graphs": OrderedDict(), "_calls": {}, "traces": 0,
                "shared": 0,
                "untraceable": self.untraceable, "_warned_real": False}


# Graphs by circuit, for every layer in this process: a grid worker's students, a stacked fit's,
# or a model's evaluation copies trace each circuit and shape once (tracing and its probes take
# a fraction of a second to seconds). A graph found here is used for a layer only after it agrees
# with that layer's own QNode on the probes, as a fresh trace is.
SHARED: OrderedDict[tuple, fx.GraphModule] = OrderedDict()
SHARED_SIZE = 64


def _shared_key(layer: nn.Module, x: torch.Tensor, weights: dict[str, torch.Tensor]) -> tuple | None:
    """What makes two layers' calls the same circuit: ``circuit_signature`` and the call's shapes;
    None where the circuit cannot be compared (the layer keeps its own graphs)."""
    circuit = circuit_signature(layer.qnode)
    if circuit is None:
        return None
    return (tuple(x.shape), x.dtype, tuple((k, tuple(v.shape), v.dtype) for k, v in weights.items()), circuit,
            mode(), x.device)


def circuit_signature(qnode) -> tuple | None:
    """The circuit function's code and the values it closes over or defaults to, the device's kind,
    wires, shots and precision, the interface, differentiation method and transforms; None where the
    function is not a plain one (a partial, a callable object) or closes over a value that cannot
    be compared."""
    func, device = qnode.func, qnode.device
    if not isinstance(func, types.FunctionType):
        return None
    values = [cell.cell_contents for cell in func.__closure__ or ()]
    values += [func.__defaults__, tuple(sorted((func.__kwdefaults__ or {}).items()))]
    compared = []
    for value in values:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = (type(value), repr(value))
        try:
            hash(value)
        except TypeError:
            return None
        compared.append(value)
    return (func.__code__, tuple(compared), type(device), tuple(device.wires), str(getattr(device, "shots", None)),
            str(getattr(device, "c_dtype", None)), str(getattr(device, "R_DTYPE", None)), qnode.interface,
            qnode.diff_method, repr(_pipeline(qnode)))


def _pipeline(qnode) -> object:
    """The QNode's transforms (``compile_pipeline`` from PennyLane 0.45, ``transform_program`` before)."""
    return qnode.compile_pipeline if hasattr(type(qnode), "compile_pipeline") else qnode.transform_program


PROBE_SEED = 20231  # the probes' own generator: tracing must not move the global RNG a run is seeded with


def _probes(x: torch.Tensor, weights: dict[str, torch.Tensor]) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
    """Inputs and weights unlike the traced call's: random rows with norms spread over four
    decades, and the traced rows themselves rescaled (same direction, other norms) under random
    weights."""
    g = torch.Generator().manual_seed(PROBE_SEED)

    def rows(n: int, like: torch.Tensor) -> torch.Tensor:  # one factor per row (per element if unbatched)
        return torch.logspace(-2, 2, n, dtype=torch.float64).reshape(-1, *[1] * (like.ndim - 1))

    def random(t: torch.Tensor) -> torch.Tensor:
        return torch.randn(t.shape, generator=g, dtype=torch.float64).to(device=t.device, dtype=t.dtype)

    x = x.detach()
    spread = (random(x) * rows(x.shape[0], x).to(x.device, x.dtype)) if x.ndim else random(x) * 30
    rescaled = (x * rows(x.shape[0], x).flip(0).to(x.device, x.dtype)) if x.ndim else x * 3
    values = list(weights.values())
    return [(spread, [w.detach() for w in values]), (rescaled, [random(w) for w in values])]


def _disagreement(graph: fx.GraphModule, call: Callable, x: torch.Tensor,
                  weights: dict[str, torch.Tensor]) -> str | None:
    """What a probe found: None where the graph equals the QNode on every probe, else which probe differed."""
    tolerance = 1e-5 if x.dtype == torch.float32 or _has_complex64(graph) else 1e-9
    names = ("random inputs of other norms", "rescaled inputs with random weights")
    with torch.no_grad():
        for name, (inputs, values) in zip(names, _probes(x, weights)):
            expected, got = call(inputs, *values), graph(inputs, *values)
            if expected.shape != got.shape or not torch.allclose(expected, got, rtol=tolerance, atol=tolerance,
                                                                 equal_nan=True):
                return name
    return None


def _first_line(exc: BaseException, width: int) -> str:
    return f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:width]}"


def _layer_name(layer: nn.Module) -> str:
    func = getattr(getattr(layer, "qnode", None), "func", None)
    return f"the circuit {getattr(func, '__qualname__', type(layer).__name__)!r}"


def _real(graph: fx.GraphModule, x: torch.Tensor, weights: dict[str, torch.Tensor]
          ) -> tuple[fx.GraphModule | None, str]:
    """``graph`` in real arithmetic, or None and why: the rewrite does not apply, or (a safeguard: a
    wrong number must not pass silently) its outputs on the traced call's inputs differ from the
    graph's by more than rounding."""
    real = to_real(graph)
    if real is None:
        return None, "the real-arithmetic rewrite does not know one of its operations"
    with torch.no_grad():
        args = (x, *weights.values())
        expected, got = graph(*args), real(*args)
    tolerance = 1e-5 if expected.dtype == torch.float32 or _has_complex64(graph) else 1e-10
    if not torch.allclose(expected, got, rtol=tolerance, atol=tolerance):
        error = (expected - got).abs().max().item()
        return None, f"its real-arithmetic rewrite differs from the traced graph by {error:.1e}"
    return real, ""


def _has_complex64(graph: fx.GraphModule) -> bool:
    return any(getattr(n.meta.get("val"), "dtype", None) == torch.complex64 for n in graph.graph.nodes)


def _simplified(graph: fx.GraphModule) -> fx.GraphModule:
    """Drop the aliases and copies tracing leaves, and compute once what depends on no input."""
    constant: dict[fx.Node, torch.Tensor] = {}
    mutable = any(_writes(node) for node in graph.graph.nodes)  # then copies may protect a constant: keep them
    for node in list(graph.graph.nodes):
        if node.op == "get_attr":
            constant[node] = getattr(graph, node.target)
            continue
        if node.op != "call_function":
            continue
        if _schema_name(node) in NO_OPS and not mutable:
            node.replace_all_uses_with(node.args[0])
            graph.graph.erase_node(node)
            continue
        inputs = node.all_input_nodes
        if inputs and all(n in constant for n in inputs) and _schema_name(node) and not _writes(node):
            value = node.target(*fx.map_arg(node.args, constant.__getitem__),
                                **fx.map_arg(node.kwargs, constant.__getitem__))
            if isinstance(value, torch.Tensor):
                attr = f"_folded_{len(constant)}"
                graph.register_buffer(attr, value)
                with graph.graph.inserting_before(node):
                    folded = graph.graph.get_attr(attr)
                node.replace_all_uses_with(folded)
                graph.graph.erase_node(node)
                constant[folded] = value
    graph.graph.eliminate_dead_code()
    graph.recompile()
    return graph


def _schema_name(node: fx.Node) -> str:
    """'aten::mul' for an aten operation; '' for anything else (Python's getitem on a tuple)."""
    schema = getattr(node.target, "_schema", None)
    return schema.name if schema is not None else ""


def _writes(node: fx.Node) -> bool:
    schema = getattr(node.target, "_schema", None)
    return schema is not None and any(a.alias_info is not None and a.alias_info.is_write for a in schema.arguments)
