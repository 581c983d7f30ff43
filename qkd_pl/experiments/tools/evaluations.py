"""A run's evaluations side by side: accuracy on each device, and each one's difference from a
reference (the exact simulator, say) paired over the same test images, with its 95 % interval.

Why: a drop of a point on 1,000 images is within chance unless the two evaluations are compared
image by image; every ``qkd evaluate`` on a simulated device records which images it got right
(``correct``), so any two of them on the same images can be paired after the fact.
"""

from __future__ import annotations

import json
from pathlib import Path

from ...errors import QkdError
from ..single.per_image import paired


def read_evaluations(paths: list[Path]) -> list[tuple[str, dict]]:
    """(name, evaluation) of each ``evaluation-*.json`` among ``paths`` (files, or run folders holding them)."""
    found: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found += sorted(p.glob("evaluation-*.json"))
        elif p.is_file():
            found.append(p)
        else:
            raise QkdError(f"{p}: no such file or run folder")
    out = []
    for f in found:
        try:
            data = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise QkdError(f"{f} is not an evaluation file ({type(exc).__name__})") from None
        if not isinstance(data, dict) or "test_accuracy" not in data:
            raise QkdError(f"{f} is not an evaluation file (no test_accuracy)")
        out.append((f.name.removeprefix("evaluation-").removesuffix(".json"), data))
    if not out:
        raise QkdError("no evaluation-*.json found: run qkd evaluate RUN --device ... first")
    return out


def evaluations_table(rows: list[tuple[str, dict]], reference: str | None = None) -> str:
    """A markdown table of ``rows``; with ``reference`` (one of their names), each row's difference
    from it in points, paired over the same images, [95 % interval].

    Example:
        >>> print(evaluations_table(read_evaluations([Path("runs/hw/mnist-8q")]), "qkd.fused"))
        | evaluation | device | ... |
    """
    ref = None
    if reference is not None:
        ref = dict(rows).get(reference)
        if ref is None:
            raise QkdError(f"--against {reference!r} is not among these evaluations: {', '.join(n for n, _ in rows)}")
        if not ref.get("correct"):
            raise QkdError(f"evaluation {reference!r} records no per-image results (an IBM job evaluation, or one "
                           f"from before they were recorded): evaluate it again")
    head = "| evaluation | device | mitigation | shots | images | accuracy |" + (
        f" minus {reference}, points [95 % interval] |" if ref else "")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, e in rows:
        mitigation = e.get("mitigation", "none") + (f" ({e['zne']['extrapolator']})" if e.get("zne") else "")
        mitigation += f", head recalibrated on {e['recalibrated']['images']}" if e.get("recalibrated") else ""
        line = (f"| {name} | {e.get('evaluated_on')} | {mitigation} | {e.get('shots') or '-'} | {e.get('n_test')} | "
                f"{100 * e['test_accuracy']:.2f} % |")
        if ref:
            if e.get("correct") and len(e["correct"]) == len(ref["correct"]):
                d = paired(e["correct"], ref["correct"])
                line += f" {100 * d['mean']:+.2f} [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}] |"
            else:
                line += " - (not the same images) |"
        lines.append(line)
    return "\n".join(lines)
