"""Small helpers the command line and the demo share: a Markdown table, what its columns mean,
JSON-safe rows, the distinct warning messages of a run, the compilation time inside a fit, and a
progress line on stderr.

Examples
--------
>>> print(table([{"method": "MAP", "rmse": 0.5}], ["method", "rmse"]))
| method | rmse |
|---|---|
| MAP | 0.500 |
"""

from __future__ import annotations

import contextlib
import math
import sys

import jax.monitoring

from bayesreg import _progress

# What each column of a report's table means, so that report.md and metrics.md read on their own.
COLUMNS = {
    "method": "the method fitted (its command-line name or class name)",
    "model": "the model fitted",
    "prior_variance": "the variance s² of the Gaussian prior on every coefficient",
    "rmse": "root mean squared error of the predictive mean on the test rows, in the target's "
            "units (lower is better)",
    "nll": "mean negative log predictive density of the test targets, in nats, under the "
           "method's whole predictive (noise included): it rewards honest uncertainty, not "
           "only a good mean (lower is better)",
    "coverage_95": "fraction of test targets inside the central 95% predictive interval: 0.95 "
                   "is calibrated, lower is overconfident, higher underconfident",
    "crps": "continuous ranked probability score, in the target's units: the mean absolute "
            "error generalised to a predictive distribution (lower is better)",
    "accuracy": "fraction of test labels predicted right (higher is better)",
    "brier": "mean squared error of the predicted class probabilities (lower is better)",
    "ece": "expected calibration error of the predicted probabilities (lower is better)",
    "log_evidence": "log marginal likelihood of the training data (exact, or Laplace's "
                    "approximation); — where the method has none",
    "fit_seconds": "wall time of the fit in seconds, including JAX's tracing and compilation "
                   "(compile_seconds, where shown, is that part)",
    "compile_seconds": "the part of fit_seconds spent tracing and compiling JAX programs "
                       "(a second fit of the same shapes in the same process skips it)",
    "w1_to_nuts": "1-Wasserstein distance between the method's predictive distribution of y and "
                  "NUTS's (the reference), from 2000 draws of each per test row, averaged over "
                  "the test rows, in the target's units: 0 is the same predictive",
    "w1_floor": "the Monte Carlo floor of w1_to_nuts: the same estimate between two independent "
                "sets of 2000 NUTS draws. A method within about this much of NUTS cannot be "
                "told apart from it at this number of draws; only the excess is a difference",
}


def column_notes(columns) -> list[str]:
    """Markdown bullet lines saying what each of ``columns`` means (those known).

    Examples
    --------
    >>> notes = column_notes(["method", "w1_floor"])
    >>> notes[:2], notes[2][:45]
    (['Columns:', ''], '- `method`: the method fitted (its command-li')
    """
    notes = []
    for c in columns:
        key = "w1_to_nuts" if c.startswith("w1_to_") else c
        if key in COLUMNS:
            text = COLUMNS[key]
            if c != key:  # a named reference other than NUTS
                text = text.replace("NUTS's (the reference)", f"{c[6:]}'s (the reference)")
                text = text.replace("NUTS", c[6:])
            notes.append(f"- `{c}`: {text}.")
    return ["Columns:", "", *notes] if notes else []


@contextlib.contextmanager
def compile_clock():
    """Measure the wall time JAX spends tracing, lowering and compiling inside the block.

    Yields a one-element list holding the seconds so far: the union of the time spans that
    ``jax.monitoring`` reports for those stages (a union, because a program traced inside
    another one reports a span inside its parent's).

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> with compile_clock() as seconds:
    ...     _ = jax.jit(lambda v: jnp.sin(v) * 3.0)(jnp.arange(7.0))
    >>> seconds[0] > 0
    True
    """
    spans: list[tuple[float, float]] = []
    total = [0.0]
    stages = ("/jax/core/compile/jaxpr_trace_duration",
              "/jax/core/compile/jaxpr_to_mlir_module_duration",
              "/jax/core/compile/backend_compile_duration")

    def listener(event, start, end, **kwargs):
        if event in stages:
            spans.append((start, end))
            total[0] = _union_length(spans)

    jax.monitoring.register_event_time_span_listener(listener)
    try:
        yield total
    finally:
        jax.monitoring.unregister_event_time_span_listener(listener)
        total[0] = _union_length(spans)


def _union_length(spans) -> float:
    length, reach = 0.0, -math.inf
    for start, end in sorted(spans):
        if end > reach:
            length += end - max(start, reach)
            reach = end
    return length


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
