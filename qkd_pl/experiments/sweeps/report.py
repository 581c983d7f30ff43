"""``qkd report DIR``: a grid's results as a Markdown report with plots.

Per configuration (every axis but the seed): test accuracy mean and sample standard
deviation over seeds; the distilled student's gain over the baseline with the same seed,
as a mean of paired differences with a 95 % t-interval (seeds pair naturally: same
initialization and batch order, only the loss differs); the same for the quantum student
over its classical control; trainable parameters split classical / quantum; the teachers'
accuracy. With only one seed there is no interval, and the report says so.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

from ...errors import QkdError
from ...training.checkpoint import atomic_write_text
from .grid import BASELINE, CEILING, COLUMNS

# A configuration: every axis of a grid but the seed (the standard columns, then any swept dotted path).
CONFIG_KEYS = ("dataset", "classes", *COLUMNS.values(), "teacher")


# What a results row holds besides its configuration and seed.
_MEASURED = {"id", "role", "seed", "test_accuracy", "best_val_accuracy", "best_epoch", "params_classical",
             "params_quantum", "params_control", "device", "seconds", "teacher_run", "run_dir", "data_source"}


def config_keys(rows: list[dict[str, Any]]) -> tuple[str, ...]:
    """What makes a configuration: the grid's fixed axes, the dotted paths it swept
    (``student.rotation``), and its bundle axes (``setting``), all columns of results.json."""
    extra = {k for r in rows for k in r if k not in _MEASURED and k not in CONFIG_KEYS}
    return CONFIG_KEYS + tuple(sorted(k for k in extra if "." in k)) + tuple(sorted(k for k in extra if "." not in k))


# What summarize adds to a configuration.
_SUMMARY = {"n", "mean", "std", "parameters", "by_seed", "runs", "gain", "quantum_over_control", "recovered"}


def _is_config_key(key: str) -> bool:
    return key in CONFIG_KEYS or "." in key or key not in _SUMMARY


def _is_bundle(key: str) -> bool:
    """A grid's bundle axis (``setting``): a plain name that is neither a standard column nor a
    measurement."""
    return "." not in key and key not in CONFIG_KEYS and key not in _MEASURED and key not in _SUMMARY


def _teacherly(rows_or_configs: list[dict[str, Any]]) -> set[str]:
    """Bundle axes a baseline has no value of ("-" in every baseline): its distillation settings."""
    baselines = [r for r in rows_or_configs if r.get("teacher") == BASELINE]
    bundles = {k for r in rows_or_configs for k in r if _is_bundle(k)}
    return {k for k in bundles if baselines and all(r.get(k) == "-" for r in baselines)}



def data_sources(rows: list[dict[str, Any]]) -> dict[str, str]:
    """dataset -> how its files are labelled, for datasets whose files are not the originals."""
    return {r["dataset"]: r["data_source"] for r in rows if r.get("data_source")}


# results.csv holds text; these columns are numbers or flags in results.json
_INT_COLUMNS = ("qubits", "seed", "best_epoch", "params_classical", "params_quantum", "params_control")
_FLOAT_COLUMNS = ("test_accuracy", "best_val_accuracy", "seconds")


def read_results(path: str | Path) -> list[dict[str, Any]]:
    """The rows of another grid's results.json or results.csv (a committed reproduction's table),
    to report beside a folder's own; their run folders are not needed (no curves for them)."""
    import csv

    path = Path(path)
    if not path.is_file():
        raise QkdError(f"--also {path}: not a file; give another grid's results.json or results.csv")
    if path.suffix == ".json":
        try:
            rows = json.loads(path.read_text())
        except ValueError:
            raise QkdError(f"--also {path}: not valid JSON") from None
        return [{**r, "run_dir": str(path.parent / r["run_dir"]) if r.get("run_dir") else None} for r in rows]
    rows = []
    with path.open(newline="") as fh:
        for raw in csv.DictReader(fh):
            row: dict[str, Any] = {k: (v if v != "" else None) for k, v in raw.items()}
            for k in _INT_COLUMNS:
                row[k] = int(row[k]) if row.get(k) is not None else None
            for k in _FLOAT_COLUMNS:
                row[k] = float(row[k]) if row.get(k) is not None else None
            if row.get("control") is not None:
                row["control"] = row["control"] == "True"
            rows.append(row)
    return rows


