"""What every distillation objective shares, and how one is named, built and configured.

An objective is a small dataclass: its fields are its hyperparameters (``temperature`` and
``alpha`` for all, ``beta`` for DKD ...), so it is built with exactly the numbers it uses, and a
user's own objective needs no field in ``DistillConfig`` and no edit here: a subclass with
``@register_objective``, or ``--kd-loss module.path:Class``, and ``--kd-params beta=2``.

The built-ins' hyperparameters other than T and alpha stay flat fields of ``DistillConfig``
(``dkd_beta``, ...), because saved runs, grids and tuning searches name them so; each built-in's
``config_fields`` says which field holds which of its hyperparameters.
"""

from __future__ import annotations

import dataclasses
import inspect
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, dataclass_transform

import torch
from torch.nn import functional as F

from ..config import DistillConfig
from ..errors import QkdError
from ..registry import Registry

_DEFAULTS = DistillConfig()
# Hyperparameters every objective has; they stay DistillConfig's own options (--temperature, --alpha).
SHARED = ("temperature", "alpha")


@dataclass
class Objective(ABC):
    """Cross-entropy on the labelled rows plus ``alpha T^2`` times a teacher term.

    Subclasses supply the teacher term (and, if the CE is not weighted 1, ``ce_weight``); the
    row masks, the per-image normalization and the baseline (no teacher: CE alone) live here
    once, so every objective counts an image the same way.

    Args:
        temperature: the softmax temperature T (default: ``DistillConfig``'s).
        alpha: the weight of the teacher term (default: ``DistillConfig``'s).

    Attributes:
        name: the ``--kd-loss`` name.
        help: one line for ``--help``.
        config_fields: own hyperparameter -> the ``DistillConfig`` field that stores it (the
            built-ins': ``{"beta": "dkd_beta"}``); a user's objective leaves it empty and reads
            its hyperparameters from ``--kd-params``.

    These are class attributes, set without an annotation, so they are not hyperparameters.

    **Example**

    >>> objective = KD("dkd", temperature=4.0, alpha=0.5, beta=2.0)
    >>> loss, parts = objective(student_logits, teacher_logits, labels)
    >>> sorted(parts)
    ['ce', 'kd']
    """

    temperature: float = _DEFAULTS.temperature
    alpha: float = _DEFAULTS.alpha

    name: ClassVar[str]
    help: ClassVar[str] = ""
    config_fields: ClassVar[dict[str, str]] = {}

    @abstractmethod
    def teacher_term(self, s: torch.Tensor, t: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The teacher term summed over the rows given, before ``alpha T^2`` and the batch size.

        A sum, not a mean, so that a batch mixing labelled and transfer rows weights each image alike.

        Args:
            s: (N, C) the student's logits of the rows the teacher speaks for.
            t: (N, C) the teacher's logits of those rows.
            target: (N,) their labels; the teacher's top class on a transfer row.

        Returns:
            A scalar tensor.
        """

    def ce_weight(self) -> float:
        """The weight of the cross-entropy (1; Hinton et al.'s convex combination: 1 - alpha)."""
        return 1.0

    def __call__(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor | None, labels: torch.Tensor,
                 hard: torch.Tensor | None = None, soft: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, dict[str, float]]:
        """A batch's loss: ``ce_weight * CE + alpha T^2 * teacher term``, each summed over its
        rows and divided by the batch size.

        Args:
            student_logits: (B, C).
            teacher_logits: (B, C), or None for a baseline (cross-entropy alone).
            labels: (B,) the true label of a labelled row, the teacher's top class of a transfer row.
            hard: (B,) bool, the rows whose label enters the cross-entropy (default all).
            soft: (B,) bool, the rows in the teacher term (default all, when there is a teacher).

        Returns:
            The loss (a scalar tensor) and its parts ``{"ce": ..., "kd": ...}`` per image, as
            floats for logging.
        """
        loss, ce, kd = self.terms(student_logits, teacher_logits, labels, hard, soft)
        return loss, {"ce": ce.item(), "kd": kd.item()}

    def terms(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor | None, labels: torch.Tensor,
              hard: torch.Tensor | None = None, soft: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(loss, ce, kd)`` as tensors: what ``__call__`` returns, before its parts become floats.

        Why apart: a compiled training step (training/compiled_step.py) keeps the whole batch in
        tensors; a ``.item()`` would read a value back into Python in the middle of it. Without
        masks no branch here depends on a tensor's value, so one trace serves every batch.
        """
        ce = cross_entropy(student_logits, labels, hard)
        if teacher_logits is None:
            return ce, ce, ce.new_zeros(())
        b = len(student_logits)
        if soft is None:
            kd = self.teacher_term(student_logits, teacher_logits, labels) / b
        elif soft.any():
            kd = self.teacher_term(student_logits[soft], teacher_logits[soft], labels[soft]) / b
        else:
            kd = student_logits.new_zeros(())
        loss = self.ce_weight() * ce + self.alpha * self.temperature ** 2 * kd
        return loss, ce, kd


def cross_entropy(student_logits: torch.Tensor, labels: torch.Tensor, hard: torch.Tensor | None) -> torch.Tensor:
    """CE summed over the ``hard`` rows (default all) over the batch size: a transfer row adds nothing."""
    b = len(student_logits)
    if hard is None:
        return F.cross_entropy(student_logits, labels, reduction="sum") / b
    return (F.cross_entropy(student_logits[hard], labels[hard], reduction="sum") / b if hard.any()
            else student_logits.new_zeros(()))


def hyperparameters(cls: type[Objective]) -> tuple[str, ...]:
    """The keyword arguments an objective class is built with: its dataclass fields."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.init)


def _as_record(cls: Any, where: str, default_name: str | None = None) -> type[Objective]:
    """``cls`` checked and completed as a registry record: an Objective subclass, a dataclass of
    its own (so annotated attributes are hyperparameters even without ``@dataclass``), named."""
    if not (isinstance(cls, type) and issubclass(cls, Objective)):
        raise QkdError(f"{where}: expected a subclass of qkd_pl.losses.Objective, got {_describe(cls)}")
    if inspect.isabstract(cls):
        raise QkdError(f"{where}: {cls.__qualname__} defines no teacher_term(self, s, t, target)")
    own = vars(cls)
    if "name" not in own:  # an inherited name would pass the class off as its parent
        if default_name is None:
            raise QkdError(f"{where}: {cls.__qualname__} sets no name (name = \"my-loss\" in its class body)")
        cls.name = default_name
    if not own.get("help"):  # an inherited help would describe the parent
        cls.help = (own.get("__doc__") or "").strip().split("\n")[0]
    if "__dataclass_fields__" not in own:
        try:
            dataclass(cls)
        except TypeError as exc:  # a hyperparameter without a default, after T and alpha's
            raise QkdError(f"{where}: {cls.__qualname__}: {exc} (give every hyperparameter a default)") from None
    fields = hyperparameters(cls)
    annotated = [a for a in ("name", "help", "config_fields") if a in fields]
    if annotated:
        raise QkdError(f"{where}: {cls.__qualname__} annotates {', '.join(annotated)}; set them without an "
                       f"annotation (class attributes, not hyperparameters)")
    bad = {k: v for k, v in cls.config_fields.items() if k not in fields or not hasattr(_DEFAULTS, v)}
    if bad:
        raise QkdError(f"{where}: {cls.__qualname__}.config_fields {bad} names no hyperparameter of its own or "
                       f"no DistillConfig field")
    return cls


def _describe(obj: Any) -> str:
    kind = "class" if isinstance(obj, type) else type(obj).__name__
    return f"{kind} {getattr(obj, '__qualname__', None) or repr(obj)[:60]}"


def _import_adapter(path: str, obj: Any) -> type[Objective]:
    return _as_record(obj, f"--kd-loss {path}", default_name=path)


OBJECTIVES: Registry[type[Objective]] = Registry("objective", "--kd-loss")
OBJECTIVES.accept_imports(_import_adapter)


@dataclass_transform()  # type checkers: a registered class's annotated attributes are __init__'s
def register_objective(cls: type[Objective]) -> type[Objective]:
    """Make an Objective subclass a ``--kd-loss`` choice under its ``name``.

    Used bare, as a class decorator; the class body sets ``name`` and ``help`` (without an
    annotation). The class becomes a dataclass if it is not one already, so its annotated
    attributes with defaults are its hyperparameters, set by ``KD(...)`` or ``--kd-params``.

    Args:
        cls: a concrete subclass of ``Objective``.

    Returns:
        ``cls`` itself, now registered in ``OBJECTIVES``.

    Raises:
        QkdError: ``cls`` is no concrete Objective subclass, or sets no name.
        ValueError: another objective is registered under that name.

    **Example**

    .. code-block:: python

        @register_objective
        class MSE(Objective):
            name = "mse"
            help = "CE + alpha T^2 gamma * squared logit distance"
            gamma: float = 1.0

            def teacher_term(self, s, t, target):
                return self.gamma * ((s - t) ** 2).sum()

    >>> KD("mse", gamma=0.5).gamma
    0.5
    """
    return OBJECTIVES.add(_as_record(cls, "register_objective"))


def _check_names(given: Mapping[str, Any], valid: tuple[str, ...], what: str) -> None:
    unknown = [k for k in given if k not in valid]
    if unknown:
        raise QkdError(f"{what}: unknown {', '.join(map(repr, unknown))}; the valid ones: "
                       f"{', '.join(valid) or 'none'}")


def KD(name_or_class: str | type[Objective], **hyperparameters_: float) -> Objective:
    """An objective with the hyperparameters given and the defaults for the rest.

    The Python counterpart of ``--kd-loss NAME`` with its options, for scripts and notebooks
    that build a loss without a ``DistillConfig``.

    Args:
        name_or_class: a registered name (``"dkd"``), an import path
            (``"mypkg.losses:MyLoss"``) or an Objective subclass.
        **hyperparameters_: ``temperature``, ``alpha`` and the objective's own.

    Returns:
        The objective, called as ``objective(student_logits, teacher_logits, labels)``.

    Raises:
        QkdError: an unknown name or hyperparameter, in one line with the valid ones.

    **Example**

    >>> KD("dkd", temperature=4, alpha=0.5, beta=2.0)
    DKD(temperature=4, alpha=0.5, beta=2.0)
    """
    if isinstance(name_or_class, type):
        cls = _as_record(name_or_class, "KD", f"{name_or_class.__module__}:{name_or_class.__qualname__}")
    else:
        cls = OBJECTIVES[name_or_class]
    _check_names(hyperparameters_, hyperparameters(cls), f"hyperparameters of objective {cls.name}")
    return cls(**hyperparameters_)


def objective_from_config(cfg: DistillConfig) -> Objective:
    """The objective a run's configuration names, with that configuration's hyperparameters.

    Each objective receives only its own: T, alpha, the ``DistillConfig`` fields its
    ``config_fields`` name, and ``cfg.kd_params`` (a user's objective's own).

    Args:
        cfg: ``kd_loss``, ``temperature``, ``alpha``, the built-ins' fields and ``kd_params``.

    Returns:
        The objective.

    Raises:
        QkdError: an unknown objective, or a ``kd_params`` key that is not one of its own
            hyperparameters (T, alpha and the built-ins' are their own options).

    **Example**

    >>> objective_from_config(DistillConfig(kd_loss="dkd", dkd_beta=2.0))
    DKD(temperature=1.041, alpha=0.862, beta=2.0)
    """
    cls = OBJECTIVES[cfg.kd_loss]
    given = cfg.kd_params or {}
    if not isinstance(given, Mapping):
        raise QkdError(f"distill.kd_params = {given!r} is not a mapping NAME -> value")
    fields = {**{k: k for k in SHARED}, **cls.config_fields}  # own name -> the DistillConfig field holding it
    elsewhere = [f"{k} is {_flag(fields[k])}" for k in given if k in fields]
    if elsewhere:  # two places for one number would give one run two names
        raise QkdError(f"--kd-params of {cls.name}: {'; '.join(elsewhere)}, not a --kd-params entry")
    _check_names(given, tuple(h for h in hyperparameters(cls) if h not in fields), f"--kd-params of {cls.name}")
    return cls(**{own: getattr(cfg, field) for own, field in fields.items()}, **given)


def _flag(field: str) -> str:
    """The command-line option of a DistillConfig field (``dkd_beta`` -> ``--dkd-beta``)."""
    meta = next(f.metadata for f in dataclasses.fields(DistillConfig) if f.name == field)
    return meta.get("flag") or "--" + field.replace("_", "-")


@dataclass(frozen=True)
class FunctionLoss:
    """A plain function of the batch as an objective: the whole loss is the function's.

    Its parts are ``{"ce": nan, "kd": loss}``: the function's CE, if any, is not measured
    apart, and NaN (unlike 0) cannot be mistaken for a perfectly fitted label in a log.
    """

    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

    def __call__(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor | None, labels: torch.Tensor,
                 hard: torch.Tensor | None = None, soft: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, dict[str, float]]:
        if teacher_logits is None:  # a baseline is cross-entropy, whatever the objective
            ce = cross_entropy(student_logits, labels, hard)
            return ce, {"ce": ce.item(), "kd": 0.0}
        loss = self.fn(student_logits, teacher_logits, labels)
        if not (isinstance(loss, torch.Tensor) and loss.dim() == 0):
            raise QkdError(f"the loss function {_describe(self.fn)} returned {_describe(loss)}, not a scalar tensor")
        return loss, {"ce": float("nan"), "kd": loss.item()}


def as_objective(loss: Objective | str | type[Objective] | Callable) -> Objective | FunctionLoss:
    """Whatever names a loss, as a callable ``(student_logits, teacher_logits, labels, hard=None,
    soft=None) -> (loss, {"ce", "kd"})``.

    Lets a Python caller pass an objective, its name, or a function of its own wherever a loss
    is taken.

    Args:
        loss: an ``Objective``, a registered name or import path (built with its defaults), an
            Objective subclass, or a plain function ``fn(student_logits, teacher_logits, labels)
            -> scalar tensor``. The function sees every row of the batch (no masks); on a row of
            a transfer set, ``labels`` holds the teacher's top class. Without a teacher
            (a baseline) the loss is the cross-entropy and the function is not called. Its
            parts are ``{"ce": nan, "kd": loss}``: its CE is not measured apart.

    Returns:
        ``loss`` itself, the objective it names, or the function wrapped.

    Raises:
        QkdError: anything else, or a function that does not take three arguments.

    **Example**

    >>> mse = as_objective(lambda s, t, y: ((s - t) ** 2).mean())
    >>> loss, parts = mse(student_logits, teacher_logits, labels)
    """
    if isinstance(loss, Objective):
        return loss
    if isinstance(loss, (str, type)):
        return KD(loss)
    if callable(loss):
        try:
            inspect.signature(loss).bind(None, None, None)
        except TypeError:
            raise QkdError(f"the loss function {_describe(loss)} must take (student_logits, teacher_logits, "
                           f"labels)") from None
        except ValueError:  # no signature to read (a builtin): trust it
            pass
        return FunctionLoss(loss)
    raise QkdError(f"a loss is an Objective, an objective's name or a function (student_logits, teacher_logits, "
                   f"labels) -> loss; got {_describe(loss)}")
