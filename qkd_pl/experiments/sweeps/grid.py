"""Experiment grids: a base configuration and axes over it; every cell a run folder; one
results table.

A grid is the configuration of a student run (``DataConfig``, ``StudentConfig``,
``TrainConfig``, ``DistillConfig``: the same dataclasses the CLI builds), a teacher's training,
and axes: datasets, classes, teachers, seeds, and any student-run field by its dotted path
(``"student.qubits" = [4, 8]``, ``"student.rotation" = ["X", "Y"]``, ``"train.lr" = [...]``).
Cells are plain RunConfigs, each checked by ``validate`` before the first one runs, and run by
``train_teacher`` / ``train_student`` in three phases: single teachers, then ensembles of
them, then students, so each teacher is trained once and reused by every student of its
data. A cell whose ``test_metrics.json`` exists is finished and skipped; a cell with a run
folder but no result is resumed from its last epoch. So a killed grid, started again, loses
at most one epoch per running cell. Cells run one after another, in a pool of processes
(``--workers``), or on a Ray cluster (``--executor ray``).

TOML layout (every key optional except the datasets). In ``[student]`` and ``[distill]`` any
field of StudentConfig / DistillConfig may be set: a list is an axis, a single value is the
base::

    name = "v1"
    seeds = [0, 1, 2]
    [data]     datasets = ["mnist"]; classes = ["0-5", "0-7"]; per_class = 150
    [student]  arch = ["v2"]; qubits = [4]; reducer = ["fc"]; encoding = ["amplitude"];
               ansatz = ["strong"]; control = [false]; layers = 2; device = "auto"; rotation = "Y";
               epochs = 10; batch_size = 32; lr = 0.01
    [teacher]  arch = ["none", "lenet5"]; ensemble = ["lenet5", "alexnet-v1"];
               epochs = 10; batch_size = 128; lr = 0.001; seed = 0
    [teacher.epochs_by_arch]  lenet5 = 30        # per-architecture epochs (cheap nets can afford more)
    [teacher]  data = "all"                      # teachers on the whole class subset (default "same": the
                                                 # students' images; the docs' method page: which teacher may teach)
    [teacher.runs.cifar10]  compact-cnn = "docs/teachers/cifar10-compact-cnn"   # a teacher trained elsewhere
    [teacher]  pool = ["seen", "unseen"]         # with a transfer set: the teacher saw the pool (trained on
                                                 # the whole train part) and/or never saw it (one teacher per
                                                 # pool, trained --without-pool; needs data = "all")
    [teacher]  arch = ["none", "lenet5", "ceiling"]   # ceiling: the transfer set with its true labels, no
                                                 # teacher (what the pool is worth with labels)
    [distill]  temperature = 3.0; alpha = 0.9
    [sweep]    "student.rotation" = ["X", "Y"]   # any student-run field by its dotted path
    [sweep]    "data.per_class" = [50, 150, "all"]   # labelled images per class ("all": the whole split),
                                                 # with [teacher] data = "all" (one teacher for every size)
    [bundles.setting.paper]  "distill.temperature" = 3.0; "distill.alpha" = 0.9   # named sets of fields
    [bundles.setting.gentle] "distill.temperature" = 1.0; "distill.alpha" = 0.5   # that vary together
    [[include]] classes = "0-5"; qubits = 3      # keep only cells matching some include ...
    [[exclude]] qubits = 8; reducer = "crop"     # ... and no exclude

A bundle axis (``[bundles.<axis>.<name>]``) takes one named set of field values per cell instead
of the product of their values: the study's settings (an objective with its tuned T and alpha) or
regimes (labels per class with the epochs and batch size that suit them). Its name is a column
(``setting = "paper"`` in a rule) and names the cell; its fields are columns too. A field one
bundle leaves out takes the grid's base value. A baseline has one cell for every bundle axis whose
fields are all ``distill.*``.

``teacher.arch = "none"`` is the baseline student; ``"ensemble"`` averages the teachers named
in ``teacher.ensemble``. Rules and the results table name the standard axes by their short
column names (``qubits``, ``student``, ``reducer``, ``encoding``, ``ansatz``, ``control``) and
every other axis by its dotted path.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
import os
import tomllib
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tqdm.auto import tqdm

from ...config import DataConfig, DistillConfig, RunConfig, StudentConfig, TeacherConfig, TrainConfig, normalized, with_field
from ...data.sources import canonical_name, slug
from ...parsing import parse_classes
from ...devices import resolve_backend
from ...devices.torch_device import TORCH_SIMULATORS, resolve_torch_device
from ...errors import QkdError, QkdInterrupted, one_line_warnings
from ...registry import is_import_path
from ...teachers import ENSEMBLE, TEACHERS
from ...training import atomic_write_json
from ...training.checkpoint import atomic_write_text
from ...validate import augment_resolved, validate as validate_config

BASELINE = "none"
# The ceiling control: a student without a teacher that learns its transfer set from the pool's own
# labels (what the pool is worth with labels: a reference, not a bound on what a teacher passes on).
CEILING = "ceiling"
POOLS = ("seen", "unseen")  # the teacher was trained on the students' transfer pool, or never saw it
PER_CLASS = "data.per_class"  # the one data field a grid may sweep; "all" stands for no cap
_SECTIONS = {"student": StudentConfig, "train": TrainConfig, "distill": DistillConfig}
# The student fields every results row has a column for (the report groups by them), by column name.
COLUMNS = {"student.qubits": "qubits", "student.arch": "student", "student.reducer": "reducer",
           "student.encoding": "encoding", "student.ansatz": "ansatz", "student.control": "control"}
HYBRID = "hybrid-cnn"  # its circuit is fixed: the reducer, encoding, ansatz and control axes do not apply
FIXED_AXES = ("dataset", "classes", "teacher", "seed")
_V2_ONLY = {"student.reducer": StudentConfig().reducer, "student.encoding": StudentConfig().encoding,
            "student.ansatz": StudentConfig().ansatz, "student.control": False}


@dataclass
class GridSpec:
    """A grid, as read from TOML (or built by ``qkd reproduce`` and ``qkd compare``).

    ``data``, ``student``, ``student_train`` and ``distill`` are the base of every student cell
    (``data.dataset`` and ``data.classes`` come from ``datasets`` and ``classes``); ``axes``
    maps dotted student-run paths to the values they take.
    """

    datasets: list[str]
    name: str = "grid"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    classes: list[str | None] = field(default_factory=lambda: [None])
    data: DataConfig = field(default_factory=DataConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    student_train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=10, batch_size=32, lr=1e-2))
    distill: DistillConfig = field(default_factory=DistillConfig)
    axes: dict[str, list[Any]] = field(default_factory=dict)
    teachers: list[str] = field(default_factory=lambda: [BASELINE, "lenet5"])
    ensemble: list[str] = field(default_factory=lambda: ["lenet5", "alexnet-v1"])
    teacher_train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=10, batch_size=128, lr=1e-3))
    teacher_epochs: dict[str, int] = field(default_factory=dict)  # per arch, overriding teacher_train.epochs
    teacher_data: str = "same"  # "all": teachers see the whole class subset (the notebooks'), not the students' cap
    teacher_runs: dict[str, dict[str, str]] = field(default_factory=dict)  # dataset -> teacher name -> run folder
    # with transfer sets: "seen" (the teacher trained on the whole train part, the pool's labels too)
    # and/or "unseen" (a teacher per pool, trained without it: the protocol of truly unlabelled images)
    teacher_pool: list[str] = field(default_factory=lambda: ["seen"])
    bundles: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # axis -> name -> {path: value}
    include: list[dict[str, Any]] = field(default_factory=list)
    exclude: list[dict[str, Any]] = field(default_factory=list)

    def columns(self) -> list[str]:
        """The results-table columns of a student cell's axes, standard ones first."""
        extra = [p for p in self.axes if p not in COLUMNS]
        bundled = [p for p in self.bundle_paths() if p not in COLUMNS and p not in extra]
        return [*FIXED_AXES, *COLUMNS.values(), *extra, *self.bundles, *bundled]

    def bundle_paths(self) -> dict[str, str]:
        """Every field a bundle sets -> its bundle axis."""
        return {p: axis for axis, named in self.bundles.items() for fields in named.values() for p in fields}

    def base_value(self, path: str) -> Any:
        """The grid's own value of a student-run field (``"all"`` for no cap on labels per class)."""
        section, name = path.split(".")
        base = {"data": self.data, "student": self.student, "train": self.student_train, "distill": self.distill}
        value = getattr(base[section], name)
        return "all" if path == PER_CLASS and value is None else value


