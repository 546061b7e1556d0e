"""Matplotlib views of predictions and priors. Each returns its Axes (or Figure) and never
calls ``show``: bands, draws, a method-comparison grid (and the panel grid it uses),
calibration, prior vs penalty, and the regularization path. A figure a helper makes itself is
laid out so that a plain ``savefig`` keeps every label inside it. Each helper imports pyplot
where it draws: 0.33 s after ``import bayesreg`` (2 shared cores), which a fit never pays.

Examples
--------
>>> import matplotlib; matplotlib.use("Agg")
>>> import numpy as np, bayesreg as br
>>> from bayesreg import plots
>>> X, y = br.datasets.book_example()
>>> post = br.fit(br.Polynomial(3), X, y, method=br.Exact(), prior=br.Gaussian(10.0))
>>> grid = np.linspace(0, 1, 50)
>>> ax = plots.bands(post.predict(grid), grid, X=X, y=y)
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from bayesreg.fit import fit
from bayesreg.methods import Exact
from bayesreg.metrics import calibration_curve, miscalibration_area
from bayesreg.priors import Gaussian


def band_label(pred, level: float) -> str:
    """What a central band of ``pred`` at ``level`` is: with one draw (a MAP / point
    estimate) it holds the likelihood's noise only, not the posterior's uncertainty."""
    pct = f"{round(100 * level)}%"
    if pred.num_draws == 1 or not np.any(np.asarray(pred.epistemic_std) > 0):
        return f"{pct} noise band (point estimate)"
    return f"{pct} predictive interval"


def bands(pred, x, *, X=None, y=None, levels=(0.68, 0.95), truth=None, ax=None,
          color="C0", label="mean", xlabel="x", ylabel="y", title=None, legend=True):
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
    xlabel, ylabel, title : str, optional
        Axis labels (put units here when known) and a title; the title defaults to what the
        bands are when this function makes the Axes.
    legend : bool
        Draw the legend (a grid of panels may want one legend only).
    """
    import matplotlib.pyplot as plt

    own = ax is None
    if own:
        _, ax = plt.subplots(figsize=(5, 3.5))
        if title is None:
            title = ("prediction with the noise band of a point estimate"
                     if band_label(pred, 0.95).endswith("(point estimate)")
                     else "predictive mean and intervals: is the data inside the bands?")
    x = np.asarray(x, dtype=float).reshape(-1)
    for i, level in enumerate(sorted(levels, reverse=True)):
        lo, hi = pred.interval(level)
        ax.fill_between(x, lo, hi, color=color, alpha=0.15 + 0.15 * i, linewidth=0,
                        label=band_label(pred, level))
    ax.plot(x, pred.mean, color=color, linewidth=2, label=label)
    if truth is not None:
        ax.plot(x, truth(x), "k--", linewidth=1, label="truth")
    if X is not None and y is not None:
        ax.scatter(np.asarray(X).reshape(-1), np.asarray(y), s=14, color="k", zorder=3,
                   label="data")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:  # 10 pt: the default titles fit a 5-inch figure at this size
        ax.set_title(title, fontsize=10)
    if legend:
        ax.legend(fontsize=7, loc="best")
    if own:
        ax.figure.tight_layout()
    return ax


def draws(pred, x, n: int = 20, *, ax=None, color="C0", seed: int = 0, xlabel="x",
          ylabel="f(x)"):
    """``n`` posterior draws of f (thin lines) over a 1-D grid, with the mean."""
    import matplotlib.pyplot as plt

    own = ax is None
    if own:
        _, ax = plt.subplots(figsize=(5, 3.5))
    x = np.asarray(x, dtype=float).reshape(-1)
    pick = np.random.default_rng(seed).choice(pred.draws.shape[0],
                                             size=min(n, pred.draws.shape[0]), replace=False)
    for i, s in enumerate(pick):
        ax.plot(x, pred.draws[s], color=color, alpha=0.3, linewidth=0.8,
                label=f"{len(pick)} posterior draws of f" if i == 0 else None)
    ax.plot(x, pred.mean, color="k", linewidth=1.5, label="mean")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title("posterior draws of f: their spread is the epistemic uncertainty",
                 fontsize=9)
    ax.legend(fontsize=7, loc="best")
    if own:  # a caller's figure is laid out by the caller
        ax.figure.tight_layout()
    return ax


def panel_grid(n: int, ncols: int | None = None, *, panel=(4.2, 3.2), **kwargs):
    """A figure of ``n`` panels in rows of at most ``ncols`` (default: 3 up to 9 panels, then
    4), each ``panel`` inches (width, height), so ten methods make three rows of four readable
    panels, not one long strip. Returns ``(fig, axes)`` with ``axes`` of shape (rows, cols);
    the panels past ``n`` are hidden.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> from bayesreg import plots
    >>> fig, axes = plots.panel_grid(10)
    >>> axes.shape, sum(a.get_visible() for a in axes.flat)
    ((3, 4), 10)
    """
    import matplotlib.pyplot as plt

    if n < 1:
        raise ValueError(f"panel_grid needs at least one panel; got n={n}")
    ncols = min(ncols or (3 if n <= 9 else 4), n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel[0] * ncols, panel[1] * nrows),
                             squeeze=False, **kwargs)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return fig, axes


