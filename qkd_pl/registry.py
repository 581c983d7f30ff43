"""One registry per kind of component (dataset, reducer, encoding, ansatz, teacher, ...).

A component is a small frozen dataclass record carrying what the rest of the code needs to
know about it (its help text, how many features it takes, whether it has weights ...), and
a registry maps names to records. The command line's choices and help, the configuration
validation, the memory estimate and the classical control all read the registries, so a new
component is one module plus one ``REGISTRY.add(...)`` line, and an unknown name is refused in
one place with the list of valid ones.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Iterator, Mapping
from typing import Any, Callable, Generic, Protocol, TypeVar

from .errors import QkdError, first_line


class Record(Protocol):
    name: str
    help: str


R = TypeVar("R", bound=Record)


class Registry(Mapping[str, R], Generic[R]):
    """Name -> record, in the order of registration (the order ``--help`` lists them in).

    Args:
        kind: what the components are, for messages ("encoding").
        option: the command-line option that names one ("--encoding").
    """

    def __init__(self, kind: str, option: str):
        self.kind, self.option = kind, option
        self._records: dict[str, R] = {}
        self._adapt: Callable[[str, Any], R] | None = None
        self._imported: dict[str, R] = {}

    def accept_imports(self, adapt: Callable[[str, Any], R]) -> None:
        """Let ``module.path:attribute`` name a user's own component: ``adapt(path, obj)`` turns the
        imported object into a record, or raises QkdError saying what was expected."""
        self._adapt = adapt

    def add(self, record: R) -> R:
        """Register ``record`` under ``record.name``; a second record of one name is a bug."""
        if record.name in self._records:
            raise ValueError(f"{self.kind} {record.name!r} is registered twice")
        self._records[record.name] = record
        return record

    def __getitem__(self, name: str) -> R:
        record = self._records.get(name) if isinstance(name, str) else None
        if record is not None:
            return record
        family = self._family(name)
        if family is None:
            if self._adapt is not None and is_import_path(name):
                return self._import(name)
            if isinstance(name, str) and import_plugins():  # a user's component registered on import
                return self[name]
            raise QkdError(f"unknown {self.option} {name!r}; choose one of: {', '.join(self._records)}"
                           f"{self.own_hint()}")
        resolve = getattr(family, "resolve", None)
        return resolve(name) if resolve else family

    def _import(self, path: str) -> R:
        if path not in self._imported:
            self._imported[path] = self._adapt(path, import_object(path, self.option))
        return self._imported[path]

    def _family(self, name: object) -> R | None:
        """The record of a family (``getattr(record, "family")``) whose ``prefix:`` starts ``name``."""
        if not isinstance(name, str) or ":" not in name:
            return None
        record = self._records.get(name.split(":", 1)[0].lower())
        return record if record is not None and getattr(record, "family", False) else None

    def get(self, name, default=None):
        """As Mapping.get (which expects KeyError, where an unknown name raises QkdError here)."""
        return self[name] if name in self else default

    def __iter__(self) -> Iterator[str]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, name: object) -> bool:
        if (isinstance(name, str) and name in self._records) or self._family(name) is not None or (
                self.accepts_imports and is_import_path(name)):
            return True
        return isinstance(name, str) and import_plugins() and name in self._records

    @property
    def accepts_imports(self) -> bool:
        """Whether a user's own component may be named here (``module.path:name``, ``$QKD_PLUGINS``)."""
        return self._adapt is not None

    def own_hint(self) -> str:
        """What a refusal adds where a user's own component may be named."""
        return ("; or your own as module.path:name, or by the name a module in $QKD_PLUGINS registers"
                if self.accepts_imports else "")

    def canonical(self, name: str) -> str:
        """The registered name for ``name`` or one of a record's ``aliases`` (any case), or a family
        member's ``family:rest``; else QkdError."""
        family = self._family(name)
        if family is not None:  # a family member keeps what follows its prefix as given (a path)
            return f"{family.name}:{name.split(':', 1)[1]}"
        if self._adapt is not None and is_import_path(name):
            return name.strip()
        key = name.strip().lower() if isinstance(name, str) else name
        found = self._named(key)
        if found is None and isinstance(name, str) and import_plugins():  # a plugin's record or alias
            found = self._named(key)
        return found if found is not None else self[name].name  # raises, listing the names

    def _named(self, key: object) -> str | None:
        """The name of the record called ``key`` or aliased so (``key`` already lower-case)."""
        for record in self._records.values():
            if key == record.name or key in getattr(record, "aliases", ()):
                return record.name
        return None

    def help(self) -> str:
        """``"name: help; name: help"`` for an option's ``--help``."""
        return "; ".join(f"{r.name}: {r.help}" for r in self._records.values())


