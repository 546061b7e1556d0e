"""Row counts padded to a few sizes, so that new input shapes compile O(log N) programs.

Every compiled program stays in memory; predicting on, or training with, every row count
from 1 to N would otherwise compile N of them. Rows are padded to the next size of the form
2ᵏ or 1.5·2ᵏ (at least 8) by repeating the last row; callers drop (predict) or mask (train)
the copies.

Examples
--------
>>> import numpy as np
>>> from bayesreg.data.buckets import bucket, pad_rows
>>> [bucket(n) for n in (1, 9, 13, 100)]
[8, 12, 16, 128]
>>> pad_rows(np.arange(3.0)[:, None]).ravel().tolist()
[0.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]
"""

from __future__ import annotations

import jax
import numpy as np


def bucket(n: int) -> int:
    """The padded row count for n rows: the smallest 2ᵏ or 1.5·2ᵏ (at least 8) that holds
    them."""
    size = 8
    while size < n:
        size = size * 3 // 2 if size & (size - 1) == 0 else size * 4 // 3
    return size


def to_device(a) -> jax.Array:
    """``a`` on the default device in the dtype JAX gives it, cast on the host.

    ``jnp.asarray`` of a NumPy array compiles a small program per shape (and one more per
    dtype cast); ``jax.device_put`` of an array already in JAX's dtype compiles none."""
    if isinstance(a, jax.Array):
        return a
    a = np.asarray(a)
    return jax.device_put(a.astype(jax.dtypes.canonicalize_dtype(a.dtype), copy=False))


def pad_rows(a, axis: int = -2):
    """``a`` (NumPy or JAX) with its rows along ``axis`` padded to :func:`bucket` size by
    repeating the last row; an empty or already bucket-sized ``a`` is returned as it is."""
    n = a.shape[axis]
    extra = bucket(n) - n
    if not n or not extra:
        return a
    rows = np.concatenate([np.arange(n), np.full(extra, n - 1)])
    index = (slice(None),) * (axis % a.ndim) + (rows,)
    return a[index]