def load_results(folder: str | Path) -> list[dict[str, Any]]:
    path = Path(folder) / "results.json"
    if not path.exists():
        raise QkdError(f"{path} not found; run qkd grid (or qkd reproduce) with --out {folder} first")
    return json.loads(path.read_text())


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else float("nan"))


def paired_gain(after: dict[int, float], before: dict[int, float]) -> dict[str, Any] | None:
    """Mean of after - before over the seeds both have, with a 95 % t-interval."""
    seeds = sorted(set(after) & set(before))
    if not seeds:
        return None
    d = [after[s] - before[s] for s in seeds]
    mean = statistics.fmean(d)
    if len(d) < 2:
        return {"mean": mean, "low": float("nan"), "high": float("nan"), "n": 1}
    from scipy.stats import t

    half = t.ppf(0.975, len(d) - 1) * statistics.stdev(d) / math.sqrt(len(d))
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": len(d)}


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    students = [r for r in rows if r.get("role") in ("baseline", "distilled", "ceiling")]
    if any("pool" in r for r in students):  # rows of grids made before pools (qkd report --also): what they were
        students = [r if "pool" in r else {**r, "pool": "-" if r.get("teacher") in (BASELINE, CEILING)
                                           or r.get("distill.transfer", "none") in ("none", "-") else "seen"}
                    for r in students]
    teachers = [r for r in rows if r.get("role") == "teacher"]
    groups: dict[tuple, dict[int, float]] = defaultdict(dict)
    params: dict[tuple, dict[str, int]] = {}
    runs: dict[tuple, list[str]] = defaultdict(list)
    keys = config_keys(rows)
    settings = _teacherly(students)
    for r in students:
        key = tuple(r.get(k) for k in keys)
        groups[key][r["seed"]] = r["test_accuracy"]
        params[key] = {"classical": r["params_classical"], "quantum": r["params_quantum"],
                       "control": r.get("params_control", 0)}
        runs[key].append(r["run_dir"])
    configs = []
    for key, by_seed in groups.items():
        cfg = dict(zip(keys, key))
        mean, std = mean_std(list(by_seed.values()))
        entry = {**cfg, "n": len(by_seed), "mean": mean, "std": std, "parameters": params[key],
                 "by_seed": by_seed, "runs": runs[key]}
        if cfg["teacher"] != BASELINE:
            as_baseline = {**cfg, "teacher": BASELINE, **{k: "-" for k in keys if k.startswith("distill.")
                                                          or k in settings}}
            base = groups.get(tuple(as_baseline[k] for k in keys))
            entry["gain"] = paired_gain(by_seed, base) if base else None
        if cfg["control"]:  # the quantum student it stands in for (a width-matched control's too)
            quantum = _quantum_of(cfg, groups, keys)
            entry["quantum_over_control"] = paired_gain(quantum, by_seed) if quantum else None
        configs.append(entry)
    for entry in configs:  # what a teacher recovers of the pool's value: its gain over the ceiling's
        transfer = entry.get("distill.transfer")
        if entry["teacher"] in (BASELINE, CEILING) or transfer in (None, "-", "none") or not entry.get("gain"):
            continue
        as_ceiling = {**{k: entry[k] for k in keys}, "teacher": CEILING,
                      **{k: "-" for k in keys if k.startswith("distill.") or k in settings},
                      "distill.transfer": transfer, "distill.transfer_labels": "true"}
        ceiling = groups.get(tuple(as_ceiling.get(k) for k in keys))
        base = groups.get(tuple({**as_ceiling, "teacher": BASELINE, "distill.transfer": "-",
                                 "distill.transfer_labels": "-"}.get(k) for k in keys))
        if ceiling and base:
            entry["recovered"] = recovered_fraction(entry["by_seed"], ceiling, base)
    return {"configs": configs,
            "teachers": [{k: t.get(k, "-") for k in ("dataset", "classes", "teacher", "pool", "test_accuracy",
                                                     "params_classical")} for t in teachers]}


