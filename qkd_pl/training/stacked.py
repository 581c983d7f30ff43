"""Many students trained as one model: parameters stacked along a model axis, one step for all.

Why: a study is many students of one shape (seeds, and settings that change only the loss). At
4 qubits and batch 32 a lone student's step is mostly per-call overhead, so M students stepped
together cost little more than one (docs/explanation/performance.md's "Many students in one step" has the measured
ratios, from benchmarks/test_stacked_students.py). Each student keeps
everything that makes it itself: its initial weights, its batches in its own seeded order
(``EpochBatches``), its loss, its optimizer state (Adam and SGD act elementwise, so one optimizer
over stacked tensors is M independent ones), its validation, ``best.pt``, ``last.pt`` and
``metrics.json``, written through the same ``end_epoch`` as a lone fit. So its run folder is a
lone run's, and a lone ``fit`` resumes it. What differs from a lone run is the summation order
inside the batched kernels: outputs agree to float rounding, not bit for bit
(tests/training/test_stacked.py).

Stacking is refused (``NotStackable``, and the caller fits one by one) where it would not be the
same training: other settings than the seed, other numbers of rows, mixup or a teacher called
on every batch, modules that draw random numbers or update buffers while training (dropout,
batch norm), or a circuit without a traced graph.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.func import stack_module_state, vmap
from tqdm.auto import tqdm

from ..circuits.compiled import NotBatchable
from ..circuits.functional import functional_forward, structure
from ..config import TrainConfig
from ..errors import QkdError, first_line
from .compiled_step import STATEFUL
from .evaluate import accuracy
from .loop import EpochBatches, Loss, Rows, check_finite, end_epoch, epoch_row, new_sums, restore_schedule
from .optim import make_optimizer



class NotStackable(Exception):
    """These students cannot be trained as one (the message says why); fit them one by one."""


@dataclass
class Member:
    """One student of a stacked fit: what ``loop.fit`` takes for it alone.

    ``rng``: the global RNG state its lone run would store in ``last.pt`` (the state when its fit
    began; nothing in a stackable student draws from it while training).
    """

    model: nn.Module
    rows: Rows
    val: tuple[torch.Tensor, torch.Tensor]
    cfg: TrainConfig
    loss_fn: Loss
    run_dir: Path
    checkpoint_meta: dict[str, Any]
    rng: torch.Tensor
    resume_state: dict[str, Any] | None = None
    on_epoch: Callable[[dict[str, float]], None] | None = None
    start_best: dict[str, float] | None = None


def why_not_stackable(members: list[Member]) -> str | None:
    """None where ``members`` can train as one model, else the reason."""
    if len(members) < 2:
        return "one student"
    first = members[0]
    same = dataclasses.replace(first.cfg, seed=0)
    for m in members[1:]:
        if dataclasses.replace(m.cfg, seed=0) != same:
            return "their training settings differ beyond the seed"
        if len(m.rows) != len(first.rows) or m.rows.x.shape[1:] != first.rows.x.shape[1:]:
            return "their training rows differ in number or shape"
    if first.cfg.mixup > 0 or any(m.rows.teacher_fn is not None for m in members):
        return "mixup or a teacher called on every batch"
    shapes = _shapes(first.model)
    if len({id(m.model) for m in members}) < len(members):
        return "one module is given twice"
    for m in members:
        if type(m.model) is not type(first.model) or m.rows.x.dtype != first.rows.x.dtype:
            return "their classes or input types differ"
        if any(isinstance(module, STATEFUL) for module in m.model.modules()):
            return "a module draws random numbers or updates buffers while training (dropout, batch norm)"
        if _shapes(m.model) != shapes:
            return "their parameters differ in names or shapes"
        if not _equal(structure(m.model), structure(first.model)):
            return "their modules differ in kind or settings"
        if any(p.device.type != "cpu" for p in m.model.parameters()):
            return "a student is not on the CPU"
    epochs = {m.resume_state["epoch"] if m.resume_state else 0 for m in members}
    if len(epochs) > 1:
        return "they resume from different epochs"
    return None


def stack_key(member: Member) -> tuple:
    """What students must share to be stacked (``stack_groups`` splits by structure too;
    ``why_not_stackable`` checks the rest)."""
    return (repr(dataclasses.replace(member.cfg, seed=0)), len(member.rows), tuple(member.rows.x.shape[1:]),
            member.rows.x.dtype, type(member.model), tuple(_shapes(member.model)), member.resume_state["epoch"] if member.resume_state else 0)


def stack_groups(members: list[Member]) -> list[list[int]]:
    """The members' indices in groups that may stack: one ``stack_key``, then one structure
    (compared as ``why_not_stackable`` compares it, with ``==``: a structure may hold values that
    hash by identity), so students of two kinds behind one shape (a complex128 and a complex64
    circuit) form two groups that each stack rather than one that is refused."""
    by_key: dict[tuple, list[list[int]]] = {}
    structures = [structure(m.model) for m in members]
    for i, m in enumerate(members):
        groups = by_key.setdefault(stack_key(m), [])
        group = next((g for g in groups if _equal(structures[g[0]], structures[i])), None)
        if group is None:
            groups.append([i])
        else:
            group.append(i)
    return [g for groups in by_key.values() for g in groups]


def _equal(a: list, b: list) -> bool:
    """``a == b``, and False where comparing raises (a circuit closing over tensors of several
    values: their ``==`` has no single truth value), so such students train apart, never crash."""
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - any value a user's circuit closes over
        return False


def _shapes(model: nn.Module) -> list[tuple]:
    return [(n, tuple(t.shape), t.dtype, getattr(t, "requires_grad", False))
            for n, t in [*model.named_parameters(), *model.named_buffers()]]


class Stack:
    """The students' parameters stacked (``torch.func.stack_module_state``) and one batched forward.

    Args:
        models: modules of one structure; the first is the one whose forward (and traced
            circuit graphs) the batch runs through.
    """

    def __init__(self, models: list[nn.Module]):
        self.models = models
        self.params, self.buffers = stack_module_state(models)
        self.one = functional_forward(models[0])
        self.many = vmap(self.one)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(models, batch, ...) inputs -> (models, batch, classes) logits."""
        try:
            return self.many(self.params, self.buffers, x)
        except NotBatchable:  # a graph dropped from a layer's cache since (evaluation shapes): trace it again
            self.warm(x[0].detach())
            return self.many(self.params, self.buffers, x)

    def check(self, xs: list[torch.Tensor]) -> None:
        """Trace the circuits for these batch shapes, and refuse a batched forward that fails or differs
        from any student's own forward beyond float rounding (another structure behind the same
        parameter shapes, a batching rule the circuit's graph lacks, data-dependent control flow or
        random draws in a forward)."""
        for model in self.models:
            model.train()  # as they will step: a forward that depends on the mode is checked in it
        try:
            with torch.no_grad():
                for x in xs:
                    self.warm(x)
                    many = self(x.expand(len(self.models), *x.shape))
                    for j, model in enumerate(self.models):
                        own = model(x)
                        if own.shape != many[j].shape or not torch.allclose(many[j], own, rtol=1e-5, atol=1e-6):
                            raise NotStackable(f"student {j}'s own forward differs from the batched one (another "
                                               f"structure behind the same parameter shapes?)")
        except NotStackable:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever vmap cannot run is run one by one
            raise NotStackable(f"the batched forward fails ({type(exc).__name__}: {first_line(exc)})") from None

    def match_gradient_layout(self, x: torch.Tensor) -> list[str]:
        """Lay each stacked parameter out in memory as the batched backward computes its gradient.

        Why: vmap's rule for a linear layer's weight gradient yields the stacked (models, in, out)
        product viewed as (models, out, in), and ``.grad`` must have its parameter's layout, so
        every step copied the transposed gradient into place: for CIFAR-10's FC reduction (5 x 256
        x 3,072) that copy took longer than the matrix product itself. The values do not change,
        only where they sit; the forward's product then reads the weights in the other order, so
        its sums may round otherwise in the last bit (stacked students already agree with lone ones
        to float rounding, not bit for bit). A gradient that is not a dense permutation of its
        shape leaves its parameter as it is. Returns the names relaid.

        Raises:
            NotStackable: the batched forward or backward fails (nothing is changed).
        """
        names = [n for n, p in self.params.items() if p.requires_grad]
        if not names:
            return []
        rng = torch.get_rng_state()  # a forward that draws would otherwise move the students' stream
        try:
            logits = self(x.expand(len(self.models), *x.shape))
            weights = torch.randn(logits.shape, generator=torch.Generator().manual_seed(0), dtype=logits.dtype)
            grads = torch.autograd.grad((logits * weights).sum(), [self.params[n] for n in names], allow_unused=True)
        except QkdError:
            raise
        except Exception as exc:  # noqa: BLE001 - a backward vmap cannot batch: they train one by one
            raise NotStackable(f"the batched forward or backward fails ({type(exc).__name__}: {first_line(exc)})") from None
        finally:
            torch.set_rng_state(rng)
        relaid = []
        for name, g in zip(names, grads):
            p = self.params[name]
            if g is None or g.shape != p.shape or g.stride() == p.stride() or not _dense(g):
                continue
            with torch.no_grad():
                q = torch.empty_strided(p.shape, g.stride(), dtype=p.dtype, device=p.device).copy_(p)
            self.params[name] = q.requires_grad_(True)
            relaid.append(name)
        return relaid

    def warm(self, x: torch.Tensor) -> None:
        """Calls enough for the first student's circuits to have traced graphs for ``x``'s shape."""
        with torch.no_grad():
            for _ in range(3):  # compiled.TRACE_AFTER calls, then the graph exists
                self.models[0](x)

    def unstack_into_models(self) -> None:
        with torch.no_grad():
            for j, model in enumerate(self.models):
                for name, t in [*model.named_parameters(), *model.named_buffers()]:
                    t.copy_((self.params.get(name) if name in self.params else self.buffers[name])[j])


