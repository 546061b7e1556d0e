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


def padded_targets(y) -> np.ndarray:
    """y (N,) or (N, T) padded to :func:`bucket` rows, with a last column that is 1 on the
    real rows and 0 on the copies: (N', 2) or (N', T + 1), for :class:`RowMasked`.

    Examples
    --------
    >>> padded_targets(np.array([1.0, 2.0])).tolist()[:3]
    [[1.0, 1.0], [2.0, 1.0], [2.0, 0.0]]
    """
    y = np.asarray(y)
    n = y.shape[0]
    mask = (np.arange(bucket(n)) < n).astype(np.float64)
    y2 = pad_rows(y.reshape(n, -1).astype(np.float64))
    return np.concatenate([y2, mask[:, None]], axis=1)


class RowMasked:
    """A likelihood over rows padded by :func:`padded_targets`: the log density of a real row
    as ``base`` gives it, 0 for a copy (weighted by the last column), so sums over the padded
    rows, their gradients and Hessians are those over the real rows. Every other attribute
    is the base likelihood's.

    Parameters
    ----------
    base : likelihood
        The likelihood of the real rows.
    multi : bool
        The targets were (N, T) (else (N,)).
    dtype : str
        The targets' dtype (the base sees them in it: class labels stay integers).

    Examples
    --------
    >>> import jax.numpy as jnp, bayesreg as br
    >>> lik = RowMasked(br.GaussianLikelihood(1.0), False, "float32")
    >>> y = jnp.asarray(padded_targets(np.zeros(3)))
    >>> lp = lik.log_prob(y, jnp.zeros((8, 1)), {})
    >>> float(lp[:3].sum() / lp[0]), float(abs(lp[3:]).sum())
    (3.0, 0.0)
    """

    def __init__(self, base, multi: bool, dtype: str):
        self.base, self.multi, self.dtype = base, bool(multi), str(dtype)

    def _target(self, y):
        """The real targets of padded rows ``y`` (the last column is the weight)."""
        target = y[..., :-1] if self.multi else y[..., 0]
        if not np.issubdtype(np.dtype(self.dtype), np.floating):  # class labels
            target = target.astype(self.dtype)
        return target

    def log_prob(self, y, out, theta):
        return self.base.log_prob(self._target(y), out, theta) * y[..., -1].astype(out.dtype)

    @property
    def output_curvature(self):
        """The base's Λ per row (:mod:`bayesreg.curvature`) times each row's weight; None
        when the base has none (the GGN then takes the Hessian of ``log_prob``)."""
        base = getattr(self.base, "output_curvature", None)
        if base is None:
            return None

        def weighted(y, out, theta):
            return base(self._target(y), out, theta) * y[:, -1, None, None].astype(out.dtype)

        return weighted

    def __getattr__(self, name):  # only called for what this class does not define
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)


jax.tree_util.register_pytree_node(
    RowMasked, lambda m: ((m.base,), (m.multi, m.dtype)),
    lambda aux, c: RowMasked(c[0], *aux))
