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

from bayesreg._validation import Setting


def key_from_seed(seed) -> jax.Array:
    """The JAX key of a user's ``seed``: an integer >= 0 of any size.

    Seeds below 2³² give ``jax.random.key(seed)`` (the keys every earlier release used). A
    larger seed is cut into 32-bit words, lowest first, and the words above the first are
    folded into the first word's key one by one (``jax.random.fold_in``): every bit counts,
    so 2³² and 0 are different seeds, the key is the same under float32 and float64 (where
    ``jax.random.key`` alone keeps 32 bits under the first and overflows above 2⁶³ under the
    second), and ``seed=2**64`` or ``2**70`` works instead of raising ``OverflowError``.

    Examples
    --------
    >>> import jax
    >>> from bayesreg._random import key_from_seed
    >>> same = jax.random.key_data(key_from_seed(7)) == jax.random.key_data(jax.random.key(7))
    >>> bool(same.all())
    True
    >>> a, b = (jax.random.key_data(key_from_seed(s)) for s in (0, 2**64))
    >>> bool((a == b).all())
    False
    """
    seed = Setting("int", 0).check("seed", seed, example=0)
    key = jax.random.key(seed & 0xFFFFFFFF)
    seed >>= 32
    while seed:
        key = jax.random.fold_in(key, seed & 0xFFFFFFFF)
        seed >>= 32
    return key


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
