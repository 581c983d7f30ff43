"""The package's layers: every module of qkd_pl read with ``ast`` (imports at the top and inside
functions alike), and two rules checked on what it imports.

(a) No import cycle among modules. Lazy imports (inside a function) count: a lazy import of a
    lower layer is fine, but one that only dodges a cycle is a cycle.
(b) No arrow back up: a module imports its own unit or a strictly lower layer, never a higher
    one and never a peer of its own layer.

Nothing here is imported or run, so the test takes a second and needs neither torch nor PennyLane.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

import qkd_pl

PACKAGE = Path(qkd_pl.__file__).resolve().parent

# The layers, low to high. A unit is a subpackage of qkd_pl or a top-level module; units of one
# layer are peers and import none of one another. The order is what the imports say, not a wish:
#
# - errors: the exception and warning types; imports nothing of qkd_pl.
# - parsing: option text read into values (``--classes 0-7``); config and data both read it,
#   which is why it is not in either (data.bundle imports config, so config cannot import data).
# - files: atomic writes (checkpoints, JSON, ledgers, caches), used from every layer.
# - user_code: a user's network factory (--arch / --student module.path:make), checked once for both.
# - allocator: glibc told to keep freed memory (the qkd command and grid workers, before torch loads).
# - registry: the Registry class. Its ``registry(kind)`` finds a kind's registry by module name at
#   call time (``_WHERE``): a lookup by string, not an import, so it draws no arrow here.
# - config: the run's dataclasses; components are named by registry kind, as strings.
# - data, reduction: images, splits, and images to features; config and below only.
# - devices: simulators and hardware. Below circuits, not beside them: circuits build their
#   QNodes and TorchLayers on a device (circuits.qlayer imports devices), and no device knows a
#   circuit (the fused device simulates the gates itself).
# - circuits: encodings, ansatzes, readouts, the quantum layer.
# - teachers, students, losses: the models and the objectives, independent of one another.
# - validate: the one check of a configuration before anything runs. It reads data, devices,
#   students and teachers, and needs nothing that trains; it sits as low as that allows, so the
#   training loop and the Distiller may call it.
# - training: the loop, evaluation, checkpoints; it trains any module on given logits, so it
#   knows no teacher or student.
# - distill: the Distiller (a teacher's logits into a student's training, the run folder, the
#   teacher-logit cache), between training and experiments.
# - experiments: runs, sweeps, the paper's studies, tools; inside it, EXPERIMENTS orders its parts.
# - cli: the ``qkd`` command line over all of it.
LAYERS: list[tuple[str, ...]] = [
    ("errors",),
    ("parsing", "files", "user_code", "allocator"),
    ("registry",),
    ("config",),
    ("data", "reduction"),
    ("devices",),
    ("circuits",),
    ("teachers", "students", "losses"),
    ("validate",),
    ("training",),
    ("distill",),
    ("experiments",),
    ("cli",),
]
OPTIONAL: set[str] = set()

# Inside experiments: one run (single) under what runs many of them (sweeps) or looks at models and
# devices (tools), and the paper's protocols (paper) on top of the general sweep machinery.
EXPERIMENTS: list[tuple[str, ...]] = [("single",), ("tools", "sweeps"), ("paper",)]

# Arrows back up (or sideways) that are known and not yet fixed: (importer, imported) -> why it is still there.
# Each must still occur (test_known_back_arrows_are_still_there), so fixing one removes its entry;
# anything not listed fails.
KNOWN_BACK_ARROWS: dict[tuple[str, str], str] = {}


class Import(NamedTuple):
    importer: str
    imported: str
    line: int
    lazy: bool


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return isinstance(test, (ast.Name, ast.Attribute)) and ast.unparse(test).endswith("TYPE_CHECKING")


def _imports(module: str, path: Path) -> list[Import]:
    """What ``module`` imports of qkd_pl: the deepest module each statement names."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []

    def target(name: str) -> str:
        while name not in MODULES and "." in name:  # ``from x import function``: the module x
            name = name.rpartition(".")[0]
        return name

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if _is_type_checking(child):
                continue
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = ".".join(package.split(".")[:len(package.split(".")) - child.level + 1])
                    base = f"{base}.{child.module}" if child.module else base
                else:
                    base = child.module or ""
                names = [f"{base}.{a.name}" for a in child.names]
            else:
                names = []
            for name in names:
                if name == "qkd_pl" or name.startswith("qkd_pl."):
                    found.append(Import(module, target(name), child.lineno, inner))
            visit(child, inner)

    visit(ast.parse(path.read_text(), str(path)), False)
    return found


IMPORTS: list[Import] = [i for m, p in MODULES.items() for i in _imports(m, p) if i.imported != m]


