"""Numbers that used to fail silently or with the wrong advice: data and prior scales.

``check_scales`` runs in :func:`bayesreg.fit` before any method: values whose squares
overflow the working precision are an error, and input columns on very different or very
large scales are a warning that names them (a N(0, s²) prior on every weight assumes
features of comparable, moderate scale; optimisers assume it too). ``divergence_causes``
turns a non-finite training loss into the likely reasons instead of "lower lr" alone.
"""

from __future__ import annotations

import warnings

import numpy as np

from bayesreg.data.stream import check_X_stream, is_lazy

# |value| above which a square overflows: float32 max is 3.4e38, float64 1.8e308
OVERFLOW = {"float32": 1e18, "float64": 1e150}
# largest |y| (and |X|) below which the data underflow: the noise floor is 1e-4 · std(y)
# (training.evidence.NOISE_FLOOR) and its σ² must stay a normal number (float32 1.2e-38,
# float64 2.2e-308), so σ ≥ 1.1e-19 (1.5e-154) needs a scale of 1.1e-15 (1.5e-150) at
# least; 1e-14 leaves a margin. Below it float32 fits predicted a std ~1e26 times too wide
# (MAP, Laplace, ensembles), or NUTS and VI could not start. float64 arithmetic would reach
# 1e-150, but MAP's optimiser does not (Adam's ε, the noise's start): in float64 on y ~ 1e-30
# it predicted a std 1.5e26 times too wide, so both precisions refuse below 1e-14.
UNDERFLOW = {"float32": 1e-14, "float64": 1e-14}
COLUMN_SCALE = 1e4  # an input column with std above this, or this many times another's, warns


def check_scales(X: np.ndarray, y: np.ndarray, dtype: str, x_stats=None) -> None:
    """ValueError when X or y would overflow when squared; a warning naming badly scaled
    input columns. ``x_stats`` (:class:`bayesreg.data.stream.ColumnStats`, accumulated chunk by
    chunk) stands in for X's maximum and column stds when X is streamed."""
    limit = OVERFLOW[dtype]
    for name, a in (("X", X), ("y", y)):
        if np.dtype(a.dtype).kind == "f" and a.shape[0]:
            if x_stats is None:
                big = float(np.max(np.abs(a)))
            elif name == "X":
                big = x_stats.max_abs
            else:  # streamed: y by chunks, no temporary of its size
                big = max(float(np.max(np.abs(a[i:i + (1 << 20)]))) for i in
                          range(0, a.shape[0], 1 << 20))
            if big > limit:
                alt = ' or fit with dtype="float64"' if dtype == "float32" else ""
                raise ValueError(
                    f"{name} reaches {big:.3g}: its squares overflow {dtype} (the likelihood "
                    f"and the noise σ² work with them). Rescale {name} (e.g. divide by its "
                    f"standard deviation){alt}.")
            if 0 < big < UNDERFLOW[dtype]:
                raise ValueError(
                    f"{name} is at most {big:.3g} in absolute value: below {UNDERFLOW[dtype]:g} "
                    f"the squares of its spread and of the noise σ underflow {dtype}, and the "
                    f"fit's std would be wrong by orders of magnitude. Rescale {name}: fit "
                    f"{name} / c with c = np.abs({name}).max() (or its std), then multiply "
                    "predictions (mean, std, interval, draws) by c.")
    if X.shape[0] < 2:
        return
    std = x_stats.std if x_stats is not None else np.std(X, axis=0)
    live = std > 0
    if not np.any(live):
        return
    small = float(np.min(std[live]))
    bad = np.flatnonzero(live & ((std > COLUMN_SCALE) | (std > COLUMN_SCALE * small)))
    if bad.size:
        cols = ", ".join(f"{int(j)} (std {std[j]:.3g})" for j in bad[:5])
        warnings.warn(
            f"X columns {cols} are on a scale far from the others (smallest std {small:.3g}): "
            "a prior N(0, s²) on every weight, and the optimisers, assume inputs of "
            "comparable scale. Standardise X (subtract the mean, divide by the std of each "
            "column, e.g. sklearn's StandardScaler) and predict with the same transform.",
            UserWarning, stacklevel=4)


def column_std(X) -> np.ndarray:
    """Population std of each column of X; by chunks when X is streamed."""
    return check_X_stream(X)[1].std if is_lazy(X) else np.std(X, axis=0)


def divergence_causes(problem, lr) -> str:
    """The likely reasons a training loss became non-finite, most specific first."""
    causes = []
    std = column_std(problem.X) if problem.n > 1 else np.ones(problem.n_features)
    if np.any(std > COLUMN_SCALE):
        causes.append("inputs on a large scale (standardise X)")
    for g, p in problem.prior.items():
        s = getattr(p, "scale", None)
        if s is not None and not hasattr(s, "log_prob") and np.min(np.asarray(s, float)) < 1e-15:
            given = np.atleast_1d(np.asarray(s, float)).copy()
            given[-1] *= getattr(problem, "scale", 1.0)  # the output layer's, in y's units
            causes.append(f"a {g} prior scale of {np.min(given):.3g}, whose "
                          "precision 1/s² overflows the working precision (use a scale above "
                          "1e-15, or br.Flat()/a fixed value of 0 by other means)")
    noise = getattr(problem.likelihood, "noise", None)
    if noise is not None and not isinstance(noise, str):  # one σ, or one per task
        smallest = float(np.min(np.asarray(noise, float)))
        if smallest < 1e-6 * max(float(np.nanstd(problem.y)), 1e-30):
            causes.append(f"a fixed noise {smallest:.3g} far below the targets' spread (1/σ² "
                          "makes the loss stiff)")
    causes.append(f"a step too large for this problem (lower lr, now {lr})" if lr is not None
                  else "a step too large for this problem (lower the rate of the optax "
                       "transformation given as optimizer)")
    return "; or ".join(causes)
