"""What the command line knows of the built-in components without importing them.

The registries live beside the components they name, and those modules import torch and
PennyLane (about 5 s on a 2-core machine). ``qkd --help``, ``qkd COMMAND --help`` and the
refusal of a misspelt choice need only the names, aliases and help of the records, so those are
kept here in ``catalog.json``, written from the registries by ``python -m qkd_pl.cli.catalog``.
``tests/cli/test_catalog.py`` fails when the file and the registries differ, and a value the
catalog does not know (a user's component, a plugin's) is looked up in the real registry.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from ..errors import QkdError
from ..registry import Registry

CATALOG_FILE = Path(__file__).with_name("catalog.json")


def build() -> dict[str, Any]:
    """The catalog of the registries as they are now (imports every component)."""
    from ..registry import _WHERE, registry

    out: dict[str, Any] = {}
    for kind in _WHERE:
        reg = registry(kind)
        out[kind] = {"accepts_imports": reg.accepts_imports, "records": [
            {"name": r.name, "aliases": list(getattr(r, "aliases", ())), "help": r.help,
             "family": bool(getattr(r, "family", False))} for r in reg.values()]}
    return out


def plugins_configured() -> bool:
    """Whether a plugin may register components the catalog cannot know (``$QKD_PLUGINS``, or an
    installed package's ``qkd_pl.plugins`` entry point); only then is a name the catalog does
    not know looked up in the real registry, which imports every component."""
    if os.environ.get("QKD_PLUGINS", "").strip():
        return True
    from importlib.metadata import entry_points

    return bool(entry_points(group="qkd_pl.plugins"))


_loaded: dict[str, Any] | None = None


def _catalog() -> dict[str, Any]:
    global _loaded
    if _loaded is None:
        _loaded = json.loads(CATALOG_FILE.read_text())
    return _loaded


@dataclass(frozen=True)
class Listed:
    """A record as the catalog lists it: what ``Registry`` reads of a record to name, alias, group
    into families and describe it, without the component itself."""

    name: str
    help: str
    aliases: tuple[str, ...] = ()
    family: bool = False


class Catalog:
    """A registry's names, aliases and help, read from ``catalog.json`` into a ``Registry`` of
    ``Listed`` records (so names, aliases, families and import paths are read by the registry's own
    rules), with the real registry behind it for the names only a plugin registers.

    Args:
        kind: the registry's kind (``"encoding"``).
    """

    def __init__(self, kind: str):
        entry = _catalog()[kind]
        self.kind = kind
        self.listed: Registry[Listed] = Registry(kind, kind)
        for r in entry["records"]:
            self.listed.add(Listed(r["name"], r["help"], tuple(r["aliases"]), r["family"]))
        if entry["accepts_imports"]:  # the path is imported by the real registry, when validated
            self.listed.accept_imports(lambda path, obj: self.registry[path])

    @property
    def accepts_imports(self) -> bool:
        return self.listed.accepts_imports

    @cached_property
    def registry(self):
        """The real registry (imports its components): for names the catalog does not know."""
        from ..registry import registry

        return registry(self.kind)

    def __iter__(self):
        return iter(self.listed)

    def canonical(self, name: str) -> str:
        """As ``Registry.canonical``; a name the catalog does not know goes to the real registry
        where plugins are configured (one may have registered it), else QkdError listing the names."""
        try:
            return self.listed.canonical(name)
        except QkdError:
            if not plugins_configured():
                raise
        return self.registry.canonical(name)

    def __contains__(self, name: object) -> bool:
        """As ``Registry.__contains__`` on the listed records (syntax alone for a family member or an
        import path), or where plugins are configured whatever the real registry holds."""
        return name in self.listed or (plugins_configured() and name in self.registry)

    def help(self) -> str:
        """``"name: help; name: help"``, as ``Registry.help``."""
        return self.listed.help()


def main(argv: list[str] | None = None) -> int:
    """``python -m qkd_pl.cli.catalog [--check]``: write catalog.json from the registries, or
    with --check exit 1 when it differs from them."""
    args = sys.argv[1:] if argv is None else argv
    text = json.dumps(build(), indent=1, ensure_ascii=False) + "\n"
    if "--check" in args:
        same = CATALOG_FILE.exists() and CATALOG_FILE.read_text() == text
        print("catalog.json is up to date" if same else "catalog.json differs from the registries: "
              "run python -m qkd_pl.cli.catalog")
        return 0 if same else 1
    CATALOG_FILE.write_text(text)
    print(f"wrote {CATALOG_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