_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


def is_import_path(name: object) -> bool:
    """``package.module:attribute``, the way entry points and torchdistill name user code."""
    return isinstance(name, str) and bool(_IMPORT_PATH.match(name.strip()))


def import_object(path: str, what: str = "component") -> Any:
    """The object ``module.path:attribute`` names, or a one-line QkdError saying why not.

    The working folder is importable, as it is for ``python -m``, so a module beside the
    command needs no installing.
    """
    module_name, _, attribute = path.strip().partition(":")
    if "" not in sys.path and "." not in sys.path:
        sys.path.append("")
    try:
        obj = importlib.import_module(module_name)
    except Exception as exc:  # a user module may fail in any way; the message says which and why
        first = first_line(exc)
        raise QkdError(f"{what} {path}: module {module_name} does not import ({type(exc).__name__}: "
                       f"{first})") from None
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise QkdError(f"{what} {path}: {module_name} has no {attribute!r}")
        obj = getattr(obj, part)
    return obj


_plugins_imported = False


def import_plugins() -> bool:
    """Import, once, the modules that register a user's components by name: those listed in
    ``$QKD_PLUGINS`` (comma-separated module paths) and those installed packages declare in the
    ``qkd_pl.plugins`` entry-point group. Returns whether this call imported them (False after the
    first), so a name looked up again after it is not looked up forever.

    Why at the first unknown name and not at start: a component registered with a decorator
    (``@register_objective``) is only known once its module has run, and a command, a grid's worker
    process or a tune trial may each be the first to need it; an environment variable reaches them all.
    """
    global _plugins_imported
    if _plugins_imported:
        return False
    _plugins_imported = True
    from importlib.metadata import entry_points

    names = [m.strip() for m in os.environ.get("QKD_PLUGINS", "").split(",") if m.strip()]
    for name in names:
        import_object(f"{name}:__name__", "QKD_PLUGINS")  # one-line refusal of a module that does not import
    for entry in entry_points(group="qkd_pl.plugins"):
        try:
            entry.load()
        except Exception as exc:  # noqa: BLE001 - an installed plugin may fail in any way
            raise QkdError(f"the qkd_pl.plugins entry point {entry.name} ({entry.value}) does not import "
                           f"({type(exc).__name__}: {first_line(exc)})") from None
    return bool(names) or bool(entry_points(group="qkd_pl.plugins"))


# kind -> (module, attribute): imported on first use, so that reading a configuration does
# not import torch, PennyLane and every component.
_WHERE = {
    "dataset": ("qkd_pl.data.sources", "DATASETS"),
    "reducer": ("qkd_pl.reduction.registry", "REDUCERS"),
    "encoding": ("qkd_pl.circuits.encoding", "ENCODINGS"),
    "ansatz": ("qkd_pl.circuits.ansatz", "ANSATZES"),
    "teacher": ("qkd_pl.teachers.registry", "TEACHERS"),
    "student": ("qkd_pl.students.registry", "STUDENTS"),
    "device": ("qkd_pl.devices.registry", "DEVICES"),
    "objective": ("qkd_pl.losses.objectives", "OBJECTIVES"),
    "readout": ("qkd_pl.circuits.readout", "READOUTS"),
}


def registry(kind: str) -> Registry:
    """The registry of one kind of component (``"encoding"`` -> ``ENCODINGS``)."""
    import importlib

    module, name = _WHERE[kind]
    return getattr(importlib.import_module(module), name)