_TRAIN_KEYS = ("epochs", "batch_size", "lr", "seed")


def _sweepable() -> set[str]:
    """Dotted paths of the fields a grid may set or sweep for its students (the teacher and the
    seed are axes of their own)."""
    return ({f"{s}.{f.name}" for s in _SECTIONS for f in dataclasses.fields(_SECTIONS[s])}
            - {"distill.teacher", "train.seed"} | {PER_CLASS})


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """A TOML file's tables, or one QkdError saying it is missing or not TOML."""
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise QkdError(f"{what} file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise QkdError(f"{path} is not valid TOML ({exc})") from None


def load_spec(path: str | Path) -> GridSpec:
    """A grid from its TOML file, every cell validated; any mistake is one QkdError naming the file."""
    path = Path(path)
    raw = read_toml(path, "grid")
    try:
        spec = validate(_from_toml(raw))
        check_cells(expand(spec, Path("grid")))
        return spec
    except QkdError as exc:
        raise QkdError(f"{path}: {exc}") from None


def _from_toml(raw: dict[str, Any]) -> GridSpec:
    top = {k: v for k, v in raw.items() if not isinstance(v, dict) and k not in ("include", "exclude")}
    unknown = set(top) - {"name", "seeds"}
    if unknown:
        raise QkdError(f"unknown key {sorted(unknown)[0]!r}; known at the top: name, seeds, and the tables [data], "
                       f"[student], [teacher], [distill], [sweep], [[include]], [[exclude]]")
    tables = sorted(k for k, v in raw.items() if isinstance(v, dict)
                    and k not in ("data", "student", "teacher", "distill", "sweep", "bundles"))
    if tables:
        raise QkdError(f"unknown table [{tables[0]}]; known: [data], [student] (with epochs, batch_size, lr), "
                       f"[teacher], [distill], [sweep] (any other train.* field by its dotted path), [bundles]")
    data_raw = dict(raw.get("data", {}))
    if "datasets" not in data_raw:
        raise QkdError("[data] datasets is required, e.g. datasets = [\"mnist\"]")
    kwargs: dict[str, Any] = {**top, "datasets": data_raw.pop("datasets")}
    if "classes" in data_raw:
        kwargs["classes"] = data_raw.pop("classes")
    axes: dict[str, list[Any]] = {}
    if isinstance(data_raw.get("per_class"), list):
        axes[PER_CLASS] = data_raw.pop("per_class")
    kwargs["data"] = config_section(DataConfig, "data", data_raw, exclude=("dataset", "classes"))
    student_raw = dict(raw.get("student", {}))
    train = {k: student_raw.pop(k) for k in _TRAIN_KEYS if k in student_raw}
    for key, value in train.items():
        if isinstance(value, list):
            axes[f"train.{key}"] = value
    kwargs["student_train"] = dataclasses.replace(GridSpec.__dataclass_fields__["student_train"].default_factory(),
                                                  **{k: v for k, v in train.items() if not isinstance(v, list)})
    kwargs["student"] = config_section(StudentConfig, "student", student_raw, axes=axes, extra=_TRAIN_KEYS)
    kwargs["distill"] = config_section(DistillConfig, "distill", dict(raw.get("distill", {})), axes=axes,
                                 exclude=("teacher",))
    teacher_raw = dict(raw.get("teacher", {}))
    for key, name in (("arch", "teachers"), ("ensemble", "ensemble"), ("epochs_by_arch", "teacher_epochs"),
                      ("data", "teacher_data"), ("runs", "teacher_runs"), ("pool", "teacher_pool")):
        if key in teacher_raw:
            kwargs[name] = teacher_raw.pop(key)
    unknown = set(teacher_raw) - set(_TRAIN_KEYS)
    if unknown:
        raise QkdError(f"unknown key [teacher] {sorted(unknown)[0]!r}; known: arch, ensemble, epochs_by_arch, data, runs, pool, "
                       f"{', '.join(_TRAIN_KEYS)}")
    kwargs["teacher_train"] = dataclasses.replace(GridSpec.__dataclass_fields__["teacher_train"].default_factory(),
                                                  **teacher_raw)
    for path, values in raw.get("sweep", {}).items():
        if path in axes:
            raise QkdError(f"[sweep] {path!r} is also set in its own table; give it once")
        axes[path] = values
    bundles = raw.get("bundles", {})
    for axis, named in bundles.items():
        if not isinstance(named, dict) or not named or not all(isinstance(f, dict) for f in named.values()):
            raise QkdError(f"[bundles.{axis}]: give named tables of fields, e.g. [bundles.{axis}.paper] "
                           f"\"distill.temperature\" = 3.0")
    return GridSpec(**kwargs, axes=axes, bundles=bundles, include=list(raw.get("include", [])),
                    exclude=list(raw.get("exclude", [])))


def config_section(cls: type, table: str, values: dict[str, Any], axes: dict[str, list[Any]] | None = None,
             exclude: tuple[str, ...] = (), extra: tuple[str, ...] = ()) -> Any:
    """The base ``cls`` of one TOML table: single values set fields, lists (when ``axes`` is
    given) become axes ``table.field``."""
    names = [f.name for f in dataclasses.fields(cls) if f.name not in exclude]
    base = {}
    for key, value in values.items():
        if key not in names:
            raise QkdError(f"unknown key [{table}] {key!r}; known: {', '.join([*names, *extra])}")
        if isinstance(value, list) and axes is not None:
            axes[f"{table}.{key}"] = value
        else:
            base[key] = value
    return cls(**base)


def validate(spec: GridSpec) -> GridSpec:
    """The grid's own keys (datasets, classes, axes, rules, teachers); each cell's configuration is
    ``check_cells``'s job."""
    spec.datasets = [canonical_name(d) for d in spec.datasets]
    for c in spec.classes:
        parse_classes(c)
    for path, values in spec.axes.items():
        if path not in _sweepable():
            raise QkdError(f"[sweep] {path!r} is not a student-run field; sweep one of "
                           f"{', '.join(f'{s}.<field>' for s in _SECTIONS)}, {PER_CLASS} (datasets, classes, teachers and seeds "
                           f"have their own keys)")
        if not isinstance(values, list) or not values:
            raise QkdError(f"[sweep] {path!r} = {values!r}: give a list of one or more values")
    owners: dict[str, set[str]] = {}  # field -> the bundle axes that set it
    for axis, named in spec.bundles.items():
        if "." in axis or axis in spec.axes or axis in (*FIXED_AXES, *COLUMNS.values()):
            raise QkdError(f"bundle axis {axis!r}: give it a plain name that is not a column already "
                           f"(such as setting or regime)")
        for name, fields in named.items():
            if not fields:
                raise QkdError(f"[bundles.{axis}.{name}] sets no field")
            for path in fields:
                if path not in _sweepable():
                    raise QkdError(f"[bundles.{axis}.{name}] {path!r} is not a student-run field")
                if path in spec.axes:
                    raise QkdError(f"[bundles.{axis}.{name}] {path!r} is also an axis; give it once")
                owners.setdefault(path, set()).add(axis)
    twice = sorted(p for p, axes in owners.items() if len(axes) > 1)
    if twice:
        raise QkdError(f"{twice[0]!r} is set by the bundle axes {sorted(owners[twice[0]])}; give it in one")
    sizes = spec.axes.get(PER_CLASS, []) + [f[PER_CLASS] for named in spec.bundles.values() for f in named.values()
                                            if PER_CLASS in f]
    if PER_CLASS in spec.axes or PER_CLASS in spec.bundle_paths():
        for value in sizes:
            if value != "all" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise QkdError(f"{PER_CLASS} = {value!r}: give whole numbers of images per class (1 or more) or "
                               f"\"all\"")
        if spec.teacher_data != "all" and set(spec.teachers) - {BASELINE, CEILING}:
            raise QkdError(f"a {PER_CLASS} axis needs [teacher] data = \"all\": a teacher trained on the students' "
                           f"images would differ per size; or run one grid per size")
    for rule in spec.include + spec.exclude:
        unknown = set(rule) - set(spec.columns())
        if unknown:
            raise QkdError(f"include/exclude rule {rule} names {sorted(unknown)}; axes are "
                           f"{', '.join(spec.columns())}")
    for arch, epochs in spec.teacher_epochs.items():
        if arch not in TEACHERS or not isinstance(epochs, int) or epochs < 1:
            raise QkdError(f"teacher.epochs_by_arch: {arch} = {epochs!r}; give a whole number of epochs (1 or more) "
                           f"for one of {', '.join(TEACHERS)}")
    for dataset, runs in spec.teacher_runs.items():
        for name, path in runs.items():
            if not (Path(path) / "best.pt").is_file() and not Path(path).is_file():
                raise QkdError(f"teacher.runs.{dataset}.{name} = {path!r}: no trained teacher there (no best.pt)")
    spec.teacher_runs = {canonical_name(d): runs for d, runs in spec.teacher_runs.items()}
    if spec.teacher_data not in ("same", "all"):
        raise QkdError(f"teacher.data = {spec.teacher_data!r}: give \"same\" (the students' images) or \"all\" "
                       f"(the whole class subset)")
    if not isinstance(spec.teacher_pool, list) or not spec.teacher_pool or set(spec.teacher_pool) - set(POOLS) \
            or len(set(spec.teacher_pool)) < len(spec.teacher_pool):
        raise QkdError(f"teacher.pool = {spec.teacher_pool!r}: give a list of \"seen\" (the teacher was trained on "
                       f"the students' transfer pool) and/or \"unseen\" (it never saw it)")
    if "unseen" in spec.teacher_pool and spec.teacher_data != "all":
        raise QkdError("teacher.pool \"unseen\" trains a teacher on the whole train part but the students' pool: it "
                       "needs [teacher] data = \"all\" (with \"same\" no teacher sees a pool anyway)")
    trainable = [t for t in spec.teachers if t not in (BASELINE, CEILING)
                 and not all(t in spec.teacher_runs.get(d, {}) for d in spec.datasets)]
    if spec.teacher_pool == ["unseen"] and not trainable and set(spec.teachers) - {BASELINE, CEILING}:
        raise QkdError("teacher.pool = [\"unseen\"]: every teacher of this grid was trained elsewhere (teacher.runs), "
                       "on the pool too, so no cell can have one that never saw it; add a teacher the grid trains, "
                       "or \"seen\"")
    if "unseen" in spec.teacher_pool and ENSEMBLE in spec.teachers:
        raise QkdError("teacher.pool \"unseen\" with an ensemble: an ensemble's members were trained once, on the "
                       "whole train part; drop one of them")
    if ENSEMBLE in spec.teachers and len(spec.ensemble) < 2:
        raise QkdError("teacher.arch lists \"ensemble\": name two or more teachers in teacher.ensemble")
    return spec


def check_cells(cells: list[Cell]) -> list[Cell]:
    """Every cell passes ``validate``, or the first that does not is refused before any runs."""
    for cell in cells:
        try:
            validate_config(cell.config)
        except QkdError as exc:
            raise QkdError(f"cell {cell.id}: {exc}") from None
    return cells


@dataclass
class Cell:
    id: str
    phase: int  # 0: single teachers, 1: ensembles, 2: students
    config: RunConfig
    fields: dict[str, Any]  # the axis values, for the results table
    torch_device: str = "auto"  # where its classical networks run (not part of its identity)


def _kept(spec: GridSpec, fields: dict[str, Any], teacherly: set[str]) -> bool:
    """Include and exclude rules; a baseline's distillation fields ("-", and its ``teacherly``
    bundle axes) match any value in an include rule and none in an exclude rule, so a baseline
    stays while a setting it is paired with does."""
    def matches(rule, include):
        return all(fields.get(k) == v or (include and (k.startswith("distill.") or k in teacherly)
                                          and fields.get(k) == "-") for k, v in rule.items())

    return ((not spec.include or any(matches(r, True) for r in spec.include))
            and not any(matches(r, False) for r in spec.exclude))


def _teacherly(spec: GridSpec) -> set[str]:
    """The bundle axes of distill.* fields only: a baseline has no setting, so one baseline serves
    every choice of them (its value there is "-")."""
    paths = spec.bundle_paths()
    return {axis for axis in spec.bundles if all(p.startswith("distill.") for p, a in paths.items() if a == axis)}


def expand(spec: GridSpec, out: Path) -> list[Cell]:
    """Every cell of the grid, teachers first; run folders live in ``out/runs/<cell id>``.

    With ``teacher_pool`` ``["seen", "unseen"]`` a distilled cell with a transfer set comes twice
    (column ``pool``), its "unseen" teacher trained on the teacher's images less that pool (one
    teacher per labelled size and pool size); a teacher trained elsewhere (``teacher_runs``) saw
    what it saw, so it has no "unseen" cells. A ``ceiling`` cell exists where a distilled cell has
    a transfer set: the same student and pool, the pool's true labels instead of a teacher.
    """
    runs = out / "runs"
    axes = {**{p: [getattr(spec.student, p.split(".")[1])] for p in COLUMNS}, **spec.axes}
    extra = [p for p in spec.axes if p not in COLUMNS]
    paths = spec.bundle_paths()
    teacherly = _teacherly(spec)
    pools = spec.teacher_pool != ["seen"]  # a pool column (and "unseen" cells) only where asked for
    cells: dict[str, Cell] = {}
    for dataset, classes in itertools.product(spec.datasets, spec.classes):
        tag = f"{slug(dataset)}-{classes or 'all'}"
        data = dataclasses.replace(spec.data, dataset=dataset, classes=parse_classes(classes))
        teacher_data = dataclasses.replace(data, per_class=None) if spec.teacher_data == "all" else data
        given = spec.teacher_runs.get(dataset, {})  # trained elsewhere: used as they are
        students = {}
        for *point, teacher, pool, seed in itertools.product(*axes.values(), *map(list, spec.bundles.values()),
                                                             spec.teachers, spec.teacher_pool, spec.seeds):
            values = dict(zip(axes, point))
            named = dict(zip(spec.bundles, point[len(axes):]))
            for path, axis in paths.items():
                values[path] = spec.bundles[axis][named[axis]].get(path, spec.base_value(path))
            transfer = _transfer_of(spec, values)
            if teacher in (BASELINE, CEILING) or transfer == "none":
                pool = "-"
            elif pool == "unseen" and teacher in given:
                continue
            if teacher == CEILING and transfer == "none":
                continue
            if teacher in (BASELINE, CEILING):
                named.update({axis: "-" for axis in teacherly})
            if _fixed_circuit(values["student.arch"]):
                # a fixed circuit, or the user's own module: the v2 axes do not apply, one cell for all their values
                values.update({"student.reducer": "-", "student.encoding": "-", "student.ansatz": "-",
                               "student.control": False})
            if teacher in (BASELINE, CEILING):  # nor do the teacher's: one baseline for every distillation setting
                values.update({p: "-" for p in values if p.startswith("distill.")})
            if teacher == CEILING:  # ... and one ceiling per transfer set (in the columns the grid has)
                values.update({k: v for k, v in (("distill.transfer", transfer), ("distill.transfer_labels", "true"))
                               if k in values})
            fields = {"dataset": dataset, "classes": classes or "all", **named,
                      **{COLUMNS.get(p, p): v for p, v in values.items()}, "teacher": teacher,
                      **({"pool": pool} if pools else {}), "seed": seed}
            if pools or CEILING in spec.teachers:  # the report pairs pools and ceilings by these columns
                labels = values.get("distill.transfer_labels", spec.distill.transfer_labels)
                fields.setdefault("distill.transfer", "-" if teacher == BASELINE else transfer)
                fields.setdefault("distill.transfer_labels", {BASELINE: "-", CEILING: "true"}.get(teacher, labels))
            if _kept(spec, fields, teacherly):
                students[_student_id(spec, tag, fields, values, extra, pool)] = (fields, values, pool)
        students = _ceilings_with_a_pair(students, teacherly)
        needed = {(f["teacher"], _pool_spec(spec, v, pool)) for f, v, pool in students.values()
                  if f["teacher"] not in (BASELINE, CEILING)}
        singles = {(a, p) for a, p in needed if a != ENSEMBLE}
        if any(a == ENSEMBLE for a, _ in needed):
            singles |= {(a, None) for a in spec.ensemble}
        for arch, without in sorted(((a, p) for a, p in singles if a not in given), key=lambda t: (t[0], t[1] or "")):
            cid = _teacher_id(tag, arch, without)
            train = dataclasses.replace(spec.teacher_train,
                                        epochs=spec.teacher_epochs.get(arch, spec.teacher_train.epochs))
            cells[cid] = Cell(cid, 0, augment_resolved(RunConfig(
                kind="teacher", data=dataclasses.replace(teacher_data, without_pool=without), teacher=TeacherConfig(arch),
                train=train)),
                              {"dataset": dataset, "classes": classes or "all", "teacher": arch, "role": "teacher",
                               **({"pool": "seen" if without is None else f"unseen ({without})"} if pools else {})})
        if any(a == ENSEMBLE for a, _ in needed):
            cid = f"teacher-{tag}-{ENSEMBLE}"
            members = [str(runs / f"teacher-{tag}-{_id_part(a)}") for a in spec.ensemble]
            cells[cid] = Cell(cid, 1, RunConfig(kind="teacher", data=teacher_data, train=spec.teacher_train,
                                                teacher=TeacherConfig(ENSEMBLE, members)),
                              {"dataset": dataset, "classes": classes or "all", "teacher": ENSEMBLE, "role": "teacher"})
        for cid, (f, values, pool) in students.items():
            role, hybrid = _role(f["teacher"]), _fixed_circuit(f["student"])
            teacher = (None if role != "distilled" else given[f["teacher"]] if f["teacher"] in given
                       else str(runs / _teacher_id(tag, _id_part(f["teacher"]), _pool_spec(spec, values, pool))))
            cfg = RunConfig(kind="student", data=data, student=spec.student,
                            train=dataclasses.replace(spec.student_train, seed=f["seed"]),
                            distill=dataclasses.replace(spec.distill, teacher=teacher) if teacher else DistillConfig())
            for path, value in values.items():  # a hybrid cell takes the defaults of what its circuit ignores
                if value == "-" and path.startswith("distill."):
                    continue
                if path == PER_CLASS and value == "all":
                    value = None
                cfg = with_field(cfg, path, _V2_ONLY[path] if hybrid and path in _V2_ONLY else value)
            if role == "ceiling":
                cfg = dataclasses.replace(cfg, distill=DistillConfig(transfer=_transfer_of(spec, values),
                                                                     transfer_labels="true"))
            cells[cid] = Cell(cid, 2, augment_resolved(cfg), {**f, "role": role})
    return list(cells.values())


def _student_id(spec: GridSpec, tag: str, f: dict[str, Any], values: dict[str, Any], extra: list[str],
                pool: str) -> str:
    """A student cell's id: its role, data, circuit, teacher, swept fields, bundles and seed (a
    ceiling's transfer set and an unseen pool named too; a seen pool's cells keep the ids they had)."""
    role, hybrid = _role(f["teacher"]), _fixed_circuit(f["student"])
    return (f"{role}-{tag}-{f['qubits']}q-{_id_part(f['student'])}"
            + ("" if hybrid else f"-{f['reducer']}-{f['encoding']}-{f['ansatz']}")
            + ("-control" if f["control"] else "") + ("" if role != "distilled" else f"-{_id_part(f['teacher'])}")
            + "".join(f"-{p.split('.')[1]}-{values[p]}" for p in extra if values[p] != "-")
            + "".join(f"-{axis}-{f[axis]}" for axis in spec.bundles if f[axis] != "-")
            + (f"-transfer-{_transfer_of(spec, values)}" if role == "ceiling" and "distill.transfer" not in extra else "")
            + ("-unseen-pool" if pool == "unseen" else "") + f"-s{f['seed']}")


def _role(teacher: str) -> str:
    return {BASELINE: "baseline", CEILING: "ceiling"}.get(teacher, "distilled")


def _fixed_circuit(arch: str) -> bool:
    """The v1 hybrid student or a user's own module: qkd-pl's circuit axes do not apply."""
    return arch == HYBRID or is_import_path(arch)


def _pool_spec(spec: GridSpec, values: dict[str, Any], pool: str) -> str | None:
    """``P:N`` of the pool an "unseen" teacher is trained without (None: the teacher saw everything)."""
    if pool != "unseen":
        return None
    per_class = values.get(PER_CLASS, spec.base_value(PER_CLASS))
    return f"{per_class}:{_transfer_of(spec, values)}"


def _transfer_of(spec: GridSpec, values: dict[str, Any]) -> str:
    return str(values.get("distill.transfer", spec.distill.transfer))


def _teacher_id(tag: str, arch: str, without: str | None) -> str:
    return f"teacher-{tag}-{_id_part(arch)}" + ("" if without is None else f"-without-{without.replace(':', '-')}")


def _ceilings_with_a_pair(students: dict[str, tuple], teacherly: set[str]) -> dict[str, tuple]:
    """Ceiling cells only where a distilled cell learns from the same transfer set, all else equal."""
    def signature(f: dict[str, Any], values: dict[str, Any]) -> tuple:
        return tuple(sorted((k, str(v)) for k, v in f.items() if k not in teacherly and k not in ("teacher", "pool")
                            and not k.startswith("distill."))) + (str(values.get("distill.transfer")),)

    distilled = {signature(f, v) for f, v, _ in students.values() if f["teacher"] not in (BASELINE, CEILING)}
    return {cid: s for cid, s in students.items() if s[0]["teacher"] != CEILING or signature(s[0], s[1]) in distilled}


# --------------------------------------------------------------------------- running
def run_cell(cell: Cell, out: str, data_dir: str | None, threads: int | None = None) -> dict[str, Any]:
    """Train (or resume) one cell and return its results row; runs in a worker process too."""
    import torch

    from ..single.train import train_student, train_teacher

    if threads:
        torch.set_num_threads(threads)
    runs = Path(out) / "runs"
    resume = (runs / cell.id / "config.json").exists()
    train = train_teacher if cell.config.kind == "teacher" else train_student
    train(cell.config, runs, name=cell.id, resume=resume, data_dir=data_dir, progress=False,
          torch_device=cell.torch_device)
    return row_for(cell, Path(out))


def run_cells(cells: list[Cell], out: str, data_dir: str | None, threads: int | None = None
              ) -> list[tuple[Cell, dict[str, Any] | None, str | None]]:
    """Train (or resume) cells of one stack group as one stacked model (``train_students``);
    ``(cell, row, error)`` for each. Where the group fails, its cells run alone (resuming), so one
    cell's failure is that cell's alone."""
    if len(cells) == 1:
        return [_attempt(cells[0], out, data_dir, threads)]
    import torch

    from ..single.train import train_students

    one_line_warnings()
    if threads:
        torch.set_num_threads(threads)
    runs = Path(out) / "runs"
    try:
        train_students([c.config for c in cells], runs, [c.id for c in cells],
                       [(runs / c.id / "config.json").exists() for c in cells], data_dir, progress=False,
                       torch_device=cells[0].torch_device)
        return [(c, row_for(c, Path(out)), None) for c in cells]
    except QkdInterrupted:
        raise
    except QkdError:
        return [_attempt(c, out, data_dir, threads) for c in cells]


# Stacked students pay where a step is mostly per-call overhead: small circuits, small batches
# (benchmarks/test_stacked_students.py, three runs; docs/explanation/performance.md, "Many students in one step"):
# 1.1x to 5.7x up to 2^qubits x batch = 8,192 amplitudes per student and step (8 qubits at batch
# 32, 4 at 256); beyond it mixed or slower (8 qubits at 256: 0.62x to 1.01x; 10 at 32: 0.7x).
STACK_WORK = 8192
# ... and whose FC reduction holds at most this many weights (features x 2^qubits): up to 8 qubits
# on CIFAR-10 (786,432). Measured on 2026-12-04 with the stacked parameters in their gradients'
# layout (Stack.match_gradient_layout), training/optim.py's Adam and allocator.py's setting, two
# runs (docs/performance/step-memory-2026-12-04): CIFAR-10 at 8 qubits 1.33x / 1.45x at 5 students,
# 1.18x / 1.39x at 30; MNIST at 8 qubits 1.55x / 1.74x and 2.06x / 2.26x. (Before those changes,
# on another machine of this kind, CIFAR-10 at 8 qubits was 0.77x-1.16x at 5 and 0.53x-0.68x at 30: the
# earlier limit of 262,144.) Students are stacked by this rule with QKD_KEEP_FREED_MEMORY=0 too.
STACK_WEIGHTS = 786_432
STACK_MOST = 64  # students in one stacked step
_LOSS_ONLY = ("teacher", "temperature", "alpha", "kd_loss", "dist_beta", "dist_gamma", "dkd_beta", "kd_params",
              "transfer_labels")


def follows_to_gpu(student: StudentConfig) -> bool:
    """Whether a grid's student may train on CUDA (``--torch-device cuda``): qkd-pl's own student whose
    resolved circuit device simulates in torch (``student_torch_device``'s rule); the others train on
    the CPU."""
    from ...students.registry import STUDENTS

    if is_import_path(student.arch) or student.arch not in STUDENTS or STUDENTS[student.arch].user:
        return False
    try:
        backend = resolve_backend(student.device, student.qubits, student.shots, student.noise, training=True)
    except QkdError:
        return False
    return backend.device in TORCH_SIMULATORS and not backend.shots and not backend.noise


def stack_groups(cells: list[Cell], stack: bool = True) -> list[list[Cell]]:
    """The cells as tasks: students that can train as one stacked model (the same settings but for
    the seed and the loss: teacher, objective, T, alpha, transfer labels) together, the rest alone."""
    groups: dict[str, list[Cell]] = {}
    for cell in cells:
        key = _stack_key(cell) if stack else None
        groups.setdefault(key or cell.id, []).append(cell)
    tasks = [g[i:i + STACK_MOST] for g in groups.values() for i in range(0, len(g), STACK_MOST)]
    # the longest first, so that workers do not finish on one long task while the others wait
    return sorted(tasks, key=lambda task: -sum(_work(c) for c in task) / (len(task) ** 0.5 if len(task) > 1 else 1))


def _features(dataset: str) -> float:
    """Pixels per image of a dataset (infinite where the registry cannot say without reading it)."""
    from ...data.sources import DATASETS

    try:
        c, h, w = DATASETS[canonical_name(dataset)].image_shape
    except Exception:  # noqa: BLE001 - a family member or a user's dataset: do not stack
        return float("inf")
    return c * h * w


def _work(cell: Cell) -> float:
    """A rough size of a cell's training, only to order tasks: images per epoch x epochs x 2^qubits,
    x (256 / batch)^0.6 for the per-step overhead of small batches (a cap of all the images counts
    as 5,000 per class; a stacked task as its size over sqrt(n))."""
    cfg = cell.config
    per_class = cfg.data.per_class or 5000
    transfer = cfg.distill.transfer if cfg.distill is not None else "none"
    per_class += int(transfer) if transfer.isdigit() else 0
    qubits = cfg.student.qubits if cfg.student is not None else 0
    return per_class * cfg.train.epochs * 2.0 ** qubits * (256 / cfg.train.batch_size) ** 0.6


def _stack_key(cell: Cell) -> str | None:
    cfg = cell.config
    s, d = cfg.student, cfg.distill
    if (cfg.kind != "student" or s.arch != "v2" or 2**s.qubits * cfg.train.batch_size > STACK_WORK
            or s.encoding != "amplitude"  # rotation encodings' inputs pass a batch norm (students/angle_inputs.py)
            or s.reducer == "pca"  # its forward tests whether it was fitted: a branch vmap cannot batch
            or (s.reducer == "fc" and _features(cfg.data.dataset) * 2**s.qubits > STACK_WEIGHTS)
            or s.shots is not None
            or s.noise is not None or s.device not in ("auto", *TORCH_SIMULATORS) or cfg.train.mixup > 0
            or (d is not None and d.teacher_outputs != "cached")
            or cell.torch_device not in ("auto", "cpu")):  # students on a GPU train one by one (stacked.py)
        return None
    raw = cfg.to_dict()
    raw["train"].pop("seed")
    for name in _LOSS_ONLY:
        (raw.get("distill") or {}).pop(name, None)
    return json.dumps([raw, cell.torch_device], sort_keys=True, default=str)


def row_for(cell: Cell, out: Path) -> dict[str, Any]:
    """The results row of a finished cell; its paths are relative to the grid folder ``out``, so
    a grid folder can be moved or committed and still be reported on."""
    run_dir = out / "runs" / cell.id
    test = json.loads((run_dir / "test_metrics.json").read_text())
    params = test["parameters"]
    fields = {k: _as_text(v) for k, v in cell.fields.items()}
    return {"id": cell.id, **fields, "test_accuracy": test["test_accuracy"],
            "best_val_accuracy": test["best_val_accuracy"], "best_epoch": test["best_epoch"],
            "params_classical": params["classical"], "params_quantum": params["quantum"],
            "params_control": params.get("control", 0), "device": test["trained_on"], "seconds": test["seconds"],
            "teacher_run": _relative(cell.config.distill.teacher, out) if cell.config.distill else None,
            "run_dir": _relative(run_dir, out),
            **({"data_source": test["data_source"]["label"]}
               if (test.get("data_source") or {}).get("kind") == "declared copy" else {})}


def _id_part(name: str) -> str:
    """A component's name in a cell id: a user's ``pkg.mod:make`` as ``pkg.mod-make``, no colon in a folder name."""
    return name.replace(":", "-") if is_import_path(name) else name


def _as_text(value: Any) -> Any:
    """A column's value: a table (an objective's ``kd_params``) as ``name=value,...`` text, so a
    report can group cells by it and results.csv shows it as it was written."""
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in sorted(value.items()))
    return value


