"""Click options generated from the configuration dataclasses, and the dataclasses built back.

The fields of ``qkd_pl.config`` carry their default, help, range and choices (or the
registry that holds the choices); every command that takes a configuration section asks for
its options here, so a field added to a dataclass is on the command line, with its help,
without a second definition to drift from the first.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import click

from ..config import field_kind
from ..errors import QkdError
from .catalog import Catalog


class _Parsed(click.ParamType):
    """Text read by a field's own parser (``--classes 0-7``); its QkdError becomes a usage error."""

    def __init__(self, parse: Callable[[str], Any], metavar: str | None):
        self.parse, self.name = parse, metavar or "TEXT"

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        try:
            return self.parse(value)
        except QkdError as exc:
            self.fail(str(exc), param, ctx)


USER_OWN = "module.path:name"


class RegistryChoice(click.Choice):
    """A registry's names, also taking its records' aliases (``--dataset fashion``), a family's
    members (``imagefolder:PATH``) and, where the registry accepts them, a user's own components
    by import path (``--student mypkg.students:make_student``, imported when validated)."""

    def __init__(self, kind: str):
        # The catalog, not the registry: building a command's options imports no component.
        self.registry = Catalog(kind)
        self.imports = self.registry.accepts_imports
        super().__init__(list(self.registry))

    def convert(self, value, param, ctx):
        if isinstance(value, str) and value not in self.choices:
            try:
                value = self.registry.canonical(value)
            except QkdError:
                pass  # click's own message lists the choices
            if value not in self.choices and value in self.registry:
                return value  # imagefolder:PATH, module.path:name, a plugin's name
        return super().convert(value, param, ctx)

    def get_metavar(self, param, ctx):
        metavar = super().get_metavar(param, ctx)
        if self.imports and metavar and metavar[0] + metavar[-1] == "[]":
            return f"{metavar[:-1]}|{USER_OWN}]"
        return metavar

    def get_invalid_choice_message(self, value, ctx) -> str:
        own = f" Or your own as {USER_OWN}." if self.imports else ""
        return super().get_invalid_choice_message(value, ctx) + own

    def help(self) -> str:
        """The records' help, and once (not per record) that a user's own may be named."""
        return self.registry.help() + (f"; or your own as {USER_OWN}" if self.imports else "")


def _param_type(f: dataclasses.Field) -> tuple[Any, str]:
    """The click type of a field and the help it adds (a registry's records)."""
    meta, kind = f.metadata, field_kind(f)
    if meta.get("registry"):
        choice = RegistryChoice(meta["registry"])
        return choice, " " + choice.help() + "."
    if meta.get("choices"):
        return click.Choice(list(meta["choices"])), ""
    if meta.get("parse"):
        return _Parsed(meta["parse"], meta.get("metavar")), ""
    lo, hi = meta.get("min"), meta.get("max")
    bounds = dict(min=lo, max=hi, min_open=meta.get("min_open", False), max_open=meta.get("max_open", False))
    if kind == "int":
        return (click.IntRange(**bounds) if lo is not None or hi is not None else click.INT), ""
    if kind == "float":
        return (click.FloatRange(**bounds) if lo is not None or hi is not None else click.FLOAT), ""
    return click.STRING, ""


def config_options(cls: type, section: str, *, only: tuple[str, ...] | None = None, exclude: tuple[str, ...] = (),
                   defaults: dict[str, Any] | None = None, flag_prefix: str = "",
                   help_prefix: str = "") -> Callable[[Callable], Callable]:
    """A decorator adding one option per field of ``cls`` (those with ``cli`` metadata).

    Args:
        cls: a configuration dataclass (``StudentConfig``).
        section: names the options' parameters ``<section>__<field>``, so two sections of one
            class (a teacher's and a student's ``TrainConfig``) can sit on one command.
        only, exclude: which fields.
        defaults: per-command defaults where a command's preset differs from the dataclass
            (a teacher trains with lr 1e-3).
        flag_prefix: ``"teacher-"`` turns ``--epochs`` into ``--teacher-epochs``.
        help_prefix: put before each help text (``"Teacher: "``).

    Returns:
        A click decorator; read the values back with ``from_options``.
    """

    def decorate(command: Callable) -> Callable:
        for f in reversed(dataclasses.fields(cls)):
            meta = f.metadata
            if not meta.get("cli") or f.name in exclude or (only is not None and f.name not in only):
                continue
            default = (defaults or {}).get(f.name, f.default)
            flag = "--" + flag_prefix + (meta.get("flag") or "--" + f.name.replace("_", "-"))[2:]
            param = f"{section}__{f.name}"
            if field_kind(f) == "bool":
                command = click.option(flag, param, is_flag=True, default=default,
                                       help=help_prefix + meta["help"])(command)
                continue
            kind, extra = _param_type(f)
            command = click.option(flag, param, type=kind, default=default, show_default=default is not None,
                                   metavar=meta.get("metavar"), help=help_prefix + meta["help"] + extra)(command)
        return command

    return decorate


def from_options(cls: type, section: str, values: dict[str, Any], **fixed: Any) -> Any:
    """Build ``cls`` from the options ``config_options`` added (taking them out of ``values``);
    fields without an option take ``fixed`` values or the dataclass defaults."""
    prefix = f"{section}__"
    kwargs = {key[len(prefix):]: values.pop(key) for key in list(values) if key.startswith(prefix)}
    return cls(**kwargs, **fixed)


def paper_kd_option(command: Callable) -> Callable:
    """``--paper-kd``: the paper's distillation in one flag (the defaults are the study's)."""
    return click.option("--paper-kd", "paper_kd", is_flag=True,
                        help="The paper's distillation: --kd-loss hinton --temperature 3 --alpha 0.9 (qkd-pl's "
                             "defaults before the distillation study, in the documentation's results).")(command)


def distill_from_options(values: dict[str, Any]) -> Any:
    """The DistillConfig of a command's options, with ``--paper-kd`` applied (refused beside an
    explicit objective, temperature or alpha, which it would overrule)."""
    from ..config import PAPER_DISTILL, DistillConfig

    paper = values.pop("paper_kd", False)
    cfg = from_options(DistillConfig, "distill", values)
    if not paper:
        return cfg
    given = [f"--{k.replace('_', '-')}" for k in PAPER_DISTILL if getattr(cfg, k) != getattr(DistillConfig(), k)]
    if given:
        raise QkdError(f"--paper-kd sets --kd-loss, --temperature and --alpha to the paper's; leave out "
                       f"{', '.join(given)} or --paper-kd")
    return dataclasses.replace(cfg, **PAPER_DISTILL)
