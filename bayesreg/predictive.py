r"""The one uncertainty interface: every method's predictions come out as a :class:`Predictive`.

For S posterior draws fₛ with noise σₛ the predictive density of y at a point x is the
equally weighted mixture

    p(y | x) = (1/S) Σₛ N(y | fₛ(x), σₛ²(x)).

* ``mean``          = (1/S) Σₛ fₛ(x)
* ``epistemic_std`` = std over draws of fₛ(x)         (population std, ddof = 0)
* ``aleatoric_std`` = sqrt((1/S) Σₛ σₛ²(x))
* ``std``           = sqrt(epistemic² + aleatoric²)   (the mixture's exact std)
* ``log_prob(y)``   = logsumexp over draws of log N(y | fₛ, σₛ²) − log S
* ``interval(p)``   = the mixture's (1−p)/2 and (1+p)/2 quantiles (bisection on its CDF)
* ``crps(y)``       = the mixture's CRPS, E|Y − y| − ½E|Y − Y'| over every pair of draws
                      (Grimit et al. 2006), in O(S·G) or O(S log S + near pairs) per point

When the predictive is exactly Gaussian — the closed-form posterior of :class:`bayesreg.Exact`,
or a single draw (MAP) — every number is analytic.

Examples
--------
>>> import numpy as np, bayesreg as br
>>> pred = br.Predictive(draws=np.zeros((1, 3)), noise_std=np.ones((1, 1)))
>>> lo, hi = pred.interval(0.95)
>>> round(float(hi[0]), 3)
1.96
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp, ndtr
from jax.scipy.stats import norm

from bayesreg._validation import check_level, check_y
from bayesreg.metrics import (
    LEVELS,
    classification_metrics,
    multitask_metrics,
    mutual_information,
    predictive_entropy,
    regression_metrics,
)

# log √(2π) as scipy.stats computes it, so the Gaussian log density equals its to the bit
_LOG_SQRT_2PI = np.log(np.sqrt(2 * np.pi))
# Elements (S × points) handled in one chunk by the mixture computations: bounds memory.
CHUNK_ELEMENTS = 1 << 22
# A Gaussian component is negligible beyond TAIL standard deviations of its mean
# (Φ(−9) ≈ 1e-19): the CRPS's pairwise term ignores nothing larger than that.
TAIL = 9.0
# Points whose CRPS pairwise term is evaluated together (grouped by cost).
PAIR_GROUP = 256
# The mixture's quantiles are bracketed by [min fₛ − BRACKET σₛ, max fₛ + BRACKET σₛ]
# (Φ(−12) ≈ 2e-33, below any level asked for) and found by QUANTILE_STEPS bisections
# (2⁻⁶⁰ of the bracket: below float64 resolution).
BRACKET = 12.0
QUANTILE_STEPS = 60


def _abs_moment(mu, sigma):
    """E|Z| for Z ~ N(mu, sigma²)."""
    z = mu / sigma
    return mu * (2.0 * norm.cdf(z) - 1.0) + 2.0 * sigma * norm.pdf(z)


@jax.jit
def _mixture_log_prob(y, f, s):
    return logsumexp(norm.logpdf(y[None, :], f, s), axis=0) - jnp.log(f.shape[0])


@partial(jax.jit, static_argnames=("iters",))
def _mixture_quantile(p, f, s, iters=QUANTILE_STEPS):
    lo = jnp.min(f - BRACKET * s, axis=0)
    hi = jnp.max(f + BRACKET * s, axis=0)

    def body(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        below = jnp.mean(norm.cdf((mid[None, :] - f) / s), axis=0) < p
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    lo, hi = jax.lax.fori_loop(0, iters, body, (lo, hi))
    return 0.5 * (lo + hi)


@jax.jit
def _mixture_abs_error(y, f, s):
    """E|Y − y| for Y from the mixture: (1/S) Σₛ E|N(y − fₛ, σₛ²)|, (N,)."""
    return jnp.mean(_abs_moment(y[None, :] - f, s), axis=0)


def _smoothing(u):
    """h(u) = 2φ(u) − 2u Φ(−u) ≥ 0: E|d + cZ| = |d| + c·h(|d|/c)."""
    return 2.0 * norm.pdf(u) - 2.0 * u * ndtr(-u)


@jax.jit
def _pairs_by_quadrature(f, s, lo, h, steps):
    """E|Y − Y'| = 2 ∫ F(1 − F) dz by the trapezoidal rule on ``steps`` points lo + k·h.

    F(1 − F) is entire and its Fourier transform decays like exp(−ω²σ²/4) (σ = the
    smallest component std), so with h = σ/2 the rule's error is about exp(−4π²) ≈ 1e-17
    of the integral; beyond TAIL·σ of every mean the integrand is below Φ(−TAIL).
    ``steps`` is traced: one program per shape, whatever the grid.
    """
    centre = 0.5 * (jnp.min(f, axis=0) + jnp.max(f, axis=0))  # small |z| on the grid
    f, lo = f - centre, lo - centre
    inv_s = 1.0 / s

    def step(k, carry):
        total, lost = carry  # Kahan summation: thousands of steps in float32
        z = lo + k.astype(lo.dtype) * h
        u = (z[None, :] - f) * inv_s
        tail = ndtr(-jnp.abs(u))  # the smaller of Φ(u), 1 − Φ(u), to full relative precision
        cdf = jnp.mean(jnp.where(u < 0, tail, 1.0 - tail), axis=0)
        sf = jnp.mean(jnp.where(u < 0, 1.0 - tail, tail), axis=0)  # 1 − F, no cancellation
        term = cdf * sf - lost
        new = total + term
        return new, (new - total) - term

    zero = jnp.zeros_like(lo)
    total, _ = jax.lax.fori_loop(0, steps, step, (zero, zero))
    return 2.0 * h * total


@jax.jit
def _near_pairs(f, s, lags):
    """Σ_{i<j≤i+lags} cᵢⱼ h((fⱼ − fᵢ)/cᵢⱼ), cᵢⱼ² = σᵢ² + σⱼ², over draws sorted by f
    (``lags`` traced: one program per shape)."""
    n = f.shape[0]
    f_pad = jnp.concatenate([f, jnp.broadcast_to(f[-1:], f.shape)])
    s_pad = jnp.concatenate([s, jnp.ones_like(s)])
    row = jnp.arange(n)[:, None]

    def lag(k, total):
        d = jax.lax.dynamic_slice_in_dim(f_pad, k, n) - f
        c = jnp.sqrt(jax.lax.dynamic_slice_in_dim(s_pad, k, n) ** 2 + s**2)
        keep = (row + k < n) & (c > 0)
        term = c * _smoothing(d / jnp.where(keep, c, 1.0))
        return total + jnp.sum(jnp.where(keep, term, 0.0), axis=0)

    return jax.lax.fori_loop(1, lags + 1, lag, jnp.zeros(f.shape[1], f.dtype))


def _pairs_by_sorting(f, s, lags: int) -> np.ndarray:
    """E|Y − Y'| = (1/S²) Σₛ Σₜ [|fₛ − fₜ| + cₛₜ h(|fₛ − fₜ|/cₛₜ)], cₛₜ² = σₛ² + σₜ², from
    draws sorted by f (float64 arrays (S, m)).

    The |fₛ − fₜ| part by the sorted-sample identity Σₛ Σₜ |fₛ − fₜ| = 2 Σᵢ (2i − S − 1) f₍ᵢ₎
    (exact, O(S log S)); the smoothing part, which decays like a Gaussian tail, over the
    pairs up to ``lags`` apart in sorted order, the caller having checked that pairs
    farther apart are more than TAIL·max c apart (h(9) ≈ 2e-20).
    """
    n = f.shape[0]
    f = f - f[n // 2]  # only differences count: centred, the weighted sum keeps its digits
    rank = np.arange(1, n + 1)[:, None]
    total = 2.0 * np.sum((2.0 * rank - n - 1.0) * f, axis=0)
    total += np.sum(2.0 * s, axis=0) / math.sqrt(math.pi)  # s = t: c h(0) = 2σ/√π
    if lags > 0:
        total += 2.0 * np.asarray(_near_pairs(jnp.asarray(f), jnp.asarray(s), lags),
                                  np.float64)
    return total / n**2


def _mixture_pairs(f, s) -> np.ndarray:
    """E|Y − Y'| for Y, Y' independent draws from the mixture (1/S) Σₛ N(fₛ, σₛ²) at each
    point: the average over all S² ordered pairs of components, exact for any S and any
    order of the draws. Each point takes whichever of two exact evaluations is cheaper:
    quadrature of 2∫F(1 − F) on G points of step min σ / 2 (S·G work: components that
    overlap), or sorting plus the pairs within reach of each other (S log S + S·L work, L
    the most neighbours within TAIL·max c of a draw: draws spread wide compared with the
    noise). Points go in groups of similar cost."""
    f64, s64 = np.asarray(f, np.float64), np.asarray(s, np.float64)
    n, m = f64.shape
    order = np.argsort(f64, axis=0, kind="stable")
    f_sorted = np.take_along_axis(f64, order, axis=0)
    s_sorted = np.take_along_axis(s64, order, axis=0)
    s_max, s_min = s64.max(axis=0), s64.min(axis=0)
    reach = TAIL * math.sqrt(2.0) * s_max
    lags = np.array([np.max(np.searchsorted(col, col + r, side="left") - np.arange(n)) - 1
                     for col, r in zip(f_sorted.T, reach, strict=True)])
    lo = f_sorted[0] - TAIL * s_max
    span = f_sorted[-1] - f_sorted[0] + 2 * TAIL * s_max
    with np.errstate(divide="ignore", invalid="ignore"):
        grid = np.where(s_min > 0, np.ceil(span / (s_min / 2)) + 1, np.inf)
    quad = grid <= lags
    cost = np.where(quad, grid, lags)
    out = np.empty(m)
    width = min(m, PAIR_GROUP)
    f, s = jnp.asarray(f), jnp.asarray(s)
    for use_quad in (True, False):
        cols = np.flatnonzero(quad == use_quad)
        cols = cols[np.argsort(cost[cols], kind="stable")]
        for start in range(0, cols.size, width):
            group = cols[start:start + width]
            take = np.pad(group, (0, width - group.size), mode="edge")
            size = int(cost[group].max())
            if use_quad:
                res = _pairs_by_quadrature(f[:, take], s[:, take],
                                           jnp.asarray(lo[take], f.dtype),
                                           jnp.asarray(s_min[take] / 2, f.dtype), size)
            else:
                res = _pairs_by_sorting(f_sorted[:, take], s_sorted[:, take],
                                        min(size, n - 1))
            out[group] = np.asarray(res)[: group.size]
    return out


def _chunked(fn, *point_args, f, s):
    """Apply ``fn(*point_args_chunk, f_chunk, s_chunk)`` over chunks of points (fixed shapes)."""
    n = f.shape[1]
    size = max(1, min(n, CHUNK_ELEMENTS // max(1, f.shape[0])))
    outs = []
    for start in range(0, n, size):
        sl = slice(start, start + size)
        pad = size - f[:, sl].shape[1]
        chunk = [np.pad(a[..., sl], [(0, 0)] * (a.ndim - 1) + [(0, pad)], mode="edge")
                 for a in (*point_args, f, s)]
        outs.append(np.asarray(fn(*chunk))[: size - pad])
    return np.concatenate(outs)


class Predictive:
    """Predictive distribution of y at N points, from S draws of f and the likelihood's noise.

    Parameters
    ----------
    draws : array (S, N)
        Draws of the latent function f at the N points.
    noise_std : array broadcastable to (S, N)
        Likelihood noise σₛ of each draw, e.g. (S, 1) for homoscedastic noise.
    analytic : tuple (mean (N,), var_f (N,)), optional
        Exact Gaussian moments of f when the posterior is Gaussian (``Exact``): the
        predictive is then N(mean, var_f + σ²) and every number below is analytic.

    Examples
    --------
    >>> import numpy as np, bayesreg as br
    >>> pred = br.Predictive(draws=np.array([[0.0], [2.0]]), noise_std=np.ones((2, 1)))
    >>> float(pred.mean[0]), float(pred.epistemic_std[0]), round(float(pred.std[0]), 4)
    (1.0, 1.0, 1.4142)
    """

    def __init__(self, draws, noise_std, analytic=None, point: str = "mean"):
        if point not in ("mean", "median"):
            raise ValueError(f"point must be 'mean' or 'median'; got {point!r}")
        self._point = point
        self.draws = np.asarray(draws)
        if self.draws.ndim != 2:
            raise ValueError(f"draws must have shape (S, N); got {self.draws.shape}")
        self._noise = np.broadcast_to(np.asarray(noise_std, self.draws.dtype), self.draws.shape)
        if analytic is None and self.draws.shape[0] == 1:
            analytic = (self.draws[0], np.zeros(self.draws.shape[1], self.draws.dtype))
        self._analytic = None if analytic is None else tuple(np.asarray(a) for a in analytic)

    @property
    def num_draws(self) -> int:
        return self.draws.shape[0]

    @property
    def is_gaussian(self) -> bool:
        """True when the predictive is exactly Gaussian (analytic numbers)."""
        return self._analytic is not None and bool(np.all(self._noise == self._noise[:1]))

    @property
    def mean(self) -> np.ndarray:
        """Predictive mean of y, (N,)."""
        return self._analytic[0] if self._analytic is not None else self.draws.mean(axis=0)

    @property
    def point(self) -> np.ndarray:
        """The point prediction, (N,): the mean, or the median over draws of f for a
        median ensemble (``reduce="median"``); ``rmse`` and ``mae`` score it."""
        return np.median(self.draws, axis=0) if self._point == "median" else self.mean

    @property
    def epistemic_std(self) -> np.ndarray:
        """Std of f over the posterior, (N,)."""
        if self._analytic is not None:
            return np.sqrt(self._analytic[1])
        return self.draws.std(axis=0)

    @property
    def aleatoric_std(self) -> np.ndarray:
        """sqrt of the mean noise variance over draws, (N,)."""
        return np.sqrt(np.mean(self._noise**2, axis=0))

    @property
    def std(self) -> np.ndarray:
        """Predictive std of y (epistemic and aleatoric together), (N,)."""
        return np.sqrt(self.epistemic_std**2 + self.aleatoric_std**2)

    def interval(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Central predictive interval of y holding probability ``level``: (lo, hi), each (N,)."""
        level = check_level(level)
        if self.is_gaussian:
            # scipy.special, not scipy.stats: 0.09 s to import against 0.66 s, which a
            # command-line run pays in every process (benchmarks/compile_cache.py)
            from scipy import special

            z = special.ndtri(0.5 + level / 2)
            return self.mean - z * self.std, self.mean + z * self.std
        f, s = self.draws, self._noise
        lo = _chunked(partial(_mixture_quantile, (1 - level) / 2), f=f, s=s)
        hi = _chunked(partial(_mixture_quantile, (1 + level) / 2), f=f, s=s)
        return lo, hi

    def quantile(self, q: float) -> np.ndarray:
        """The q-quantile of the predictive of y at each point, (N,)."""
        q = check_level(q)
        if self.is_gaussian:
            from scipy import special

            return self.mean + special.ndtri(q) * self.std
        return _chunked(partial(_mixture_quantile, q), f=self.draws, s=self._noise)

    def log_prob(self, y) -> np.ndarray:
        """Log predictive density of each observed y, (N,)."""
        y = check_y(y, self.draws.shape[1])
        if self.is_gaussian:
            # in scipy.stats.norm.logpdf's order of operations: the same numbers to the bit
            sd = self.std  # a property: √(epistemic² + aleatoric²) over the draws, once
            z = (y - self.mean) / sd
            return (-z**2 / 2.0 - _LOG_SQRT_2PI) - np.log(sd)
        return _chunked(_mixture_log_prob, y, f=self.draws, s=self._noise)

    def crps(self, y) -> np.ndarray:
        """Continuous ranked probability score of each observed y (lower is better), (N,).

        Gaussian: σ[z(2Φ(z) − 1) + 2φ(z) − 1/√π]. Mixture: E|Y − y| − ½E|Y − Y'| with
        E|Y − y| = (1/S) Σₛ E|N(y − fₛ, σₛ²)| and E|Y − Y'| the average of E|N(fₛ − fₜ,
        σₛ² + σₜ²)| over all S² pairs of draws — for any S and any order of the draws, in
        O(S·G) or O(S log S + near pairs) per point (:func:`_mixture_pairs`), not S².
        """
        y = check_y(y, self.draws.shape[1])
        if self.is_gaussian:
            from scipy import special

            sd = self.std
            z = (y - self.mean) / sd
            phi, cdf = np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi), special.ndtr(z)
            return sd * (z * (2 * cdf - 1) + 2 * phi - 1 / math.sqrt(math.pi))

        def fn(yc, fc, sc):
            return np.asarray(_mixture_abs_error(yc, fc, sc)) - 0.5 * _mixture_pairs(fc, sc)

        return _chunked(fn, y, f=self.draws, s=self._noise)

    def sample(self, seed: int = 0) -> np.ndarray:
        """One draw of y per posterior draw: fₛ + σₛ·ε, shape (S, N)."""
        eps = np.random.default_rng(seed).standard_normal(self.draws.shape)
        return self.draws + self._noise * eps

    def sample_y(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` draws of y from the predictive at each point, (n, N): a draw s chosen
        uniformly (or the exact Gaussian when the predictive is Gaussian), plus its noise."""
        rng = np.random.default_rng(seed)
        cols = np.arange(self.draws.shape[1])
        if self.is_gaussian:
            return self.mean + self.std * rng.standard_normal((n, cols.size))
        pick = rng.integers(0, self.num_draws, (n, cols.size))
        return self.draws[pick, cols] + self._noise[pick, cols] * rng.standard_normal(
            (n, cols.size))

    def metrics(self, y, level: float = 0.95) -> dict[str, float]:
        """Test metrics of observed y: rmse, mae (of ``point``), nll (mean −log p), coverage
        and mean width of the central ``level`` interval (keys ``coverage_95``, ``width_95``
        at 0.95), crps (mean), miscalibration_area and sharpness (:mod:`bayesreg.metrics`)."""

        return regression_metrics(self, check_y(y, self.draws.shape[1]), level)

    def affine(self, scale: float, shift: float) -> Predictive:
        """The predictive of scale·y + shift (e.g. back to original units after
        standardising the target)."""
        if not scale > 0:
            raise ValueError(f"scale must be > 0; got {scale!r}")
        # in float64 where float32 squares of the result would overflow (a target ~1e30
        # standardised for the fit: its std came back inf)
        big = scale * max(float(np.max(np.abs(self.draws), initial=0.0)),
                          float(np.max(self._noise, initial=0.0)),
                          float(np.max(np.abs(shift), initial=0.0)) / scale)
        cast = (lambda a: np.asarray(a, np.float64)) if big > 1e18 else np.asarray
        analytic = None
        if self._analytic is not None:
            analytic = (cast(self._analytic[0]) * scale + shift,
                        cast(self._analytic[1]) * scale**2)
        return Predictive(cast(self.draws) * scale + shift, cast(self._noise) * scale, analytic,
                          point=self._point)

    def __repr__(self) -> str:
        kind = "Gaussian" if self.is_gaussian else "mixture"
        return f"Predictive({kind}, draws={self.num_draws}, points={self.draws.shape[1]})"


def check_task_targets(Y, n: int, tasks: int) -> tuple[np.ndarray, np.ndarray]:
    """Observed targets Y (N, T) of T tasks, a plain array or a ``np.ma.masked_array`` whose
    masked entries are missing labels: (values (N, T) float64, observed (N, T) bool), with
    the missing values set to 0. NaN or inf among the observed values is an error.

    Examples
    --------
    >>> Y = np.ma.masked_array([[1.0, 2.0], [3.0, 4.0]], [[False, True], [False, False]])
    >>> values, seen = check_task_targets(Y, 2, 2)
    >>> values.tolist(), seen.tolist()
    ([[1.0, 0.0], [3.0, 4.0]], [[True, False], [True, True]])
    """
    missing = np.ma.getmaskarray(Y) if np.ma.isMaskedArray(Y) else None
    values = np.asarray(np.ma.getdata(Y), dtype=np.float64)
    if values.shape != (n, tasks):
        raise ValueError(f"y must have shape ({n}, {tasks}) (N points, T tasks); got shape "
                         f"{values.shape}")
    seen = np.ones(values.shape, bool) if missing is None else ~missing
    values = np.where(seen, values, 0.0)
    if not np.all(np.isfinite(values)):
        bad = int(np.sum(~np.isfinite(values)))
        raise ValueError(f"y contains {bad} NaN or infinite values; expected finite numbers "
                         "(mark missing labels with a np.ma.masked_array)")
    return values, seen


class MultiTaskPredictive:
    """The predictive of T regression tasks at N points: one :class:`Predictive` per task
    (the tasks' outputs share the draws of one network, each with its own noise σₜ).

    Every summary is the task's own, stacked on a last axis: ``mean``, ``std``,
    ``epistemic_std``, ``aleatoric_std`` are (N, T), ``interval`` returns two (N, T) arrays,
    ``draws`` is (S, N, T) and ``log_prob(Y)`` / ``crps(Y)`` are (N, T) — a masked array with
    the mask of Y when Y is a ``np.ma.masked_array`` (missing labels). ``metrics(Y)`` scores
    each task on its observed rows (:func:`bayesreg.metrics.multitask_metrics`: ``rmse`` is
    the mean of the tasks' RMSEs, ``rmse_task0`` the first task's, ...). ``task(t)`` is task
    t's :class:`Predictive`.

    Examples
    --------
    >>> import numpy as np, bayesreg as br
    >>> pred = br.MultiTaskPredictive([br.Predictive(np.zeros((1, 3)), np.ones((1, 1))),
    ...                                br.Predictive(np.ones((1, 3)), 2 * np.ones((1, 1)))])
    >>> pred.mean.shape, pred.std[0].tolist(), pred.interval(0.95)[0].shape
    ((3, 2), [1.0, 2.0], (3, 2))
    """

    def __init__(self, tasks):
        self.tasks = list(tasks)
        if len(self.tasks) < 2:
            raise ValueError(f"tasks must hold at least 2 Predictives; got {len(self.tasks)}")

    @property
    def num_tasks(self) -> int:
        return len(self.tasks)

    @property
    def num_draws(self) -> int:
        return self.tasks[0].num_draws

    def task(self, t: int) -> Predictive:
        """Task t's predictive (N points)."""
        return self.tasks[t]

    def _stack(self, name) -> np.ndarray:
        return np.stack([getattr(p, name) for p in self.tasks], axis=-1)

    draws = property(lambda self: self._stack("draws"), doc="Draws of f, (S, N, T).")
    mean = property(lambda self: self._stack("mean"), doc="Predictive mean, (N, T).")
    point = property(lambda self: self._stack("point"), doc="Point prediction, (N, T).")
    epistemic_std = property(lambda self: self._stack("epistemic_std"),
                             doc="Std of f over the posterior, (N, T).")
    aleatoric_std = property(lambda self: self._stack("aleatoric_std"),
                             doc="sqrt of the mean noise variance σₜ² over draws, (N, T).")
    std = property(lambda self: self._stack("std"), doc="Predictive std of y, (N, T).")

    @property
    def is_gaussian(self) -> bool:
        return all(p.is_gaussian for p in self.tasks)

    def interval(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Central predictive interval of each task's y: (lo, hi), each (N, T)."""
        parts = [p.interval(level) for p in self.tasks]
        return (np.stack([lo for lo, _ in parts], axis=-1),
                np.stack([hi for _, hi in parts], axis=-1))

    def quantile(self, q: float) -> np.ndarray:
        """The q-quantile of each task's predictive, (N, T)."""
        return np.stack([p.quantile(q) for p in self.tasks], axis=-1)

    def _per_entry(self, name, Y) -> np.ndarray:
        n = self.tasks[0].draws.shape[1]
        values, seen = check_task_targets(Y, n, self.num_tasks)
        out = np.stack([getattr(p, name)(values[:, t]) for t, p in enumerate(self.tasks)], -1)
        return np.ma.masked_array(out, ~seen) if np.ma.isMaskedArray(Y) else out

    def log_prob(self, y) -> np.ndarray:
        """Log predictive density of each observed label, (N, T) (masked where Y is)."""
        return self._per_entry("log_prob", y)

    def crps(self, y) -> np.ndarray:
        """CRPS of each observed label, (N, T) (masked where Y is)."""
        return self._per_entry("crps", y)

    def sample(self, seed: int = 0) -> np.ndarray:
        """One draw of y per posterior draw, (S, N, T)."""
        return np.stack([p.sample(seed + t) for t, p in enumerate(self.tasks)], axis=-1)

    def sample_y(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` draws of y from each task's predictive, (n, N, T)."""
        return np.stack([p.sample_y(n, seed + t) for t, p in enumerate(self.tasks)], axis=-1)

    def metrics(self, y, level: float = 0.95) -> dict[str, float]:
        """Each task's :meth:`Predictive.metrics` on its observed rows, and their mean over
        the tasks (:func:`bayesreg.metrics.multitask_metrics`)."""
        n = self.tasks[0].draws.shape[1]
        values, seen = check_task_targets(y, n, self.num_tasks)
        per_task = []
        for t, p in enumerate(self.tasks):
            rows = np.flatnonzero(seen[:, t])
            if rows.size == 0:
                raise ValueError(f"y's task {t} has no observed label to score")
            per_task.append(_rows(p, rows).metrics(values[rows, t], level))
        return multitask_metrics(per_task)

    def affine(self, scale, shift) -> MultiTaskPredictive:
        """The predictive of scale·y + shift, scale and shift one number or one per task."""
        scale = np.broadcast_to(np.asarray(scale, float), (self.num_tasks,))
        shift = np.broadcast_to(np.asarray(shift, float), (self.num_tasks,))
        return MultiTaskPredictive([p.affine(float(a), float(b))
                                    for p, a, b in zip(self.tasks, scale, shift, strict=True)])

    def __repr__(self) -> str:
        kind = "Gaussian" if self.is_gaussian else "mixture"
        return (f"MultiTaskPredictive({kind}, tasks={self.num_tasks}, draws={self.num_draws}, "
                f"points={self.tasks[0].draws.shape[1]})")


def _rows(pred: Predictive, rows) -> Predictive:
    """``pred`` at a subset of its points."""
    analytic = None if pred._analytic is None else tuple(a[rows] for a in pred._analytic)
    return Predictive(pred.draws[:, rows], pred._noise[:, rows], analytic, point=pred._point)


class ClassPredictive:
    """Predictive class probabilities at N points from S posterior draws.

    ``probs`` is the posterior mean of the class probabilities, p̄ = (1/S) Σₛ softmax(fₛ(x)),
    which is the predictive distribution of y; ``draws`` keeps every draw's probabilities.

    Examples
    --------
    >>> import numpy as np, bayesreg as br
    >>> pred = br.ClassPredictive(np.array([[[0.9, 0.1]], [[0.5, 0.5]]]))
    >>> pred.probs.tolist(), pred.predict_class().tolist()
    ([[0.7, 0.3]], [0])
    """

    def __init__(self, draws):
        self.draws = np.asarray(draws)
        if self.draws.ndim != 3:
            raise ValueError(f"draws must have shape (S, N, C); got {self.draws.shape}")

    @property
    def probs(self) -> np.ndarray:
        """Predictive class probabilities, (N, C)."""
        return self.draws.mean(axis=0)

    def predict_class(self) -> np.ndarray:
        """Most probable class of each point, (N,)."""
        return np.argmax(self.probs, axis=-1)

    def log_prob(self, y) -> np.ndarray:
        """log p̄(y) of each observed label, (N,)."""
        y = np.asarray(check_y(y, self.draws.shape[1]), dtype=int)
        return np.log(np.clip(self.probs[np.arange(len(y)), y], 1e-12, 1.0))

    @property
    def entropy(self) -> np.ndarray:
        """Predictive entropy H[p̄] (total uncertainty), (N,)."""

        return predictive_entropy(self.draws)

    @property
    def mutual_information(self) -> np.ndarray:
        """Epistemic part of the entropy: H[p̄] − mean_s H[pₛ], (N,)."""

        return mutual_information(self.draws)

    def metrics(self, y, bins: int = 15) -> dict[str, float]:
        """accuracy, nll, brier, ece, entropy, mutual_information (:mod:`bayesreg.metrics`)."""

        y = np.asarray(check_y(y, self.draws.shape[1]), dtype=int)
        return classification_metrics(self.draws, y, bins)

    def __repr__(self) -> str:
        s, n, c = self.draws.shape
        return f"ClassPredictive(draws={s}, points={n}, classes={c})"


class StreamingPredictive:
    """A :class:`Predictive` over many points whose draws are never all in memory at once.

    ``source(slice) -> Predictive`` produces the predictive of a slice of the points; every
    summary is computed ``chunk_points`` points at a time, so peak memory is about
    S × chunk_points numbers (plus the (N,) results) instead of S × N.
    ``Posterior.predict`` returns one when S × N exceeds its budget, or when asked
    (``stream=True``). Accessing ``draws`` materialises them all.

    Examples
    --------
    >>> import numpy as np, bayesreg as br
    >>> f = np.random.default_rng(0).normal(size=(100, 1000))
    >>> source = lambda sl: br.Predictive(f[:, sl], np.ones((100, 1)))
    >>> lazy = br.StreamingPredictive(source, 1000, 100, 64)
    >>> bool(np.allclose(lazy.std, br.Predictive(f, np.ones((100, 1))).std))
    True
    """

    def __init__(self, source, num_points: int, num_draws: int, chunk_points: int):
        self._source = source
        self._n = int(num_points)
        self._s = int(num_draws)
        self._chunk = max(1, int(chunk_points))
        self._basic = None

    @property
    def num_draws(self) -> int:
        return self._s

    def _slices(self):
        return [slice(a, min(a + self._chunk, self._n)) for a in range(0, self._n, self._chunk)]

    def _part(self, sl) -> Predictive:
        return self._source(sl)

    def _summaries(self):
        if self._basic is None:
            keys = ("mean", "point", "epistemic_std", "aleatoric_std")
            parts = {k: [] for k in keys}
            for sl in self._slices():
                part = self._part(sl)
                for k in keys:
                    parts[k].append(getattr(part, k))
            self._basic = {k: np.concatenate(v) for k, v in parts.items()}
        return self._basic

    mean = property(lambda self: self._summaries()["mean"], doc="Predictive mean, (N,).")
    point = property(lambda self: self._summaries()["point"], doc="Point prediction, (N,).")
    epistemic_std = property(lambda self: self._summaries()["epistemic_std"])
    aleatoric_std = property(lambda self: self._summaries()["aleatoric_std"])

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.epistemic_std**2 + self.aleatoric_std**2)

    @property
    def draws(self) -> np.ndarray:
        """All draws (S, N): this materialises S × N numbers."""
        return np.concatenate([self._part(sl).draws for sl in self._slices()], axis=1)

    def _map(self, fn, *point_args):
        out = [fn(self._part(sl), *(a[sl] for a in point_args)) for sl in self._slices()]
        if isinstance(out[0], tuple):
            return tuple(np.concatenate(parts) for parts in zip(*out, strict=True))
        return np.concatenate(out)

    def interval(self, level: float = 0.95):
        level = check_level(level)
        return self._map(lambda p: p.interval(level))

    def quantile(self, q: float) -> np.ndarray:
        return self._map(lambda p: p.quantile(q))

    def log_prob(self, y) -> np.ndarray:
        return self._map(lambda p, yy: p.log_prob(yy), check_y(y, self._n))

    def crps(self, y) -> np.ndarray:
        return self._map(lambda p, yy: p.crps(yy), check_y(y, self._n))

    @property
    def is_gaussian(self) -> bool:
        return self._part(slice(0, min(self._chunk, self._n))).is_gaussian

    def affine(self, scale: float, shift: float) -> StreamingPredictive:
        """The streaming predictive of scale·y + shift."""
        source = self._source
        return StreamingPredictive(lambda sl: source(sl).affine(scale, shift), self._n,
                                   self._s, self._chunk)

    def sample_y(self, n: int, seed: int = 0) -> np.ndarray:
        return np.concatenate([self._part(sl).sample_y(n, seed + i)
                               for i, sl in enumerate(self._slices())], axis=1)

    def metrics(self, y, level: float = 0.95) -> dict[str, float]:
        """The same keys as :meth:`Predictive.metrics`, one pass over the point chunks."""

        y = check_y(y, self._n)
        tag = f"{round(100 * level):d}"
        sums = {"se": 0.0, "ae": 0.0, "nll": 0.0, "cover": 0.0, "width": 0.0, "crps": 0.0,
                "var": 0.0}
        observed = np.zeros(len(LEVELS))
        for sl in self._slices():
            part, yy = self._part(sl), y[sl]
            err = yy - part.point
            lo, hi = part.interval(level)
            sums["se"] += float(np.sum(err**2))
            sums["ae"] += float(np.sum(np.abs(err)))
            sums["nll"] -= float(np.sum(part.log_prob(yy)))
            sums["cover"] += float(np.sum((yy >= lo) & (yy <= hi)))
            sums["width"] += float(np.sum(hi - lo))
            sums["crps"] += float(np.sum(part.crps(yy)))
            sums["var"] += float(np.sum(part.std**2))
            for i, v in enumerate(LEVELS):
                a, b = part.interval(v)
                observed[i] += float(np.sum((yy >= a) & (yy <= b)))
        n = self._n
        return {"rmse": float(np.sqrt(sums["se"] / n)), "mae": sums["ae"] / n,
                "nll": sums["nll"] / n, f"coverage_{tag}": sums["cover"] / n,
                f"width_{tag}": sums["width"] / n, "crps": sums["crps"] / n,
                "miscalibration_area": float(np.mean(np.abs(observed / n - np.array(LEVELS)))),
                "sharpness": float(np.sqrt(sums["var"] / n))}

    def __repr__(self) -> str:
        return (f"StreamingPredictive(draws={self._s}, points={self._n}, "
                f"chunk={self._chunk})")