def _relative(path: str | Path | None, out: Path) -> str | None:
    """``path`` relative to ``out`` when it lies inside it (the grid's own runs), else as given."""
    if path is None:
        return None
    try:
        return Path(path).resolve().relative_to(out.resolve()).as_posix()
    except ValueError:
        return str(path)


def finished(cell: Cell, run_dir: Path) -> bool:
    if not (run_dir / "test_metrics.json").exists():
        return False
    saved = normalized(json.loads((run_dir / "config.json").read_text()))
    if saved != normalized(cell.config.to_dict()):
        raise QkdError(f"{run_dir} holds a finished run of another configuration than this grid's cell; "
                       f"use another --out or delete that folder")
    return True


def check_data(spec: GridSpec, data_dir: str | None) -> None:
    """Every dataset of the grid is readable, before any cell starts (a grid must not die mid-way)."""
    from ...data import bundle
    from ...data.sources import data_root

    for dataset in spec.datasets:
        bundle.load_split(dataset, data_root(data_dir), train=False)


def run_grid(spec: GridSpec, out: str | Path, workers: int = 1, executor: str = "processes",
             data_dir: str | None = None, progress: bool = True,
             torch_device: str = "auto", stack: bool = True) -> list[dict[str, Any]]:
    """Run every cell of a grid into ``out/runs/<cell>``, teachers first; finished cells are skipped,
    interrupted ones resume, and every cell is validated before the first one starts.

    Args:
        spec: the grid (``load_spec(toml_file)``, or built in Python).
        out: the grid folder: runs/, results.json, results.csv, grid.json.
        workers: cells run at once (processes or Ray tasks).
        executor: ``"processes"`` or ``"ray"``.
        data_dir: where the datasets live.
        progress: progress bars.
        torch_device: where teachers (and teacher logits) run: ``auto`` (CUDA when available),
            ``cpu``, ``cuda[:N]``; students stay on the CPU (devices/torch_device.py).
        stack: students of one shape (seeds, settings that change only the loss) train as one
            stacked model (``stack_groups``); False trains every cell alone. Results agree to
            float rounding.

    Returns:
        One results row per finished run (teachers included), as in results.json.

    Example:
        >>> rows = run_grid(GridSpec(datasets=["digits"], classes=["0-1"], teachers=["none"], seeds=[0]), "runs/g")
        >>> write_report("runs/g")  # qkd_pl.experiments.sweeps.report
    """
    out = Path(out)
    cells = check_cells(expand(spec, out))
    resolve_torch_device(torch_device)
    check_data(spec, data_dir)
    for cell in cells:  # students: the CPU unless cuda is asked for and their circuit simulates in torch
        cell.torch_device = torch_device if cell.config.kind == "teacher" or torch_device == "cpu" \
            or follows_to_gpu(cell.config.student) else "auto"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "grid.json", {"spec": _spec_dict(spec), "cells": [c.id for c in cells]})
    rows: dict[str, dict[str, Any]] = {}
    failures: list[str] = []
    run_many = _executor(executor, workers)
    for phase in (0, 1, 2):
        todo = []
        for cell in (c for c in cells if c.phase == phase):
            if finished(cell, out / "runs" / cell.id):
                rows[cell.id] = row_for(cell, out)
            else:
                todo.append(cell)
        bar = tqdm(total=len(todo), desc=["teachers", "ensembles", "students"][phase], unit="run",
                   disable=None if progress and todo else True)
        for cell, row, error in run_many(stack_groups(todo, stack), str(out), data_dir):
            bar.update()
            if error is None:
                rows[cell.id] = row
            else:
                failures.append(f"{cell.id}: {error}")
                tqdm.write(f"cell {cell.id} failed: {error}")
        bar.close()
        write_results(out, [rows[c.id] for c in cells if c.id in rows])
        if failures:
            raise QkdError(f"{len(failures)} grid cell(s) failed ({failures[0]}{'; ...' if len(failures) > 1 else ''}); "
                           f"finished cells are kept in {out}/runs: fix the cause and run the same command again")
    return [rows[c.id] for c in cells]


