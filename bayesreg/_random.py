"""Seeded row splits and NumPy generators from JAX keys: one place for each.

Examples
--------
>>> from bayesreg._random import holdout
>>> held, kept = holdout(10, 0.2, seed=0)
>>> len(held), len(kept), sorted([*held, *kept]) == list(range(10))
(2, 8, True)
"""

from __future__ import annotations

import jax
import numpy as np


def numpy_rng(key) -> np.random.Generator:
    """A NumPy generator seeded by a JAX key's bits: the same key, the same numbers, for
    host-side randomness (draws in float64, permutations of rows)."""
    return np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())


def holdout(n: int, fraction: float, seed=None, *, rng=None) -> tuple[np.ndarray, np.ndarray]:
    """(held-out rows, kept rows), each sorted, from one seeded permutation of ``n`` rows:
    round(fraction · n) rows are held out, at least 1 (``seed`` an int, or ``rng`` a
    generator)."""
    rng = np.random.default_rng(seed) if rng is None else rng
    perm = rng.permutation(n)
    n_out = max(1, round(fraction * n))
    return np.sort(perm[:n_out]), np.sort(perm[n_out:])


def split_rows(problem, fraction: float, key) -> tuple[np.ndarray, np.ndarray]:
    """(validation rows, training rows) of ``problem`` (anything with ``n`` rows), sorted,
    from a permutation seeded by the JAX ``key``; a ``ValueError`` when none would be left
    to train on."""
    n_val = max(1, round(fraction * problem.n))
    if n_val >= problem.n:
        raise ValueError(f"validation={fraction} leaves no training rows of {problem.n}")
    return holdout(problem.n, fraction, rng=numpy_rng(key))