def compare(result, x=None, *, truth=None, levels=(0.68, 0.95), ncols: int | None = None,
            xlabel="x", ylabel="y", titles=None):
    """A grid of bands, one panel per method of a :func:`bayesreg.compare` result, with
    shared axes (rows of ``ncols`` panels, :func:`panel_grid`). Needs one input feature;
    ``x`` defaults to a grid over the data. ``titles`` maps a method's name to its panel's
    title (e.g. with its metrics)."""
    if result.X_train.shape[1] != 1:
        raise ValueError("plots.compare draws bands over one input feature; the data has "
                         f"{result.X_train.shape[1]}")
    if x is None:
        allx = np.concatenate([result.X_train[:, 0], result.X_test[:, 0]])
        pad = 0.1 * (allx.max() - allx.min())
        x = np.linspace(allx.min() - pad, allx.max() + pad, 200)
    names = list(result.posteriors)
    fig, axes = panel_grid(len(names), ncols, sharex=True, sharey=True)
    for ax, name in zip(axes.flat, names, strict=False):
        bands(result.posteriors[name].predict(x), x, X=result.X_train, y=result.y_train,
              truth=truth, levels=levels, ax=ax, xlabel="", ylabel=ylabel,
              title=(titles or {}).get(name, name), legend=False)
        ax.scatter(result.X_test[:, 0], result.y_test, s=10, marker="x", color="C3",
                   label="test")
        # each panel names its bands (a point estimate's band is noise only); the lines and
        # points, the same in every panel, are named once below the grid
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(*zip(*[(h, lab) for h, lab in zip(handles, labels, strict=True)
                         if "%" in lab], strict=True), fontsize=8, loc="best")
    common = [(h, lab) for h, lab in zip(handles, labels, strict=True) if "%" not in lab]
    fig.legend(*zip(*common, strict=True), loc="lower center", ncol=len(common), fontsize=10,
               frameon=False)
    for (row, col), ax in np.ndenumerate(axes):  # a column's lowest panel shows x, even
        below = axes[row + 1, col] if row + 1 < axes.shape[0] else None  # above a hidden one
        if ax.get_visible() and (below is None or not below.get_visible()):
            ax.xaxis.set_tick_params(labelbottom=True)
            ax.set_xlabel(xlabel)
    fig.suptitle("predictive bands per method: where do the bands widen away from the data?")
    fig.tight_layout(rect=(0, 0.4 / fig.get_size_inches()[1], 1, 1))
    return fig


def calibration(pred, y, *, ax=None, label=None):
    """Observed against nominal coverage of central intervals (the diagonal is perfect)."""
    import matplotlib.pyplot as plt


    own = ax is None
    if own:
        _, ax = plt.subplots(figsize=(3.8, 3.8))
    nominal, observed = calibration_curve(pred, y)
    area = miscalibration_area(pred, y)
    ax.plot([0, 1], [0, 1], "k--", linewidth=1)
    ax.plot(nominal, observed, "o-", label=f"{label or 'model'} (area {area:.3f})")
    ax.set_xlabel("nominal coverage")
    ax.set_ylabel("observed coverage")
    ax.set_title("calibration: below the diagonal is overconfident", fontsize=9)
    ax.legend(fontsize=8)
    if own:  # labels inside the figure under a plain savefig
        ax.figure.tight_layout()
    return ax


def prior_vs_penalty(prior, *, lim: float = 3.0, axes=None):
    """The prior density p(φ) of one parameter and the penalty −log p(φ) it implies."""
    import matplotlib.pyplot as plt

    own = axes is None
    if own:
        _, axes = plt.subplots(1, 2, figsize=(8, 3))
    loc = float(np.asarray(getattr(prior, "loc", 0.0)))
    phi = np.linspace(loc - lim, loc + lim, 401)
    logp = np.array([float(prior.log_prob(jnp.asarray([v], jnp.float32))) for v in phi])
    pen = np.array([float(prior.penalty(jnp.asarray([v], jnp.float32))) for v in phi])
    name = type(prior).__name__
    axes[0].plot(phi, np.exp(logp), label=name)
    axes[0].set_title("prior density p(φ)")
    axes[0].set_ylabel("p(φ)")
    axes[1].plot(phi, pen, color="C1", label=name)
    axes[1].set_title("penalty λ·g(φ) = −log p(φ) + const")
    axes[1].set_ylabel("−log p(φ) + const")
    for ax in axes:
        ax.set_xlabel("φ")
        ax.legend(fontsize=8)
    if own:  # the x labels were cut off under a plain savefig
        axes[0].figure.tight_layout()
    return axes


def regularization_path(model, X, y, scales, *, likelihood=None, method=None, ax=None):
    """Coefficients of a linear-in-parameters model against the prior scale: the MAP /
    posterior mean with ±2 posterior sd bands (``Exact``) as the prior widens."""
    import matplotlib.pyplot as plt

    method = Exact() if method is None else method
    own = ax is None
    if own:
        _, ax = plt.subplots(figsize=(5.5, 3.5))
    scales = np.asarray(scales, dtype=float)
    means, sds = [], []
    for s in scales:
        post = fit(model, X, y, method=method, prior=Gaussian(float(s)),
                      likelihood=likelihood)
        if post.gaussian is not None:
            means.append(post.gaussian.mean[:-1])
            sds.append(np.sqrt(np.diag(post.gaussian.cov))[:-1])
        else:
            w = np.asarray(post.params["weights"][0])[:, :, 0]
            means.append(w.mean(0))
            sds.append(w.std(0))
    means, sds = np.array(means), np.array(sds)
    for j in range(means.shape[1]):
        ax.plot(scales, means[:, j], label=f"w{j + 1}")
        ax.fill_between(scales, means[:, j] - 2 * sds[:, j], means[:, j] + 2 * sds[:, j],
                        alpha=0.15)
    ax.set_xscale("log")
    ax.set_xlabel("prior scale s  (λ = σ²/s²)")
    ax.set_ylabel("coefficient (±2 posterior sd)")
    ax.set_title("regularization path: coefficients shrink to 0 as the prior narrows",
                 fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    if own:  # the x label was cut off under a plain savefig
        ax.figure.tight_layout()
    return ax