def _spec_dict(spec: GridSpec) -> dict[str, Any]:
    return dataclasses.asdict(spec)


def _executor(kind: str, workers: int) -> Callable:
    if kind == "processes":
        return _local if workers == 1 else lambda groups, out, data_dir: _pool(groups, out, data_dir, workers)
    if kind == "ray":
        return _ray
    raise QkdError(f"unknown --executor {kind!r}; choose processes or ray")


def _attempt(cell: Cell, out: str, data_dir: str | None, threads: int | None = None):
    one_line_warnings()  # in a worker process too
    try:
        return cell, run_cell(cell, out, data_dir, threads), None
    except QkdInterrupted:  # Ctrl-C stops the grid, not the cell
        raise
    except QkdError as exc:
        return cell, None, str(exc)


def _local(groups, out, data_dir):
    for group in groups:
        yield from run_cells(group, out, data_dir)


def worker_threads(workers: int) -> int:
    """Torch threads for each of ``workers`` processes on this machine: their share of the cores
    (processes each using every core run many times slower than one)."""
    return max(1, (os.cpu_count() or 1) // workers)


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """``workers`` fresh (spawned) processes for a grid's, a tuning's or a noise study's tasks; each
    keeps freed memory for its next step (allocator.py) before its first task."""
    import multiprocessing

    from ...allocator import keep_freed_memory

    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=keep_freed_memory)


