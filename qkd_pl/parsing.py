"""Option text read into values (``--classes 0-7``), with nothing of the package below it but its errors.

``config`` reads its fields' text here and ``data`` selects classes with the same reading, so this
module sits under both and neither has to import the other to agree on what ``0-7`` means.
"""

from __future__ import annotations

from .errors import QkdError


def parse_classes(text: str | None) -> list[int] | None:
    """``"0-7"`` -> [0..7], ``"0,3,5"`` -> [0, 3, 5], ``None``/``"all"`` -> None."""
    if text is None or text.strip().lower() in ("", "all"):
        return None
    out: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = (int(p) for p in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                out.extend(range(lo, hi + 1))
            else:
                out.append(int(part))
    except ValueError:
        raise QkdError(f"cannot read --classes {text!r}; write a range like 0-7 or a list like 0,3,5") from None
    if len(set(out)) != len(out):
        raise QkdError(f"--classes {text!r} names a class twice")
    if len(out) < 2:
        raise QkdError(f"--classes {text!r} names fewer than two classes; a classifier needs at least two")
    return sorted(out)
