"""Small helpers the command line and the demo share: a Markdown table, JSON-safe rows, the
distinct warning messages of a run, and a progress line on stderr.

Examples
--------
>>> print(table([{"method": "MAP", "rmse": 0.5}], ["method", "rmse"]))
| method | rmse |
|---|---|
| MAP | 0.500 |
"""

from __future__ import annotations

import math
import sys

from bayesreg import _progress


def table(rows: list[dict], columns: list[str]) -> str:
    def fmt(v):
        if v is None:
            return "—"
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def json_rows(rows):
    return [{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
             for k, v in r.items()} for r in rows]


def messages(caught) -> list[str]:
    """The distinct warning messages recorded, whole and in order (one line each)."""
    out = []
    for w in caught:
        text = " ".join(str(w.message).split())
        if text not in out:
            out.append(text)
    return out


def say(text: str) -> None:
    """A progress line on stderr, unless silenced (``--quiet``, ``BAYESREG_PROGRESS=0``)."""
    if not _progress.is_silenced():
        print(text, file=sys.stderr, flush=True)