def _unit(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _ranks(layers: list[tuple[str, ...]]) -> dict[str, int]:
    return {unit: rank for rank, units in enumerate(layers) for unit in units}


def _back_arrows(imports: list[Import], layers: list[tuple[str, ...]], unit_of) -> list[str]:
    rank = _ranks(layers)
    out = []
    for i in imports:
        a, b = unit_of(i.importer), unit_of(i.imported)
        if a not in rank or b not in rank or a == b or (i.importer, i.imported) in KNOWN_BACK_ARROWS:
            continue  # unplaced units fail test_every_unit_has_a_layer
        if rank[b] >= rank[a]:
            where = "a peer of" if rank[b] == rank[a] else "above"
            out.append(f"{MODULES[i.importer].relative_to(PACKAGE.parent)}:{i.line} {i.importer} imports "
                       f"{i.imported}{' (lazily)' if i.lazy else ''}: {b} is {where} {a}")
    return out


def test_every_unit_has_a_layer():
    placed = set(_ranks(LAYERS))
    units = {u for u in map(_unit, MODULES) if u is not None}
    assert units <= placed, f"place {sorted(units - placed)} in LAYERS (tests/test_layout.py)"
    assert placed - units <= OPTIONAL, f"LAYERS names units qkd_pl does not have: {sorted(placed - units - OPTIONAL)}"
    parts = {m.split(".")[2] for m in MODULES if m.startswith("qkd_pl.experiments.")}
    assert parts == set(_ranks(EXPERIMENTS)), "EXPERIMENTS must name every part of qkd_pl.experiments"


def test_imports_resolve_to_modules_of_qkd_pl():
    unknown = [f"{i.importer}:{i.line} {i.imported}" for i in IMPORTS if i.imported not in MODULES]
    assert not unknown, unknown


def test_no_layer_imports_a_higher_one():
    wrong = _back_arrows(IMPORTS, LAYERS, _unit)
    assert not wrong, "arrows back up:\n" + "\n".join(wrong)


def test_inside_experiments_no_part_imports_a_higher_one():
    inside = [i for i in IMPORTS if _unit(i.importer) == _unit(i.imported) == "experiments"]
    assert inside, "no imports inside experiments found: the parser is broken"
    wrong = _back_arrows(IMPORTS, EXPERIMENTS, _part)
    assert not wrong, "arrows back up inside experiments:\n" + "\n".join(wrong)


def _part(module: str) -> str | None:
    """The part of experiments a module is in (None for experiments/__init__, which re-exports)."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "experiments" else None


def test_known_back_arrows_are_still_there():
    gone = [a for a in KNOWN_BACK_ARROWS if not any((i.importer, i.imported) == a for i in IMPORTS)]
    assert not gone, f"{gone}: no longer imported; remove them from KNOWN_BACK_ARROWS"


def _graph() -> dict[str, set[str]]:
    """Module -> the modules importing it runs. Importing ``a.b.c`` from outside ``a.b`` first runs
    ``a/__init__`` and ``a/b/__init__``; from inside, those are already being imported."""
    graph: dict[str, set[str]] = defaultdict(set)
    for i in IMPORTS:
        graph[i.importer].add(i.imported)
        parts = i.imported.split(".")
        for n in range(2, len(parts)):
            parent = ".".join(parts[:n])
            if not (i.importer == parent or i.importer.startswith(parent + ".")):
                graph[i.importer].add(parent)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(set(MODULES) | set(graph)):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycles():
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle (lazy imports included): " + " -> ".join(cycle)


def test_the_checks_see_a_cycle_and_a_back_arrow():
    """The checks themselves: a made-up cycle is found, made-up arrows up and sideways are named,
    and the parser sees both kinds of import."""
    assert _cycle({"qkd_pl.a": {"qkd_pl.b"}, "qkd_pl.b": {"qkd_pl.c"}, "qkd_pl.c": {"qkd_pl.a"}}) == [
        "qkd_pl.a", "qkd_pl.b", "qkd_pl.c", "qkd_pl.a"]
    up = Import("qkd_pl.errors", "qkd_pl.cli.app", 1, True)
    sideways = Import("qkd_pl.students.quantum", "qkd_pl.teachers.registry", 1, False)
    down = Import("qkd_pl.cli.app", "qkd_pl.errors", 1, False)
    assert len(_back_arrows([up, sideways, down], LAYERS, _unit)) == 2
    assert len(_back_arrows([Import("qkd_pl.experiments.sweeps.grid", "qkd_pl.experiments.paper.demo", 1, True)],
                            EXPERIMENTS, _part)) == 1
    assert any(i[:2] == ("qkd_pl.students.build", "qkd_pl.students.registry") and not i.lazy for i in IMPORTS)
    assert any(i.lazy for i in IMPORTS)