def recovered_fraction(distilled: dict[int, float], ceiling: dict[int, float], baseline: dict[int, float],
                       ) -> dict[str, Any] | None:
    """(distilled - baseline) / (ceiling - baseline), the ratio of the mean gains over the seeds all
    three have, with a 95 % Fieller interval: the fractions R for which the paired t-test of
    gain - R * ceiling's gain = 0 over those seeds does not reject, the same t-statistics as the
    gains' intervals (a percentile bootstrap over five seeds is too narrow). ``low`` and ``high`` are
    None when that set is unbounded, which happens exactly when the ceiling's own gain is not clear
    of zero (the set is then the whole line or the line less an interval). None below 2 seeds, or
    when the ceiling gains nothing on average (no fraction of nothing)."""
    import numpy as np
    from scipy.stats import t

    seeds = sorted(set(distilled) & set(ceiling) & set(baseline))
    if len(seeds) < 2:
        return None
    gain = np.array([distilled[s] - baseline[s] for s in seeds])
    top = np.array([ceiling[s] - baseline[s] for s in seeds])
    if top.mean() <= 0:
        return None
    n, q = len(seeds), t.ppf(0.975, len(seeds) - 1) ** 2
    cov = np.cov(gain, top)  # sample (co)variances, n - 1
    # n (g - R c)^2 <= q (s_gg - 2 R s_gc + R^2 s_cc): a R^2 + b R + c <= 0
    a = n * top.mean() ** 2 - q * cov[1, 1]
    b = -2 * (n * gain.mean() * top.mean() - q * cov[0, 1])
    c = n * gain.mean() ** 2 - q * cov[0, 0]
    low = high = None
    if a > 0:  # bounded: between the roots
        root = math.sqrt(max(b * b - 4 * a * c, 0.0))
        low, high = (-b - root) / (2 * a), (-b + root) / (2 * a)
    return {"mean": float(gain.mean() / top.mean()), "low": None if low is None else float(low),
            "high": None if high is None else float(high), "n": n, "ceiling_gain": float(top.mean())}


def _bundle_fields(folder: Path, axis: str) -> frozenset[str]:
    """The columns the grid's bundles of ``axis`` set (from its grid.json), or none; a standard
    field is its column (``student.ansatz`` is ``ansatz``)."""
    try:
        bundles = json.loads((folder / "grid.json").read_text())["spec"].get("bundles", {})
    except (OSError, ValueError, KeyError):
        return frozenset()
    return frozenset(COLUMNS.get(p, p) for fields in bundles.get(axis, {}).values() for p in fields)


def _quantum_of(cfg: dict[str, Any], groups: dict[tuple, dict[int, float]], keys: tuple[str, ...]):
    """The by-seed accuracies of the quantum student a control stands in for: everything equal but
    the control fields and the bundle names (a bundle may be what made it a control); None unless
    exactly one configuration fits."""
    free = {"control", "student.control_match"} | {k for k in keys if _is_bundle(k)}
    fixed = [(i, k) for i, k in enumerate(keys) if k not in free]

    def quantum(g: tuple) -> bool:
        fields = dict(zip(keys, g))
        return not fields["control"] and fields.get("student.control_match") in (None, "-", "parameters")

    found = [g for g in groups if quantum(g) and all(g[i] == cfg[k] for i, k in fixed)]
    return groups[found[0]] if len(found) == 1 else None


def overall_gains(configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The paper's headline form (mean gain per dataset), with the per-configuration intervals counted."""
    out = []
    for key, comparison, ceiling in (("gain", "distilled - baseline", False), ("gain", "ceiling - baseline", True),
                                     ("quantum_over_control", "quantum - classical control", None)):
        for ds in sorted({c["dataset"] for c in configs}):
            gains = [c[key] for c in configs if c["dataset"] == ds and c.get(key)
                     and (ceiling is None or (c.get("teacher") == CEILING) == ceiling)]
            if not gains:
                continue
            known = [g for g in gains if not math.isnan(g["low"])]
            out.append({"dataset": ds, "comparison": comparison, "n": len(gains),
                        "mean": 100 * statistics.fmean(g["mean"] for g in gains),
                        "above": sum(g["low"] > 0 for g in known), "below": sum(g["high"] < 0 for g in known),
                        "includes": len(gains) - sum(g["low"] > 0 or g["high"] < 0 for g in known)})
    return out


def _pct(x: float) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}"