def _dense(t: torch.Tensor) -> bool:
    """Its elements fill its storage without gaps or overlap, in some order of its dimensions."""
    expected = 1
    for d in sorted(range(t.ndim), key=t.stride):
        if t.shape[d] == 1:
            continue
        if t.stride(d) != expected:
            return False
        expected *= t.shape[d]
    return True


def fit_stacked(members: list[Member], progress: bool = True) -> list[dict[str, Any]]:
    """Train ``members`` as one model; each ends as ``loop.fit`` leaves a lone student.

    Args:
        members: the students, their rows, validation data, settings and run folders.
        progress: progress bars and per-epoch lines.

    Returns:
        Each student's ``{"history", "best"}``, in order.

    Raises:
        NotStackable: they cannot train as one (``why_not_stackable``, or their circuits have no
            graph that takes a batch of students); nothing has been written.
    """
    why = why_not_stackable(members)
    if why:
        raise NotStackable(why)
    cfg, n = members[0].cfg, len(members[0].rows)
    histories, bests, start = [], [], 1
    for m in members:
        best = dict(m.start_best) if m.start_best is not None else {"val_accuracy": -1.0, "epoch": 0}
        history = []
        if m.resume_state is not None:
            m.model.load_state_dict(m.resume_state["state_dict"])
            history, best, start = list(m.resume_state["history"]), dict(m.resume_state["best"]), \
                m.resume_state["epoch"] + 1
        histories.append(history)
        bests.append(best)
    stack = Stack([m.model for m in members])
    last = n % cfg.batch_size or cfg.batch_size
    x0 = members[0].rows.x
    stack.check([x0[:cfg.batch_size]] + ([x0[:last]] if last != min(cfg.batch_size, n) else []))
    stack.match_gradient_layout(x0[:cfg.batch_size])
    params = list(stack.params.values())
    optimizer, scheduler = make_optimizer(params, cfg, steps_per_epoch=-(-n // cfg.batch_size))
    if start > 1:
        _restore(optimizer, params, scheduler, [m.resume_state for m in members], members[0].run_dir)
    for epoch in range(start, cfg.epochs + 1):
        t0 = time.perf_counter()
        try:
            sums = _train_epoch(stack, members, optimizer, scheduler, epoch, progress, first=epoch == start)
        except (QkdError, NotStackable):
            raise
        except Exception as exc:  # noqa: BLE001 - whatever the batched step cannot run
            text = f"the batched step fails ({type(exc).__name__}: {first_line(exc, 160)})"
            if epoch == start:  # nothing written yet, the modules untouched: fit them one by one
                raise NotStackable(text) from None
            raise QkdError(f"{text} in epoch {epoch}; {members[0].run_dir.parent} holds the {epoch - 1} stacked "
                           f"epochs before it: continue these students one by one (--no-stack, or stack=False)"
                           ) from None
        stack.unstack_into_models()
        share = (time.perf_counter() - t0) / len(members)  # each student's part of the step time
        state = optimizer.state_dict()
        for j, m in enumerate(members):
            t_eval = time.perf_counter()
            score = accuracy(m.model, *m.val)
            row = epoch_row(epoch, sums[j], m.rows, score, t_eval - share, share)
            bests[j] = end_epoch(m.model, row, histories[j], bests[j], m.run_dir, m.checkpoint_meta,
                                 _member_state(state, j),
                                 scheduler.state_dict() if scheduler else None, m.rng, m.on_epoch,
                                 progress and j == 0)
    return [{"history": h, "best": b} for h, b in zip(histories, bests)]


def _train_epoch(stack: Stack, members: list[Member], optimizer, scheduler, epoch: int,
                 progress: bool, first: bool) -> list[dict[str, float]]:
    for m in members:
        m.model.train()
    epochs = [EpochBatches(m.rows, m.cfg, epoch) for m in members]
    sums = [new_sums() for _ in members]
    cfg = members[0].cfg
    bar = tqdm(zip(*epochs), total=len(epochs[0]), desc=f"epoch {epoch}/{cfg.epochs} ({len(members)} students)",
               unit="batch", leave=False, disable=None if progress else True)
    rng = torch.get_rng_state()  # a lone student's draws would be its own: stacked, they would mix
    for i, batches in enumerate(bar):
        logits = stack(torch.stack([b.x for b in batches]))
        losses = []
        for j, (b, m) in enumerate(zip(batches, members)):
            loss, parts = b.loss(m.loss_fn, logits[j])
            check_finite(loss, epoch, i, m.run_dir)
            losses.append((loss, parts))
        optimizer.zero_grad(set_to_none=True)
        torch.stack([loss for loss, _ in losses]).sum().backward()  # each student's gradient is its own loss's
        if not torch.equal(rng, torch.get_rng_state()):
            raise _drew(first, epoch, members)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        for j, (b, (loss, parts)) in enumerate(zip(batches, losses)):
            b.add_to(sums[j], loss, parts, logits[j].detach())
    return sums


def _drew(first: bool, epoch: int, members: list[Member]) -> Exception:
    """A step drew random numbers (a loss or module that samples): stacked students would share one
    stream where lone ones have their own. In the fit's first epoch nothing is written yet, so they
    are fitted one by one; later, the epochs before (which drew nothing) are kept and the fit stops."""
    why = "a student's forward or loss draws random numbers while training"
    if first:
        return NotStackable(why)
    return QkdError(f"{why} (from epoch {epoch}); {members[0].run_dir.parent} holds the {epoch - 1} epochs before, "
                    f"which drew none: continue these students one by one (--no-stack, or stack=False)")


def _member_state(state: dict[str, Any], j: int) -> dict[str, Any]:
    """Student ``j``'s optimizer state, as its lone optimizer's ``state_dict`` would be."""
    return {"state": {i: {k: v if k == "step" else v[j].clone(memory_format=torch.contiguous_format)
                          for k, v in s.items()}
                      for i, s in state["state"].items()},
            "param_groups": state["param_groups"]}


def _restore(optimizer, params: list[torch.Tensor], scheduler, states: list[dict[str, Any]], run_dir: Path) -> None:
    """The stacked optimizer and schedule from the students' ``last.pt`` (all at the same epoch),
    each state tensor laid out as its stacked parameter (``Stack.match_gradient_layout``), so the
    optimizer's elementwise steps do not mix layouts."""
    first = states[0]["optimizer"]

    def stacked_like(i: int, k: str) -> torch.Tensor:
        values = torch.stack([s["optimizer"]["state"][i][k] for s in states])
        return torch.empty_like(params[i], dtype=values.dtype).copy_(values)

    stacked = {"state": {i: {k: v if k == "step" else stacked_like(i, k) for k, v in first["state"][i].items()}
                         for i in first["state"]},
               "param_groups": first["param_groups"]}
    optimizer.load_state_dict(stacked)
    restore_schedule(scheduler, states[0], run_dir)
