"""``qkd tune``: choose a student's hyperparameters on the validation split with Optuna.

A study is a student run (the same ``[data]``, ``[student]``, ``[train]``, ``[distill]`` tables
as a run's ``config.json``) and a search space over its fields by dotted path. Each trial trains
the configuration it draws once per tuning seed, with the test split unseen
(``train_student(test=False)``), and scores it by the mean best-epoch validation accuracy; the
first seed reports every epoch's validation accuracy, so the median pruner stops trials that
trail the median of earlier ones at the same epoch. TPE proposes the next configuration.

The study lives in an SQLite file in the output folder by default (or at any database URL
Optuna accepts, so several machines can search one study), with heartbeats: a trial whose
process was killed is marked failed after ``GRACE_S`` and tried again with the same
parameters, so a killed ``qkd tune`` started again continues where it was. A study keeps a
fingerprint of what its trials measured (``measured``); started again from a study file changed
in any of that, it is refused before a trial runs, naming what changed, rather than counting
trials of another configuration toward the budget and reporting one of them as the best. Once the study has
its trials, the best configuration is trained with the report seeds (disjoint from the tuning
seeds) and tested: the only time the test split is used. TOML layout::

    name = "fashion-4q"                  # the study's name in the database (default: the file's stem)
    trials = 30                          # complete or pruned trials to reach
    seeds = [100, 101]                   # tuning seeds
    final_seeds = [0, 1, 2, 3, 4]        # report seeds ([] skips the final runs)
    sampler_seed = 0
    prune = true                         # false: every trial runs all its epochs
    [data]    dataset = "fashion-mnist"; per_class = 50
    [student] qubits = 4
    [train]   epochs = 20; batch_size = 32
    [distill] teacher = "runs/teacher-fashion"
    [space]
    "distill.temperature" = {low = 1.0, high = 8.0, log = true}   # a float range (log-uniform)
    "train.epochs" = {low = 10, high = 30}                        # integers: an integer range
    "distill.kd_loss" = ["hinton", "dist", "lskd", "dkd"]         # a list: categorical
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...config import SECTIONS, RunConfig, config_differences, normalized, with_field
from ...errors import QkdError, one_line_warnings
from ...training import atomic_write_json
from ...training.checkpoint import atomic_write_text
from ...validate import validate
from .grid import config_section, read_toml, worker_pool, worker_threads

HEARTBEAT_S = 30  # a running trial's heartbeat; a trial silent for GRACE_S was killed
GRACE_S = 120
TOP_KEYS = {"name", "trials", "seeds", "final_seeds", "sampler_seed", "prune"}
# What a trial's value is: changing how _objective scores a trial means changing this text, so a
# study scored the old way is not continued as if its trials were scored the new way.
OBJECTIVE = "maximize the mean over the tuning seeds of the best-epoch validation accuracy"
FINGERPRINT, MEASURED = "qkd_fingerprint", "qkd_measured"  # the study's user attributes


@dataclass
class Param:
    """One dimension of the search space: ``choices``, or a ``low``..``high`` range."""

    path: str  # "distill.temperature"
    choices: list[Any] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False

    @property
    def integer(self) -> bool:
        return self.choices is None and isinstance(self.low, int) and isinstance(self.high, int)

    def suggest(self, trial) -> Any:
        if self.choices is not None:
            return trial.suggest_categorical(self.path, self.choices)
        if self.integer:
            return trial.suggest_int(self.path, self.low, self.high, log=self.log)
        return trial.suggest_float(self.path, float(self.low), float(self.high), log=self.log)

    def corners(self) -> list[Any]:
        """The values that bound what the space can propose (each checked before the study)."""
        return list(self.choices) if self.choices is not None else [self.low, self.high]


@dataclass
class TuneSpec:
    base: RunConfig
    space: list[Param]
    name: str = "qkd-tune"
    trials: int = 20
    seeds: list[int] = field(default_factory=lambda: [100])
    final_seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    sampler_seed: int = 0
    # Early validation accuracy on a few hundred images is noisy enough to prune the trial that
    # would have won (docs/kd-study/README.md): prune = false lets each trial run out.
    prune: bool = True

    def config(self, values: dict[str, Any], seed: int) -> RunConfig:
        """The student run of one point of the space and one seed."""
        cfg = self.base
        for path, value in {**values, "train.seed": seed}.items():
            cfg = with_field(cfg, path, value)
        return cfg


def load_tune_spec(path: str | Path) -> TuneSpec:
    """A study from its TOML file, every corner of its space validated; one QkdError naming the file."""
    path = Path(path)
    raw = read_toml(path, "study")
    try:
        return check_spec(_from_toml(raw, default_name=path.stem))
    except QkdError as exc:
        raise QkdError(f"{path}: {exc}") from None


def _from_toml(raw: dict[str, Any], default_name: str) -> TuneSpec:
    tables = {"data", "student", "train", "distill", "space"}
    unknown = sorted(set(raw) - TOP_KEYS - tables)
    if unknown:
        raise QkdError(f"unknown key {unknown[0]!r}; known: {', '.join(sorted(TOP_KEYS))} and the tables "
                       f"[data], [student], [train], [distill], [space]")
    sections = {name: config_section(SECTIONS[name], name, raw.get(name, {}))
                for name in ("data", "student", "train", "distill")}
    if not raw.get("space"):
        raise QkdError('[space] is empty: give at least one field to search, e.g. "train.lr" = {low = 1e-3, '
                       'high = 3e-2, log = true}')
    space = [_param(p, v) for p, v in raw["space"].items()]
    top = {k: raw[k] for k in TOP_KEYS & set(raw)}
    return TuneSpec(base=RunConfig("student", **sections), space=space, **{"name": default_name, **top})


def _param(path: str, value: Any) -> Param:
    section, _, name = path.partition(".")
    if section not in ("data", "student", "train", "distill") or \
            name not in {f.name for f in dataclasses.fields(SECTIONS.get(section, SECTIONS["data"]))}:
        raise QkdError(f"[space] {path!r} is not a field of a student run (data.*, student.*, train.*, distill.*)")
    if path in ("train.seed", "distill.teacher"):
        raise QkdError(f"[space] {path!r} cannot be searched: seeds are set by `seeds`, the teacher by [distill]")
    if isinstance(value, list):
        if not value:
            raise QkdError(f"[space] {path!r} has no choices")
        return Param(path, choices=value)
    if isinstance(value, dict) and {"low", "high"} <= set(value) and set(value) <= {"low", "high", "log"}:
        if not value["low"] < value["high"]:
            raise QkdError(f"[space] {path!r}: low must be below high")
        return Param(path, low=value["low"], high=value["high"], log=bool(value.get("log", False)))
    raise QkdError(f"[space] {path!r} = {value!r}: give a list of choices or {{low = ..., high = ..., log = ...}}")


def check_spec(spec: TuneSpec) -> TuneSpec:
    """Every value the space can take, and its bounds, with the rest of the base: a bad corner is
    refused now, not after an hour of trials."""
    if not isinstance(spec.prune, bool):
        raise QkdError(f"prune = {spec.prune!r}: give true or false")
    if not isinstance(spec.trials, int) or spec.trials < 1:
        raise QkdError(f"trials = {spec.trials!r}: give a positive number")
    if not spec.seeds:
        raise QkdError("seeds is empty: give at least one tuning seed")
    if not isinstance(spec.sampler_seed, int) or spec.sampler_seed < 0:
        raise QkdError(f"sampler_seed = {spec.sampler_seed!r}: give a whole number, 0 or more")
    shared = sorted(set(spec.seeds) & set(spec.final_seeds))
    if shared:
        raise QkdError(f"seeds {shared} are both tuning and report seeds; a report seed must not have chosen the "
                       f"configuration it reports")
    if spec.base.distill.teacher is None and any(p.path.startswith("distill.") for p in spec.space):
        raise QkdError("[space] searches distill.* but [distill] has no teacher")
    base = validate(spec.base)
    for p in spec.space:
        for value in p.corners():
            try:
                validate(spec.config({p.path: value}, spec.seeds[0]))
            except QkdError as exc:
                raise QkdError(f"[space] {p.path} = {value!r}: {exc}") from None
    return dataclasses.replace(spec, base=base)


def _storage(url: str):
    import warnings

    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    if not url.startswith(("sqlite", "postgresql", "mysql")):
        return optuna.storages.get_storage(url)
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in range(5):
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna, and the reason a study resumes
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                                  heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=2))
        except (IntegrityError, ProgrammingError):
            # qkd tune started on two machines at once on a new PostgreSQL database: both make its
            # tables, and one's CREATE collides with the other's ("duplicate key value violates unique
            # constraint pg_type_typname_nsp_index", seen in tests/.../test_tune_postgres.py). The
            # tables exist now; opening again finds them.
            if attempt == 4:
                raise
            time.sleep(0.5 * (attempt + 1))


def measured(spec: TuneSpec) -> dict[str, Any]:
    """What a trial's value depends on, as JSON: the base run less the fields the trial sets itself
    (``train.seed``, the searched ones), the space, the tuning seeds and the objective.

    Left out on purpose, as they change no finished trial's value: ``trials`` (raised to extend a
    study), ``final_seeds`` (the report runs come after the search), ``sampler_seed`` and
    ``prune`` (they steer which points are tried and which stop early), ``name`` and the storage
    (which study this is), the data folder and the number of workers."""
    base = spec.base.to_dict()
    for path in ["train.seed", *(p.path for p in spec.space)]:
        section, _, name = path.partition(".")
        (base.get(section) or {}).pop(name, None)
    space = {p.path: list(p.choices) if p.choices is not None else {"low": p.low, "high": p.high, "log": p.log}
             for p in spec.space}
    fields = {"base": base, "space": space, "seeds": list(spec.seeds), "objective": OBJECTIVE}
    teacher = getattr(spec.base.distill, "teacher", None)
    if teacher:  # by its bytes too: a teacher retrained in place, or a relative path read from elsewhere
        fields["teacher_sha256"] = _teacher_digest(teacher)
    return json.loads(json.dumps(fields))


def _teacher_digest(teacher: str) -> str | None:
    from ..single.train import checkpoint_path

    try:
        return hashlib.sha256(checkpoint_path(teacher).read_bytes()).hexdigest()
    except (QkdError, OSError):  # a missing teacher is refused by validation, with its own message
        return None


def fingerprint(fields: dict[str, Any]) -> str:
    """SHA-256 of canonical JSON: the same fields give the same text whatever their order."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _changes(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs, by the names the study file uses. The base runs are compared as ``normalized``
    compares a saved config.json: a field added to qkd-pl since the study began reads as its default
    (which keeps the old behaviour), so upgrading qkd-pl alone does not strand a study."""
    def base(d):
        try:
            return normalized(d)
        except (QkdError, TypeError, AttributeError):  # written by a qkd-pl that knew other fields
            return d

    out = config_differences(base(saved.get("base") or {}), base(now["base"]))
    a, b = saved.get("space") or {}, now["space"]
    out += [f"[space] {k!r}: {a.get(k, 'absent')!r} (saved) vs {b.get(k, 'absent')!r} (now)"
            for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    out += [f"{k}: {saved.get(k)!r} (saved) vs {now[k]!r} (now)" for k in ("seeds", "objective")
            if saved.get(k) != now[k]]
    return out


def check_resumable(study, spec: TuneSpec) -> None:
    """Record what a new study's trials measure; refuse to continue one whose trials measured
    something else, before a trial runs. Otherwise its old trials would count toward the budget,
    and the best of them, scored under another configuration, be reported as this one's best.

    A study with trials but no record (made by a qkd-pl before the fingerprint) is refused too:
    nothing says what its trials measured. One with no trials yet is recorded as new (it may have
    been made by a ``qkd tune`` stopped before its first trial)."""
    now, trials = measured(spec), len(study.get_trials(deepcopy=False))
    attrs = study.user_attrs
    new = "give a new --out folder (with --storage: another URL, or a new `name` in the study file)"
    if FINGERPRINT not in attrs:
        if trials:
            raise QkdError(f"study {spec.name!r} has {trials} trials but no record of the configuration they "
                           f"measured (made by an older qkd-pl), so they could count toward a search of another "
                           f"one. To search this study file, {new}")
        study.set_user_attr(MEASURED, now)
        study.set_user_attr(FINGERPRINT, fingerprint(now))
        return
    if attrs[FINGERPRINT] == fingerprint(now):
        return
    changed = _changes(attrs.get(MEASURED) or {}, now)
    if changed:
        more = f"; and {len(changed) - 4} more" if len(changed) > 4 else ""
        raise QkdError(f"study {spec.name!r} was searched with another configuration "
                       f"({'; '.join(changed[:4])}{more}): its {trials} trials would count toward this search "
                       f"and could be reported as its best. To search the changed configuration, {new}; to "
                       f"continue the study, restore the study file it was made from")


def open_study(spec: TuneSpec, storage: str, worker: int = 0):
    """The study, created or loaded, and refused if its trials measured another configuration
    (``check_resumable``). The sampler's seed is moved on by the trials the study already has
    (and by the worker's index): a resumed or parallel search seeded like the first would draw
    the first search's random start-up points again. And each trial's draw is seeded by its
    number too (``_tpe``), for processes on other machines that open a new study at once."""
    import optuna

    storage = _storage(storage)
    # no pruning in the first quarter of the epochs: a lower learning rate starts slower, and
    # pruning at epoch 2 of 20 (as the first study here did) selects for fast starters
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=max(2, spec.base.train.epochs // 4))
              if spec.prune else optuna.pruners.NopPruner())
    study = optuna.create_study(study_name=spec.name, storage=storage, load_if_exists=True, direction="maximize",
                                pruner=pruner)
    check_resumable(study, spec)
    seed = spec.sampler_seed + len(study.get_trials(deepcopy=False)) + 100_003 * worker
    study.sampler = _tpe(seed)
    return study


def _tpe(seed: int):
    """TPE whose random draws for a trial come from ``seed`` and the trial's number, not from one
    stream per process: ``qkd tune`` started on two machines at once opens a new study with the
    same seed (no trials yet to move it on), and each would draw the other's start-up points, every
    point tried twice (tests/experiments/sweeps/test_tune_postgres.py)."""
    import numpy as np
    import optuna

    class TrialSeededTPE(optuna.samplers.BaseSampler):
        def __init__(self):
            self.tpe = optuna.samplers.TPESampler(seed=seed)

        def before_trial(self, study, trial):
            trial_seed = int(np.random.SeedSequence([seed, trial.number]).generate_state(1)[0])
            self.tpe = optuna.samplers.TPESampler(seed=trial_seed)
            self.tpe.before_trial(study, trial)

        def infer_relative_search_space(self, study, trial):
            return self.tpe.infer_relative_search_space(study, trial)

        def sample_relative(self, study, trial, search_space):
            return self.tpe.sample_relative(study, trial, search_space)

        def sample_independent(self, study, trial, param_name, param_distribution):
            return self.tpe.sample_independent(study, trial, param_name, param_distribution)

        def after_trial(self, study, trial, state, values):
            self.tpe.after_trial(study, trial, state, values)

        def reseed_rng(self):
            self.tpe.reseed_rng()

    return TrialSeededTPE()


def _finished(study) -> int:
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


def _objective(spec: TuneSpec, out: Path, data_dir: str | None, parent: int | None = None):
    import optuna

    from ..single.train import train_student

    def objective(trial) -> float:
        values = {p.path: p.suggest(trial) for p in spec.space}
        scores = []
        for k, seed in enumerate(spec.seeds):
            def report(row, first=(k == 0)):
                if parent is not None and os.getppid() != parent:
                    # qkd tune was killed: a worker would otherwise search on alone, unseen, beside
                    # the next qkd tune; it stops as if killed too (its trial is retried on resume)
                    os._exit(1)
                if first:  # one seed's curve decides pruning: the others would only repeat it later
                    trial.report(row["val_accuracy"], step=row["epoch"])
                    if trial.should_prune():
                        raise optuna.TrialPruned()

            try:
                result = train_student(spec.config(values, seed), out / "trials", name=f"trial-{trial.number:04d}-s{seed}",
                                       data_dir=data_dir, progress=False, overwrite=True, on_epoch=report, test=False)
            except QkdError as exc:
                trial.set_user_attr("error", str(exc))
                raise
            scores.append(result.best["val_accuracy"])
        trial.set_user_attr("val_accuracies", scores)
        return statistics.fmean(scores)

    return objective


def _search(spec: TuneSpec, out: Path, storage: str, data_dir: str | None, progress: bool, worker: int = 0,
            threads: int | None = None, parent: int | None = None) -> None:
    """One worker: trials until the study has ``spec.trials`` complete or pruned ones. Parallel
    workers each take their share of the cores (``threads``): two processes each running torch on
    every core made epochs of a small student 10 to 50 times slower here."""
    import optuna
    import torch
    from optuna.study import MaxTrialsCallback

    if threads:
        torch.set_num_threads(threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    one_line_warnings()  # in a worker process too
    study = open_study(spec, storage, worker)
    stop = MaxTrialsCallback(spec.trials, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED))
    remaining = spec.trials - _finished(study)
    if remaining > 0:
        # a combination the space allows but validate refuses (hinton-classic with alpha > 1) fails
        # that trial, recorded with its reason in trials.csv, and the search goes on
        study.optimize(_objective(spec, out, data_dir, parent), n_trials=remaining, callbacks=[stop], catch=(QkdError,),
                       show_progress_bar=progress)


@dataclass
class TuneResult:
    folder: Path
    best_params: dict[str, Any]
    best_value: float
    final: list[dict[str, Any]]  # per report seed: seed, test accuracy, validation accuracy, run folder


def tune(spec: TuneSpec, out: str | Path, storage: str | None = None, workers: int = 1,
         data_dir: str | None = None, progress: bool = True) -> TuneResult:
    """Run (or continue) a study, then train and test its best configuration with the report seeds.

    Args:
        spec: the study (``load_tune_spec``).
        out: its folder: ``study.db`` (unless ``storage``), ``trials/``, ``final/``, ``trials.csv``,
            ``history.png``, ``best.json``, ``report.md``.
        storage: an Optuna database URL (default ``sqlite:///<out>/study.db``).
        workers: processes searching the study at once on this machine.
        data_dir: where the datasets live.
        progress: progress bars.

    Returns:
        The folder, the best parameters and their mean validation accuracy, and the final runs.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    storage = storage or f"sqlite:///{(out / 'study.db').resolve()}"
    if workers > 1:
        open_study(spec, storage)  # the database's tables, made once: workers making them at once collide

        threads = worker_threads(workers)
        with worker_pool(workers) as pool:
            jobs = [pool.submit(_search, spec, out, storage, data_dir, False, w, threads, os.getpid())
                    for w in range(workers)]
            for job in jobs:
                job.result()
    else:
        _search(spec, out, storage, data_dir, progress)
    study = open_study(spec, storage)
    best = study.best_trial
    _write_trials(study, spec, out)
    from ..single.train import train_student

    final = []
    for seed in spec.final_seeds:
        r = train_student(spec.config(best.params, seed), out / "final", name=f"seed-{seed}", data_dir=data_dir,
                          progress=False, resume=(out / "final" / f"seed-{seed}" / "config.json").exists())
        final.append({"seed": seed, "test_accuracy": r.test.accuracy, "val_accuracy": r.best["val_accuracy"],
                      "run_dir": str(r.run_dir.relative_to(out))})
    result = TuneResult(out, dict(best.params), best.value, final)
    atomic_write_json(out / "best.json", {"params": result.best_params, "mean_val_accuracy": result.best_value,
                                          "trial": best.number, "config": spec.config(best.params,
                                                                                       spec.seeds[0]).to_dict(),
                                          "final": final})
    atomic_write_text(out / "report.md", _report(spec, study, result))
    return result


def _write_trials(study, spec: TuneSpec, out: Path) -> None:
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["trial", "state", "value", "epochs_reported", *[p.path for p in spec.space], "note"])
    for t in trials:
        w.writerow([t.number, t.state.name, "" if t.value is None else f"{t.value:.6f}", len(t.intermediate_values),
                    *[t.params.get(p.path, "") for p in spec.space], t.user_attrs.get("error", "")])
    atomic_write_text(out / "trials.csv", buf.getvalue())
    _plot_history(trials, out / "history.png", spec.name)


def _plot_history(trials, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    done = [t for t in trials if t.state.name == "COMPLETE"]
    pruned = [t for t in trials if t.state.name == "PRUNED" and t.intermediate_values]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.scatter([t.number for t in done], [t.value for t in done], label="trial (mean validation accuracy)", s=18)
    ax.scatter([t.number for t in pruned], [max(t.intermediate_values.values()) for t in pruned], marker="x",
               color="grey", label="pruned (best epoch before pruning)", s=18)
    best, line = -math.inf, []
    for t in done:
        best = max(best, t.value)
        line.append((t.number, best))
    if line:
        ax.step(*zip(*line), where="post", color="C1", label="best so far")
    ax.set_xlabel("trial")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("validation accuracy")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def _report(spec: TuneSpec, study, result: TuneResult) -> str:
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    lines = [f"# qkd tune: {spec.name}", "",
             f"{sum(counts.values())} trials ({', '.join(f'{n} {s.lower()}' for s, n in sorted(counts.items()))}); "
             f"tuning seeds {spec.seeds}, scored by the mean best-epoch validation accuracy; the test split is used "
             f"only by the final runs below (report seeds {spec.final_seeds}).", "",
             "| parameter | best value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in result.best_params.items()]
    lines += ["", f"Mean validation accuracy of the best trial: {result.best_value:.4f}.", ""]
    if result.final:
        accs = [r["test_accuracy"] for r in result.final]
        sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
        lines += ["| report seed | validation accuracy | test accuracy |", "|---|---|---|"]
        lines += [f"| {r['seed']} | {r['val_accuracy']:.4f} | {r['test_accuracy']:.4f} |" for r in result.final]
        lines += ["", f"Test accuracy over {len(accs)} report seeds: {statistics.fmean(accs):.4f} +- {sd:.4f} "
                      f"(mean +- standard deviation).", ""]
    lines += ["![search history](history.png)", "", "All trials: `trials.csv`; the chosen configuration: `best.json`.",
              ""]
    return "\n".join(lines)