def format_fraction(r: dict[str, Any]) -> str:
    """``0.95 [0.80, 1.10]``, or ``0.95 [unbounded]`` where the ceiling's gain may be zero."""
    if r["low"] is None:
        return f"{r['mean']:.2f} [unbounded]"
    return f"{r['mean']:.2f} [{r['low']:.2f}, {r['high']:.2f}]"


def format_gain(g: dict[str, Any] | None) -> str:
    if not g:
        return "-"
    if g["n"] < 2:
        return f"{100 * g['mean']:+.2f} (1 seed, no interval)"
    return f"{100 * g['mean']:+.2f} [{100 * g['low']:+.2f}, {100 * g['high']:+.2f}]"


def method(c: dict[str, Any]) -> str:
    if c["student"] == "hybrid-cnn":
        return "hybrid-cnn" + (f" pool {c['pool']}" if c.get("pool") not in (None, "-") else "")
    swept = "".join(f" {k.split('.')[-1]}={c[k]}" for k in c if "." in k)
    pool = f" pool {c['pool']}" if c.get("pool") not in (None, "-") else ""
    return (f"{c['reducer']}+{c['encoding']}+{c['ansatz']}{swept}{pool}"
            + (" (classical control)" if c["control"] else ""))


def _settings_grid(configs: list[dict[str, Any]], shown: Callable[[str], str] = str):
    """The distilled configurations as (regime, setting) -> configuration, with labels: a regime
    is everything but the teacher and its distill.* fields; labels name only what varies."""
    distilled = [c for c in configs if c.get("gain") and any(k.startswith("distill.") for k in c)]
    if not distilled:
        return None

    def varying(keys):
        return [k for k in keys if len({str(c.get(k)) for c in distilled}) > 1]

    def determined(key, by):  # named already by the bundle names in ``by``
        seen: dict[tuple, set[str]] = defaultdict(set)
        for c in distilled:
            seen[tuple(c.get(b) for b in by)].add(str(c.get(key)))
        return all(len(v) == 1 for v in seen.values())

    every = sorted({k for c in distilled for k in c if k.startswith("distill.")})
    settings = sorted(_teacherly(configs))  # named settings (bundles): their names say it
    setting_keys = settings or varying(every) or every  # one setting: say what it was
    named = varying(sorted({k for c in distilled for k in c if _is_bundle(k)} - set(settings)))
    fields = varying(["student", "reducer", "encoding", "ansatz", "control",
                      *sorted({k for c in distilled for k in c if "." in k and not k.startswith("distill.")})])
    regime_keys = ["dataset", *varying(["classes"]), "qubits", *named,
                   *[k for k in fields if not (named and determined(k, ["dataset", "qubits", *named]))]]
    regimes = sorted({tuple(c[k] for k in regime_keys) for c in distilled}, key=str)
    settings = sorted({(c["teacher"], *(c[k] for k in setting_keys)) for c in distilled}, key=str)
    cell = {(tuple(c[k] for k in regime_keys), (c["teacher"], *(c[k] for k in setting_keys))): c for c in distilled}

    def short(key: str) -> str:
        return key.split(".")[-1]

    regime_labels = [shown(r[0]) + " " + ", ".join(f"{short(k)}={v}" for k, v in zip(regime_keys[1:], r[1:]))
                     for r in regimes]
    setting_labels = [", ".join(map(str, st)) for st in settings]
    return regimes, settings, cell, regime_labels, setting_labels, ["teacher", *map(short, setting_keys)]


