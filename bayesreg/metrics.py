r"""Scores of a predictive distribution against observed data, from draws.

Regression (predictive = the mixture over draws, see :class:`bayesreg.Predictive`):

* ``rmse``, ``mae`` — of the point prediction;
* ``nll`` — mean negative log predictive density (log of the mixture, by logsumexp);
* ``crps_sample(samples, y)`` — the sample estimator E|Y − y| − ½E|Y − Y'| over draws of y,
  computed from sorted draws in O(S log S): E|Y − Y'| = (2/S²) Σₖ (2k − S − 1) y₍ₖ₎;
* ``coverage(lo, hi, y)``, ``mean width`` — of central intervals at any level;
* ``calibration_curve(pred, y)`` — observed against nominal coverage of central intervals
  over levels, and ``miscalibration_area`` = mean |observed − nominal| over the levels;
* ``sharpness`` — root mean predictive variance.

Classification (probabilities from S draws, ``probs`` of shape (S, N, C)):

* ``accuracy``, ``nll`` (of the mean probabilities), ``brier`` (Σ_c (p_c − 1[y = c])²,
  mean over points), ``ece`` (expected calibration error of the top class over equal-width
  confidence bins), ``predictive_entropy`` H[p̄], ``mutual_information``
  H[p̄] − mean_s H[pₛ] (the epistemic part).

Examples
--------
>>> import numpy as np
>>> from bayesreg import metrics
>>> round(float(metrics.crps_sample(np.array([[0.0], [1.0]]), np.array([0.0]))[0]), 3)
0.25
"""

from __future__ import annotations

import numpy as np

from bayesreg._validation import check_level

LEVELS = tuple(np.round(np.linspace(0.05, 0.95, 19), 2))


def rmse(point, y) -> float:
    """Root mean squared error of a point prediction."""
    return float(np.sqrt(np.mean((np.asarray(y) - np.asarray(point)) ** 2)))


def mae(point, y) -> float:
    """Mean absolute error of a point prediction."""
    return float(np.mean(np.abs(np.asarray(y) - np.asarray(point))))


def crps_sample(samples, y) -> np.ndarray:
    """Sample CRPS of each observation: samples (S, N) of y, y (N,) → (N,)."""
    x = np.sort(np.asarray(samples, dtype=np.float64), axis=0)
    s = x.shape[0]
    first = np.mean(np.abs(x - np.asarray(y, dtype=np.float64)[None, :]), axis=0)
    weights = (2 * np.arange(1, s + 1) - s - 1)[:, None]
    pairs = 2.0 * np.sum(weights * x, axis=0) / s**2  # = E|Y − Y'| over all ordered pairs
    return first - 0.5 * pairs


def coverage(lo, hi, y) -> float:
    """Fraction of observations inside [lo, hi]."""
    y = np.asarray(y)
    return float(np.mean((y >= lo) & (y <= hi)))


def calibration_curve(pred, y, levels=LEVELS) -> tuple[np.ndarray, np.ndarray]:
    """(nominal levels, observed coverage of the central intervals at those levels)."""
    levels = np.array([check_level(v) for v in levels])
    observed = np.array([coverage(*pred.interval(v), y) for v in levels])
    return levels, observed


def miscalibration_area(pred, y, levels=LEVELS) -> float:
    """Mean |observed − nominal| coverage over levels (0 = perfectly calibrated)."""
    nominal, observed = calibration_curve(pred, y, levels)
    return float(np.mean(np.abs(observed - nominal)))


def sharpness(pred) -> float:
    """Root mean predictive variance (smaller = sharper; judge it with calibration)."""
    return float(np.sqrt(np.mean(np.asarray(pred.std) ** 2)))


def regression_metrics(pred, y, level: float = 0.95) -> dict[str, float]:
    """All regression scores of a Predictive (the keys of ``pred.metrics(y)``)."""
    lo, hi = pred.interval(level)
    tag = f"{round(100 * level):d}"
    return {
        "rmse": rmse(pred.point, y),
        "mae": mae(pred.point, y),
        "nll": float(-np.mean(pred.log_prob(y))),
        f"coverage_{tag}": coverage(lo, hi, y),
        f"width_{tag}": float(np.mean(hi - lo)),
        "crps": float(np.mean(pred.crps(y))),
        "miscalibration_area": miscalibration_area(pred, y),
        "sharpness": sharpness(pred),
    }


def multitask_metrics(per_task: list[dict]) -> dict[str, float]:
    """The scores of T tasks in one flat dict: each key of a task's scores (``rmse``,
    ``nll``, ``coverage_95``, ...) as the mean over the tasks, and ``<key>_task<t>`` for
    task t (0-based). Each task is scored on its observed rows only.

    Examples
    --------
    >>> multitask_metrics([{"rmse": 1.0}, {"rmse": 3.0}])
    {'rmse': 2.0, 'rmse_task0': 1.0, 'rmse_task1': 3.0}
    """
    out = {k: float(np.mean([m[k] for m in per_task])) for k in per_task[0]}
    for t, m in enumerate(per_task):
        out.update({f"{k}_task{t}": float(v) for k, v in m.items()})
    return out


# -- classification -------------------------------------------------------------------------

def _entropy(p, axis=-1):
    p = np.clip(p, 1e-12, 1.0)
    return -np.sum(p * np.log(p), axis=axis)


def accuracy(probs_mean, y) -> float:
    return float(np.mean(np.argmax(probs_mean, axis=-1) == np.asarray(y)))


def class_nll(probs_mean, y) -> float:
    """Mean −log p̄(y) of the predictive (mean over draws of the probabilities)."""
    p = probs_mean[np.arange(len(y)), np.asarray(y, dtype=int)]
    return float(-np.mean(np.log(np.clip(p, 1e-12, 1.0))))


def brier(probs_mean, y) -> float:
    """Mean over points of Σ_c (p̄_c − 1[y = c])²."""
    onehot = np.eye(probs_mean.shape[-1])[np.asarray(y, dtype=int)]
    return float(np.mean(np.sum((probs_mean - onehot) ** 2, axis=-1)))


def ece(probs_mean, y, bins: int = 15) -> float:
    """Expected calibration error: Σ_b (n_b/N) |accuracy_b − confidence_b| of the top class,
    over ``bins`` equal-width confidence bins on [0, 1]."""
    conf = np.max(probs_mean, axis=-1)
    correct = np.argmax(probs_mean, axis=-1) == np.asarray(y)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return float(total)


def predictive_entropy(probs) -> np.ndarray:
    """H[p̄] per point from draws (S, N, C), in nats."""
    return _entropy(np.mean(probs, axis=0))


def mutual_information(probs) -> np.ndarray:
    """H[p̄] − mean_s H[pₛ] per point (epistemic uncertainty), in nats."""
    return predictive_entropy(probs) - np.mean(_entropy(probs), axis=0)


def classification_metrics(probs, y, bins: int = 15) -> dict[str, float]:
    """Scores of class-probability draws (S, N, C) against labels y (N,)."""
    mean = np.mean(probs, axis=0)
    return {
        "accuracy": accuracy(mean, y),
        "nll": class_nll(mean, y),
        "brier": brier(mean, y),
        "ece": ece(mean, y, bins),
        "entropy": float(np.mean(predictive_entropy(probs))),
        "mutual_information": float(np.mean(mutual_information(probs))),
    }
