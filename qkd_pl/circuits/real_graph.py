"""A traced circuit graph rewritten so that every complex value is a pair of real tensors.

Why: ``torch.compile``'s CPU code generator does not handle complex numbers (it falls back to
one kernel per operation, which is no gain). Carrying a complex value as its real and imaginary
parts, and a part known to be zero as no tensor at all, gives inductor real arithmetic it can
fuse. Run eagerly the rewritten graph is not faster (it has about 1.6x the operations), so only
the inductor mode (compiled.py) uses it.
The zero-tracking also gives real arithmetic for free where the circuit keeps states real (an
amplitude-encoded input, RY-only layers and CNOTs never make an imaginary part).

Only the operations the fused device's plans produce are rewritten (the vocabulary below);
``to_real`` returns None for a graph with anything else, and the caller keeps the complex graph.
Outputs and gradients agree with the complex graph to rounding (tests/circuits/test_real_graph.py).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx

aten = torch.ops.aten

# Operations that act on a complex tensor's real and imaginary parts alike (shape and layout).
STRUCTURAL = {
    aten.view.default, aten._unsafe_view.default, aten.expand.default, aten.unsqueeze.default,
    aten.select.int, aten.slice.Tensor, aten.transpose.int, aten.index.Tensor, aten.clone.default,
    aten.permute.default, aten.reshape.default, aten.squeeze.dim, aten.t.default,
}
PRODUCTS = {aten.mul.Tensor: aten.mul.Tensor, aten.mm.default: aten.mm.default, aten.bmm.default: aten.bmm.default}
REAL_OF = {torch.complex128: torch.float64, torch.complex64: torch.float32}


class Unsupported(Exception):
    """The graph has an operation on complex values this module does not rewrite."""


@dataclass
class Pair:
    """A complex value as graph nodes of its parts; None stands for a part that is exactly zero."""

    re: fx.Node | None
    im: fx.Node | None
    shape: tuple[int, ...]
    dtype: torch.dtype  # the real dtype of the parts
    like: fx.Node | None = None  # a real value made a Pair: its zeros are zeros_like(it)


def to_real(graph: fx.GraphModule) -> fx.GraphModule | None:
    """The graph with its complex values carried as real pairs, or None where it cannot be.

    Args:
        graph: a ``make_fx`` graph of aten operations with real inputs and real outputs, whose
            nodes carry ``meta["val"]`` (make_fx records it).

    Returns:
        A new GraphModule computing the same outputs in real arithmetic, or None if the graph
        uses an operation on complex values outside this module's vocabulary.
    """
    try:
        return _Lowering(graph).run()
    except Unsupported:
        return None


class _Lowering:
    def __init__(self, graph: fx.GraphModule):
        self.source = graph
        self.module = fx.GraphModule(torch.nn.Module(), fx.Graph())
        self.g = self.module.graph
        self.env: dict[fx.Node, Any] = {}
        self.constants = 0
        inputs = [n.meta.get("val") for n in graph.graph.nodes if n.op == "placeholder"]
        # where the constants it makes belong: the traced call's device (a student on CUDA traces there)
        self.device = next((v.device for v in inputs if isinstance(v, torch.Tensor)), torch.device("cpu"))

    def run(self) -> fx.GraphModule:
        for node in self.source.graph.nodes:
            if node.op == "placeholder":
                if _is_complex(node):
                    raise Unsupported("a complex input")
                self.env[node] = self.g.placeholder(node.name)
            elif node.op == "get_attr":
                self.env[node] = self._constant(getattr(self.source, node.target))
            elif node.op == "call_function":
                self.env[node] = self._call(node)
            elif node.op == "output":
                out = fx.map_arg(node.args[0], self._real)
                self.g.output(out)
            else:
                raise Unsupported(node.op)
        self.g.eliminate_dead_code()
        self.module.recompile()
        return self.module

    # ------------------------------------------------------------------ values
    def _constant(self, value: torch.Tensor) -> fx.Node | Pair:
        if not value.is_complex():
            return self._buffer(value)
        re, im = value.real.contiguous(), value.imag.contiguous()
        return Pair(self._buffer(re), None if not im.any() else self._buffer(im), tuple(value.shape), re.dtype)

    def _buffer(self, value: torch.Tensor) -> fx.Node:
        name = f"_constant_{self.constants}"
        self.constants += 1
        self.module.register_buffer(name, value)
        return self.g.get_attr(name)

    def _real(self, node: fx.Node) -> fx.Node:
        value = self.env[node]
        if isinstance(value, Pair):
            raise Unsupported("a complex output")
        return value

    def _part(self, pair: Pair, which: str) -> fx.Node:
        """A part as a node, zeros made where it is known to be zero."""
        part = getattr(pair, which)
        if part is None and pair.like is not None:
            part = self._op(aten.zeros_like.default, pair.like)
        elif part is None:
            part = self._buffer(torch.zeros(pair.shape, dtype=pair.dtype, device=self.device))
        return part

    def _op(self, target, *args, **kwargs) -> fx.Node:
        return self.g.call_function(target, args, kwargs)

    # ------------------------------------------------------------------ operations
    def _call(self, node: fx.Node) -> fx.Node | Pair | tuple:
        args = fx.map_arg(node.args, self.env.__getitem__)
        kwargs = fx.map_arg(node.kwargs, self.env.__getitem__)
        target = node.target
        complex_in = any(isinstance(a, Pair) for a in _flat(args) + _flat(kwargs))
        if not complex_in and not _is_complex(node):
            return self.g.call_function(target, args, kwargs)  # real arithmetic: as it was
        if target is operator.getitem:
            raise Unsupported("a tuple of complex values")
        if target == aten.view_as_real.default:
            x = args[0]
            return self._op(aten.stack.default, [self._part(x, "re"), self._part(x, "im")], -1)
        shape, dtype = _shape_dtype(node)
        if target == aten._to_copy.default:
            return self._to_complex(args[0], kwargs, shape, dtype)
        if target in STRUCTURAL:
            x, rest = args[0], args[1:]
            return Pair(*(None if p is None else self._op(target, p, *rest, **kwargs) for p in (x.re, x.im)),
                        shape, dtype)
        if target in (aten.stack.default, aten.cat.default):
            items = [_as_pair(i, dtype) for i in args[0]]
            parts = []
            for which in ("re", "im"):
                if all(getattr(i, which) is None for i in items):
                    parts.append(None)
                else:
                    parts.append(self._op(target, [self._part(i, which) for i in items], *args[1:]))
            return Pair(*parts, shape, dtype)
        if target == aten.zeros_like.default:
            return Pair(None, None, shape, dtype)
        if target == aten._conj.default:
            x = args[0]
            return Pair(x.re, None if x.im is None else self._op(aten.neg.default, x.im), shape, dtype)
        if target == aten.neg.default:
            x = args[0]
            return Pair(*(None if p is None else self._op(aten.neg.default, p) for p in (x.re, x.im)), shape, dtype)
        if target in (aten.add.Tensor, aten.sub.Tensor) and "alpha" not in kwargs:
            return self._sum(target, _as_pair(args[0], dtype), _as_pair(args[1], dtype), shape, dtype)
        if target in PRODUCTS:
            return self._product(PRODUCTS[target], _as_pair(args[0], dtype), _as_pair(args[1], dtype), shape, dtype)
        if target == aten.exp.default:
            return self._exp(args[0], shape, dtype)
        raise Unsupported(str(target))

    def _to_complex(self, x, kwargs, shape, dtype) -> Pair:
        if set(kwargs) - {"dtype"}:
            raise Unsupported("a conversion that moves or re-lays a tensor")
        if isinstance(x, Pair):
            cast = (lambda p: p) if x.dtype == dtype else (lambda p: self._op(aten._to_copy.default, p, dtype=dtype))
            return Pair(*(None if p is None else cast(p) for p in (x.re, x.im)), shape, dtype)
        if not _is_complex_dtype(kwargs.get("dtype")):
            raise Unsupported("a complex value made real by a copy")
        return Pair(self._op(aten._to_copy.default, x, dtype=dtype), None, shape, dtype)

    def _sum(self, target, a: Pair, b: Pair, shape, dtype) -> Pair:
        parts = []
        for x, y in ((a.re, b.re), (a.im, b.im)):
            if y is None:
                parts.append(x)
            elif x is None:
                parts.append(y if target == aten.add.Tensor else self._op(aten.neg.default, y))
            else:
                parts.append(self._op(target, x, y))
        if any(p is not None and not isinstance(p, fx.Node) for p in parts):
            raise Unsupported("a complex number added to a tensor with no such part")
        return Pair(*parts, shape, dtype)

    def _product(self, op, a: Pair, b: Pair, shape, dtype) -> Pair:
        """(ar + i ai)(br + i bi) = (ar br - ai bi) + i (ar bi + ai br), skipping zero parts."""
        def times(x, y):
            return None if x is None or y is None else self._op(op, x, y)

        re = self._sum(aten.sub.Tensor, Pair(times(a.re, b.re), None, shape, dtype),
                       Pair(times(a.im, b.im), None, shape, dtype), shape, dtype).re
        im = self._sum(aten.add.Tensor, Pair(times(a.re, b.im), None, shape, dtype),
                       Pair(times(a.im, b.re), None, shape, dtype), shape, dtype).re
        return Pair(re, im, shape, dtype)

    def _exp(self, x: Pair, shape, dtype) -> Pair:
        """exp(a + ib) = e^a (cos b + i sin b)."""
        if x.im is None:
            return Pair(self._op(aten.exp.default, x.re) if x.re is not None else self._buffer(
                torch.ones(shape, dtype=dtype, device=self.device)), None, shape, dtype)
        cos, sin = self._op(aten.cos.default, x.im), self._op(aten.sin.default, x.im)
        if x.re is None:
            return Pair(cos, sin, shape, dtype)
        scale = self._op(aten.exp.default, x.re)
        return Pair(self._op(aten.mul.Tensor, scale, cos), self._op(aten.mul.Tensor, scale, sin), shape, dtype)


def _as_pair(value: Any, dtype: torch.dtype) -> Pair:
    """An operand as a Pair: a real node or a Python number becomes one with no imaginary part."""
    if isinstance(value, Pair):
        return value
    if isinstance(value, fx.Node):
        return Pair(value, None, (), dtype, like=value)
    if isinstance(value, complex):
        return _ScalarPair(value.real or None, value.imag or None, (), dtype)
    if isinstance(value, (int, float)):
        return _ScalarPair(value or None, None, (), dtype)
    raise Unsupported(f"an operand {type(value).__name__}")


class _ScalarPair(Pair):
    """A Python number's parts (floats, not nodes): the products and sums take them as they are."""


def _flat(tree: Any) -> list:
    if isinstance(tree, (list, tuple)):
        return [x for t in tree for x in _flat(t)]
    if isinstance(tree, dict):
        return [x for t in tree.values() for x in _flat(t)]
    return [tree]


def _is_complex_dtype(dtype: Any) -> bool:
    return isinstance(dtype, torch.dtype) and dtype.is_complex


def _is_complex(node: fx.Node) -> bool:
    val = node.meta.get("val")
    return isinstance(val, torch.Tensor) and val.is_complex()


def _shape_dtype(node: fx.Node) -> tuple[tuple[int, ...], torch.dtype]:
    val = node.meta.get("val")
    if not isinstance(val, torch.Tensor):
        raise Unsupported("a node without a recorded value")
    if not val.is_complex():
        raise Unsupported("a complex input giving a real output")
    return tuple(val.shape), REAL_OF[val.dtype]