def _pool(groups, out, data_dir, workers, task: Callable = run_cells):
    """Tasks (groups of cells) in ``workers`` processes that live as long as the grid, so what a
    worker has read or traced serves its next task."""
    threads = worker_threads(workers)
    with worker_pool(workers) as pool:
        for future in [pool.submit(task, g, out, data_dir, threads) for g in groups]:
            try:
                yield from future.result()
            except BrokenProcessPool:
                raise QkdError(f"a grid worker process was killed (out of memory, or a signal); finished cells are "
                               f"kept in {out}/runs and interrupted ones resume: run the same command again") from None


def _ray(groups, out, data_dir):
    try:
        import ray
    except ImportError:
        raise QkdError("--executor ray needs Ray: pip install 'qkd-pl[ray]' (or pip install ray)") from None
    if not ray.is_initialized():
        carried = {k: os.environ[k] for k in ("QKD_COMPILE", "QKD_COMPILE_STEP")  # also on a cluster's workers
                   if k in os.environ}
        ray.init(address=os.environ.get("RAY_ADDRESS"), include_dashboard=False, log_to_driver=False,
                 ignore_reinit_error=True, runtime_env={"env_vars": carried} if carried else None)
    remote = ray.remote(num_cpus=1)(run_cells)
    for ref in [remote.remote(g, out, data_dir, 1) for g in groups]:
        yield from ray.get(ref)


def write_results(out: Path, rows: list[dict[str, Any]]) -> None:
    """results.json and results.csv, one row per finished run (teachers included)."""
    atomic_write_json(out / "results.json", rows)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "results.csv", buf.getvalue())