def recovered_table(configs: list[dict[str, Any]], shown: Callable[[str], str] = str) -> list[str]:
    """What each distilled student with a transfer set recovers of the ceiling's gain (its pool with
    the true labels), by whether its teacher saw the pool."""
    rows = [c for c in configs if c.get("recovered")]
    if not rows:
        return []
    named = sorted({k for c in rows for k in c if _is_bundle(k) and k != "pool"})
    lines = ["", "## The transfer pool: what the teacher recovers", "",
             "The ceiling is the same student trained on the same pool with its true labels. Fraction recovered = "
             "(distilled - baseline) / (ceiling - baseline), mean gains over the seeds, [95 % Fieller interval: "
             "the fractions a paired t-test over the seeds does not reject; unbounded where the ceiling's own gain "
             "is not clear of zero]. pool seen: the teacher was trained on the pool with its labels; unseen: it never saw it.",
             ""]
    columns = ["dataset", "qubits", *named, "teacher", "pool", "gain over baseline", "ceiling's gain",
               "fraction recovered"]
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for c in sorted(rows, key=lambda c: (c["dataset"], c["qubits"], *(str(c[k]) for k in named), c["teacher"],
                                         str(c.get("pool")))):
        r = c["recovered"]
        cells = [shown(c["dataset"]), c["qubits"], *(c[k] for k in named), c["teacher"], c.get("pool", "seen"),
                 format_gain(c["gain"]), f"{100 * r['ceiling_gain']:+.2f}",
                 format_fraction(r)]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return lines


def settings_table(configs: list[dict[str, Any]], shown: Callable[[str], str] = str) -> list[str]:
    """Where a grid sweeps distillation settings (``distill.*`` axes): one row per setting, one
    column per regime (dataset, qubits and the other swept student fields), each cell the paired
    gain over that regime's baseline, so where a setting helps and where it hurts reads at a glance."""
    grid = _settings_grid(configs, shown)
    if grid is None:
        return []
    regimes, settings, cell, regime_labels, setting_labels, setting_names = grid
    lines = ["", "## Distillation settings against the baseline", "",
             "Paired gain of each setting over the labels-only baseline of the same regime and seed (points, 95 % "
             "t-interval); bold where the interval lies above zero.", "",
             "| " + ", ".join(setting_names) + " | " + " | ".join(regime_labels) + " |",
             "|---|" + "---|" * len(regimes)]
    for st, label in zip(settings, setting_labels):
        row = []
        for r in regimes:
            g = cell.get((r, st), {}).get("gain")
            text = format_gain(g)
            row.append(f"**{text}**" if g and g["n"] > 1 and g["low"] > 0 else text)
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    return lines


