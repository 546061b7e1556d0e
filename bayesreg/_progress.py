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


def scan(body, init, xs, *, length: int, enabled: bool = False, desc: str = "fit"):
    """``lax.scan(body, init, xs)`` with an optional progress bar of ``length`` steps."""
    if not enabled:
        return jax.lax.scan(body, init, xs, length=length)
    every = max(1, length // 100)

    def wrapped(carry, x):
        i, inner = carry

        def tick():
            jax.debug.callback(lambda d: _report(desc, length, d), i)

        jax.lax.cond(i % every == 0, tick, lambda: None)
        inner, out = body(inner, x)

        def last():
            jax.debug.callback(lambda d: _report(desc, length, d), length)

        jax.lax.cond(i == length - 1, last, lambda: None)
        return (i + 1, inner), out

    (_, final), outs = jax.lax.scan(wrapped, (0, init), xs, length=length)
    return final, outs
