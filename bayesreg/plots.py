"""Matplotlib views of a :class:`bayesreg.Predictive`. Each returns its Axes; none calls ``show``.

Example
-------
>>> import matplotlib; matplotlib.use("Agg")
>>> import numpy as np, bayesreg as br
>>> from bayesreg import plots
>>> X, y = br.datasets.book_example()
>>> post = br.fit(br.Polynomial(3), X, y, method=br.Exact(), prior=br.Gaussian(10.0))
>>> grid = np.linspace(0, 1, 50)
>>> ax = plots.bands(post.predict(grid), grid, X=X, y=y)
"""

from __future__ import annotations

import numpy as np


def bands(pred, x, *, X=None, y=None, levels=(0.68, 0.95), truth=None, ax=None,
          color="C0", label="mean"):
    """Predictive mean with central intervals at ``levels`` (shaded) over a 1-D grid.

    Parameters
    ----------
    pred : Predictive
        Predictions at the grid points.
    x : array (N,) or (N, 1)
        The grid, sorted.
    X, y : arrays, optional
        Training points to scatter.
    levels : tuple of float
        Interval probabilities; the default 0.68 and 0.95 are ≈1σ and ≈2σ for a Gaussian.
    truth : callable, optional
        True function to draw as a dashed line.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    x = np.asarray(x, dtype=float).reshape(-1)
    for i, level in enumerate(sorted(levels, reverse=True)):
        lo, hi = pred.interval(level)
        ax.fill_between(x, lo, hi, color=color, alpha=0.15 + 0.15 * i, linewidth=0,
                        label=f"{round(100 * level)}% interval")
    ax.plot(x, pred.mean, color=color, linewidth=2, label=label)
    if truth is not None:
        ax.plot(x, truth(x), "k--", linewidth=1, label="truth")
    if X is not None and y is not None:
        ax.scatter(np.asarray(X).reshape(-1), np.asarray(y), s=14, color="k", zorder=3,
                   label="data")
    return ax