def _gain_map(folder: Path, configs: list[dict[str, Any]], shown: Callable[[str], str]) -> bool:
    """The settings table as a picture: mean paired gain per setting (rows) and regime (columns),
    red where distillation hurt, blue where it helped; * where the interval excludes zero."""
    grid = _settings_grid(configs, shown)
    if grid is None:
        return False
    import matplotlib.pyplot as plt
    import numpy as np

    regimes, settings, cell, regime_labels, setting_labels, _ = grid
    gains = [[cell.get((r, st), {}).get("gain") for r in regimes] for st in settings]
    values = np.array([[100 * g["mean"] if g else np.nan for g in row] for row in gains])
    limit = max(1.0, float(np.nanmax(np.abs(values))))
    fig, ax = plt.subplots(figsize=(2 + 0.75 * len(regimes), 1.5 + 0.4 * len(settings)))
    image = ax.imshow(values, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    for i, row in enumerate(gains):
        for j, g in enumerate(row):
            if g:
                sure = g["n"] > 1 and (g["low"] > 0 or g["high"] < 0)
                ax.text(j, i, f"{100 * g['mean']:+.1f}" + ("*" if sure else ""), ha="center", va="center", fontsize=6)
    ax.set_xticks(range(len(regimes)), regime_labels, rotation=60, ha="right", fontsize=6)
    ax.set_yticks(range(len(settings)), setting_labels, fontsize=6)
    ax.set_title("gain over the labels-only student (points; * 95 % interval excludes 0)", fontsize=8)
    fig.colorbar(image, ax=ax, shrink=0.6)
    fig.tight_layout()
    fig.savefig(folder / "plots" / "gain_by_setting.png", dpi=130, bbox_inches="tight")  # long regime labels
    plt.close(fig)
    return True


class NoPairs(QkdError):
    """A contrast no configuration of the results ran with both of its values."""


def contrast_table(configs: list[dict[str, Any]], key: str, a: Any, b: Any,
                   shown: Callable[[str], str] = str, bundled: frozenset[str] = frozenset()) -> list[str]:
    """``key = a`` against ``key = b`` in every configuration that has both, all else equal: the
    paired gain of a over b by seed (``distill.transfer_labels`` soft over hard, for instance).
    ``bundled``: when ``key`` is a bundle axis, the fields its bundles set, which differ with it."""
    if not any(key in c for c in configs):
        raise QkdError(f"--contrast {key}: no such column in the results (columns: "
                       f"{', '.join(sorted({k for c in configs for k in c if '.' in k}))})")
    index = {tuple(sorted((k, str(v)) for k, v in c.items() if _is_config_key(k) and k not in bundled)): c
             for c in configs}
    lines = ["", f"## {key.split('.')[-1]} = {a} against {b}", "",
             f"Paired gain of {key} = {a} over {key} = {b}, everything else equal (points, 95 % t-interval).", "",
             "| configuration | gain |", "|---|---|"]
    n = 0
    # a configuration's label: its bundle names where it has them (they name its fields), else its swept fields
    named = sorted({k for c in configs for k in c if _is_bundle(k)})
    swept = sorted({k for c in configs for k in c if "." in k})
    shown_keys = [k for k in named if len({str(c.get(k)) for c in configs}) > 1] if named else swept
    for c in sorted(configs, key=lambda c: str(sorted(c.items(), key=str))):
        if str(c.get(key)) != str(a):
            continue
        other = index.get(tuple(sorted((k, str(b) if k == key else str(v)) for k, v in c.items()
                                       if _is_config_key(k) and k not in bundled)))
        if other is None:
            continue
        n += 1
        label = ", ".join([shown(c["dataset"]), f"{c['qubits']}q"] + [f"{k.split('.')[-1]}={c[k]}" for k in shown_keys
                                                                        if k != key])
        g = paired_gain(c["by_seed"], other["by_seed"])
        text = format_gain(g)
        lines.append(f"| {label}, teacher {c['teacher']} | {f'**{text}**' if g and g['n'] > 1 and g['low'] > 0 else text} |")
    if not n:
        raise NoPairs(f"--contrast {key}={a},{b}: no configuration was run with both values")
    return lines


def write_report(folder: str | Path, title: str | None = None,
                 published: list[dict[str, Any]] | None = None, notes: list[str] | None = None,
                 also: list[str | Path] = (), contrasts: list[tuple[str, str, str]] = (),
                 contrasts_where_run: bool = False) -> Path:
    """report.md and plots/ in ``folder``, from its results.json.

    Args:
        folder: a grid folder (``qkd grid`` / ``qkd reproduce`` / ``run_grid`` output).
        title: the report's title; default from the folder's name.
        published: the paper's numbers to set beside ours (``qkd reproduce``).
        notes: lines on the protocol, printed above the tables.
        also: other grids' results.json / results.csv whose rows are reported beside the folder's
            own (a run id in both is refused).
        contrasts: (column, a, b): a table of the paired gain of column = a over column = b.
        contrasts_where_run: a preset's contrasts (``qkd reproduce``): one that no configuration of
            these results ran with both values (a restricted --datasets, --part or --qubits) gets a
            line saying so rather than refusing the report (a column that does not exist still does).

    Returns:
        The path of report.md.

    Example:
        >>> write_report("runs/my-grid")
        PosixPath('runs/my-grid/report.md')
    """
    folder = Path(folder)
    rows = load_results(folder)
    own = {r.get("id") for r in rows} - {None}
    for path in also:
        extra = read_results(path)
        twice = sorted(own & {r.get("id") for r in extra})
        if twice:
            raise QkdError(f"--also {path}: run {twice[0]} is also in {folder}/results.json; report each run once")
        rows += extra
        own |= {r.get("id") for r in extra} - {None}
    summary = summarize(rows)
    if not summary["configs"]:
        raise QkdError(f"{folder}/results.json holds no student runs yet")
    sources = data_sources(rows)

    def shown(dataset: str) -> str:  # a declared copy is named wherever its numbers appear
        return f"{dataset} ({sources[dataset]})" if dataset in sources else dataset

    plots = _plots(folder, summary, shown)
    lines = [f"# {title or 'qkd-pl report: ' + folder.name}", ""]
    for dataset, label in sorted(sources.items()):
        lines += [f"Data: {dataset} is {label}, not the original files (see the provenance in each run's "
                  f"test_metrics.json); its numbers compare with published ones only approximately.", ""]
    for note in notes or []:
        lines += [note, ""]
    lines += ["Test accuracy (%) of the best-on-validation checkpoint, mean +- sample standard deviation over "
              "seeds (n). Gains are paired by seed: mean difference [95 % t-interval], in points.", ""]
    if summary["teachers"]:
        pools = any(t["pool"] != "-" for t in summary["teachers"])  # a grid with both protocols
        lines += ["## Teachers", "", "| dataset | classes | teacher |" + (" trained on the students' pool |" if pools
                                                                            else "") + " test accuracy | parameters |",
                  "|---|---|---|---|---|" + ("---|" if pools else "")]
        lines += [f"| {shown(t['dataset'])} | {t['classes']} | {t['teacher']} | " + (f"{t['pool']} | " if pools else "")
                  + f"{_pct(t['test_accuracy'])} | {t['params_classical']:,} |" for t in summary["teachers"]]
        lines.append("")
    lines += ["## Students", "",
              "| dataset | classes | qubits | method | teacher | test accuracy | n | gain over baseline | "
              "quantum over control | params classical / quantum |", "|---|---|---|---|---|---|---|---|---|---|"]
    for c in sorted(summary["configs"], key=lambda c: (c["dataset"], c["classes"], c["qubits"], method(c),
                                                       c["teacher"] != BASELINE, c["teacher"])):
        p = c["parameters"]
        quantum = f"{p['quantum']:,}" + (f" (control: {p['control']:,} classical)" if p["control"] else "")
        lines.append(f"| {shown(c['dataset'])} | {c['classes']} | {c['qubits']} | {method(c)} | {c['teacher']} | "
                     f"{_pct(c['mean'])} +- {_pct(c['std'])} | {c['n']} | {format_gain(c.get('gain'))} | "
                     f"{format_gain(c.get('quantum_over_control'))} | {p['classical']:,} / {quantum} |")
    overall = overall_gains(summary["configs"])
    if overall:
        lines += ["", "## Distillation and the quantum layer, summed up", "",
                  "Per dataset: the mean over configurations of each one's paired gain (points), and how many "
                  "configurations' 95 % intervals lie above zero, below it, or include it.", "",
                  "| dataset | comparison | configurations | mean gain | interval above 0 | below 0 | includes 0 |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {shown(g['dataset'])} | {g['comparison']} | {g['n']} | {g['mean']:+.2f} | {g['above']} | "
                  f"{g['below']} | {g['includes']} |" for g in overall]
    lines += recovered_table(summary["configs"], shown)
    lines += settings_table(summary["configs"], shown)
    for key, a, b in contrasts:
        try:
            lines += contrast_table(summary["configs"], key, a, b, shown, _bundle_fields(folder, key))
        except NoPairs:
            if not contrasts_where_run:
                raise
            lines += ["", f"## {key.split('.')[-1]} = {a} against {b}", "",
                      f"Not run here: no configuration of these results has both (a restricted --datasets, "
                      f"--part or --qubits)."]
    if published is not None:
        lines += ["", "## Beside the published numbers", ""]
        matched = [(pub, c) for pub in published for c in summary["configs"]
                   if all(c.get(k) == v for k, v in pub["match"].items())]
        if matched:
            lines += ["| dataset | classes | qubits | method | teacher | paper | ours | ours - paper |",
                      "|---|---|---|---|---|---|---|---|"]
            def who(m):  # the teacher, and the named setting it taught with (bundle columns)
                return ", ".join([m["teacher"], *(f"{k}={m[k]}" for k in sorted(m) if _is_bundle(k) and m[k] != "-")])

            lines += [f"| {shown(m['dataset'])} | {m['classes']} | {m['qubits']} | {pub['label']} | {who(m)} | "
                      f"{pub['accuracy']:.2f} | {_pct(m['mean'])} +- {_pct(m['std'])} | "
                      f"{100 * m['mean'] - pub['accuracy']:+.2f} |" for pub, m in matched]
        else:
            lines.append("No configuration of these runs is one the paper reports.")
    lines += ["", "## Plots", ""] + [f"![{name}](plots/{name}.png)" for name in plots]
    atomic_write_text(folder / "report.md", "\n".join(lines) + "\n")
    return folder / "report.md"


def _plots(folder: Path, summary: dict[str, Any], shown: Callable[[str], str] = str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    out = folder / "plots"
    out.mkdir(exist_ok=True)
    names = []
    configs = summary["configs"]
    # 1. Fig. 12 style: error by method, one panel per dataset and qubit count, a bar per teacher.
    panels = sorted({(c["dataset"], c["classes"], c["qubits"]) for c in configs})
    teachers = sorted({c["teacher"] for c in configs}, key=lambda t: (t != BASELINE, t))
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(max(5, 4.5 * cols), 4.5 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (ds, cl, q) in zip(axes.flat, panels):
        here = [c for c in configs if (c["dataset"], c["classes"], c["qubits"]) == (ds, cl, q)]
        methods = sorted({method(c) for c in here})
        width = 0.8 / len(teachers)
        for i, t in enumerate(teachers):
            vals = [next((c for c in here if method(c) == m and c["teacher"] == t), None) for m in methods]
            ax.bar([j + i * width for j in range(len(methods))], [100 * (1 - v["mean"]) if v else 0 for v in vals],
                   width, yerr=[100 * v["std"] if v and not math.isnan(v["std"]) else 0 for v in vals],
                   label=t if t != BASELINE else "baseline", capsize=2)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(methods))], methods, rotation=30, ha="right",
                      fontsize=7)
        ax.set_title(f"{shown(ds)} {cl}, {q} qubits", fontsize=9)
        ax.set_ylabel("test error (%)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "error_by_method.png", dpi=120)
    plt.close(fig)
    names.append("error_by_method")
    # 2. Baseline vs distilled, one point per configuration and teacher.
    pairs = [c for c in configs if c.get("gain") and c["teacher"] != CEILING]
    if pairs:
        fig, ax = plt.subplots(figsize=(5, 5))
        for t in sorted({c["teacher"] for c in pairs}):
            pts = [c for c in pairs if c["teacher"] == t]
            base = [c["mean"] - c["gain"]["mean"] for c in pts]
            ax.scatter([100 * b for b in base], [100 * c["mean"] for c in pts], label=t, s=18)
        lo = min(100 * min(c["mean"] - c["gain"]["mean"], c["mean"]) for c in pairs) - 2
        ax.plot([lo, 100], [lo, 100], "k--", lw=0.8)
        ax.set_xlabel("baseline test accuracy (%)")
        ax.set_ylabel("distilled test accuracy (%)")
        ax.set_title("above the line: distillation helped", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "baseline_vs_distilled.png", dpi=120)
        plt.close(fig)
        names.append("baseline_vs_distilled")
    # 3. Training curves: validation accuracy per epoch, mean over seeds, per dataset.
    for ds in sorted({c["dataset"] for c in configs}):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        drawn = 0
        for c in [c for c in configs if c["dataset"] == ds][:24]:
            # run_dir is relative to the grid folder (absolute in results of qkd-pl before 0.2: kept as is)
            curves = [json.loads((folder / r / "metrics.json").read_text()) for r in c["runs"]
                      if (folder / r / "metrics.json").exists()]
            if not curves or not curves[0]:
                continue
            epochs = min(len(h) for h in curves)
            mean = [statistics.fmean(h[e]["val_accuracy"] for h in curves) for e in range(epochs)]
            ax.plot(range(1, epochs + 1), [100 * m for m in mean], lw=1,
                    label=f"{c['classes']} {c['qubits']}q {method(c)} / {c['teacher']}")
            drawn += 1
        if not drawn:  # runs merged from a table (--also) have no curves here: no empty plot
            plt.close(fig)
            continue
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("validation accuracy (%)")
        ax.set_title(f"{shown(ds)}: training curves (mean over seeds)", fontsize=9)
        ax.legend(fontsize=5, ncol=2)
        fig.tight_layout()
        fig.savefig(out / f"curves_{ds}.png", dpi=120)
        plt.close(fig)
        names.append(f"curves_{ds}")
    if _gain_map(folder, configs, shown):
        names.append("gain_by_setting")
    return names
