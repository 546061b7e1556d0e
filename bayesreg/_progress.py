"""A ``lax.scan`` that can report progress to a tqdm bar from inside ``jit``.

The bar is updated by a host callback about 100 times over the whole loop, so the cost is
independent of the number of steps; with ``enabled=False`` it is a plain ``lax.scan``.
"""

from __future__ import annotations

import jax
import numpy as np
from tqdm.auto import tqdm

_BARS: dict[str, tqdm] = {}


def _report(desc: str, total: int, done) -> None:
    done = int(np.max(done))  # vmapped loops (ensembles) report every member at once
    bar = _BARS.get(desc)
    if bar is None or done == 0:
        if bar is not None:
            bar.close()
        bar = _BARS[desc] = tqdm(total=total, desc=desc, leave=True)
    bar.update(done - bar.n)
    if done >= total:
        bar.close()
        _BARS.pop(desc, None)


def scan(body, init, xs, *, length: int, enabled: bool = False, desc: str = "fit",
         stride: int = 1, total: int | None = None):
    """``lax.scan(body, init, xs)`` with an optional progress bar of ``length`` steps.

    When each step of the scan runs ``stride`` units of work (rounds of updates), the bar
    counts units up to ``total`` (default ``length × stride``).
    """
    if not enabled:
        return jax.lax.scan(body, init, xs, length=length)
    every = max(1, length // 100)
    total = length * stride if total is None else total

    def wrapped(carry, x):
        i, inner = carry

        def tick():
            jax.debug.callback(
                lambda d: _report(desc, total, min(int(np.max(d)) * stride, total)), i)

        jax.lax.cond(i % every == 0, tick, lambda: None)
        inner, out = body(inner, x)

        def last():
            jax.debug.callback(lambda d: _report(desc, total, d), total)

        jax.lax.cond(i == length - 1, last, lambda: None)
        return (i + 1, inner), out

    (_, final), outs = jax.lax.scan(wrapped, (0, init), xs, length=length)
    return final, outs
