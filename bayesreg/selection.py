"""Choosing the prior scale: the lecture's validation set next to the Bayesian evidence.

* ``by="evidence"`` — log p(y | s), exact for linear-in-parameters models with Gaussian noise
  (:class:`bayesreg.Exact`), the Laplace approximation otherwise. Uses all the data.
* ``by="validation"`` — fit on a random (1 − ``validation_fraction``) of the rows, score the
  mean log predictive density of the held-out rows.
* ``by="cv"`` — the same, averaged over ``folds`` folds.

Higher scores are better for all three.

Examples
--------
>>> import numpy as np, bayesreg as br
>>> X, y = br.datasets.book_example()
>>> sel = br.select_prior_scale(br.relu_basis(10), X, y, scales=[1.0, 10.0, 100.0],
...                             likelihood=br.GaussianLikelihood(0.3))
>>> sel.best_scale in (1.0, 10.0, 100.0)
True
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np

from bayesreg._random import holdout
from bayesreg._validation import check_int, check_X, check_y
from bayesreg.fit import fit
from bayesreg.likelihoods import GaussianLikelihood
from bayesreg.methods.exact import Exact
from bayesreg.methods.laplace import LaplaceApprox
from bayesreg.methods.map import MAP
from bayesreg.priors import Flat, Gaussian, Prior, as_prior_spec

CRITERIA = ("evidence", "validation", "cv")


@dataclasses.dataclass(frozen=True)
class PriorScaleSelection:
    """Scores of each candidate prior scale (higher is better) and the winner."""

    scales: tuple[float, ...]
    scores: tuple[float, ...]
    by: str
    method: str
    best_scale: float
    best_prior: object

    def to_dict(self) -> dict:
        return {"by": self.by, "method": self.method, "best_scale": self.best_scale,
                "scales": list(self.scales), "scores": list(self.scores)}

    def to_markdown(self) -> str:
        label = {"evidence": "log evidence", "validation": "validation log density",
                 "cv": "cross-validated log density"}[self.by]
        lines = [f"| prior scale | {label} |", "|---|---|"]
        for s, v in zip(self.scales, self.scores, strict=True):
            mark = " **(best)**" if s == self.best_scale else ""
            lines.append(f"| {s:g} | {v:.4f}{mark} |")
        return "\n".join(lines)


def select_prior_scale(model, X, y, scales: Sequence[float] | None = None, by: str = "evidence",
                       *, prior: type[Prior] | Callable = Gaussian, likelihood=None, method=None,
                       validation_fraction: float = 0.2, folds: int = 5, seed: int = 0):
    """Score each prior scale and return the best.

    Parameters
    ----------
    model : a bayesreg model
    X, y : training data
    scales : sequence of float
        Candidate scales; default 13 values log-spaced on [10⁻², 10²].
    by : {"evidence", "validation", "cv"}
    prior : prior class or callable
        Builds the prior from a scale: a class such as ``br.Gaussian`` (called as
        ``prior(scale)``) or a function ``scale -> prior spec``.
    likelihood : default ``br.GaussianLikelihood()``
    method : default ``Exact`` or ``LaplaceApprox`` for evidence, ``MAP`` otherwise
    validation_fraction, folds : hold-out settings
    seed : int
        Seeds the split and every fit.

    Returns
    -------
    PriorScaleSelection
    """
    if by not in CRITERIA:
        raise ValueError(f"by must be one of {CRITERIA}; got {by!r}")
    scales = tuple(float(s) for s in (np.logspace(-2, 2, 13) if scales is None else scales))
    if not scales or any(not (s > 0 and math.isfinite(s)) for s in scales):
        raise ValueError(f"scales must be finite positive numbers; got {scales}")
    X = check_X(X)
    y = check_y(y, X.shape[0])
    likelihood = GaussianLikelihood() if likelihood is None else likelihood
    make = prior if callable(prior) else None
    if make is None:
        raise TypeError(f"prior must be a prior class or a function scale -> prior; got {prior!r}")
    if method is None:
        linear = getattr(model, "linear_in_params", False)
        exact_ok = linear and isinstance(likelihood, GaussianLikelihood) and prior is Gaussian
        method = (Exact() if exact_ok else LaplaceApprox()) if by == "evidence" else MAP()
    improper = ("by='evidence' needs a proper prior on every coefficient; the prior built "
                "from the scale has a Flat part")
    # said before any fit (a fit under a flat part takes seconds, then has no evidence)
    parts = as_prior_spec(make(scales[0])).values()
    if by == "evidence" and any(isinstance(p, Flat) for p in parts):
        raise ValueError(improper)
    scores = []
    for s in scales:
        spec = make(s)
        if by == "evidence":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                post = fit(model, X, y, method=method, prior=spec, likelihood=likelihood,
                           seed=seed)
            if math.isnan(post.log_evidence):
                raise ValueError(improper)
            scores.append(float(post.log_evidence))
        else:
            splits = _splits(X.shape[0], by, validation_fraction,
                             check_int("folds", folds, minimum=2), seed)
            fold_scores = []
            for train, test in splits:
                post = fit(model, X[train], y[train], method=method, prior=spec,
                           likelihood=likelihood, seed=seed)
                fold_scores.append(float(np.mean(post.predict(X[test]).log_prob(y[test]))))
            scores.append(float(np.mean(fold_scores)))
    best = int(np.nanargmax(scores))
    return PriorScaleSelection(scales=scales, scores=tuple(scores), by=by,
                               method=type(method).__name__, best_scale=scales[best],
                               best_prior=make(scales[best]))


def _splits(n: int, by: str, fraction: float, folds: int, seed: int):
    if by == "validation":
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"validation_fraction must be in (0, 1); got {fraction!r}")
        val, train = holdout(n, fraction, seed)
        return [(train, val)]
    perm = np.random.default_rng(seed).permutation(n)
    if folds > n:
        raise ValueError(f"folds must be <= the number of rows ({n}); got {folds}")
    parts = np.array_split(perm, folds)
    return [(np.sort(np.concatenate(parts[:i] + parts[i + 1:])), np.sort(parts[i]))
            for i in range(folds)]


def learn_prior(model, X, y, likelihood=None, seed: int = 0) -> tuple[dict, str]:
    """The one prior every method of a comparison fits under when the user left it out, and
    how it was found: Gaussian scales for the weights and the biases (one per layer for a
    network) maximising the evidence — exactly (type-II maximum likelihood, ``br.Exact``)
    for a model linear in its parameters under a Gaussian likelihood, by MAP's Laplace–GGN
    evidence for a network — then used as given by every method, so that a comparison
    measures the methods, not their priors. Where nothing can be learned (classification, a
    heteroscedastic likelihood) it is the default N(0, 1).

    Examples
    --------
    >>> import numpy as np, bayesreg as br
    >>> X, y, _ = br.datasets.linear_example(n=100, d=3)
    >>> prior, how = learn_prior(br.Linear(), X, y)
    >>> how.split(":")[0]
    'learned once by the exact evidence (type-II maximum likelihood)'
    """
    lik = GaussianLikelihood() if likelihood is None else likelihood
    if not isinstance(lik, GaussianLikelihood) or lik.heteroscedastic:
        return {"weights": Gaussian(1.0), "biases": Gaussian(1.0)}, "the default N(0, 1)"
    exact = getattr(model, "linear_in_params", False)
    post = fit(model, X, y, method=Exact() if exact else MAP(), likelihood=lik, seed=seed)
    how = ("learned once by the exact evidence (type-II maximum likelihood)" if exact else
           "learned once by MAP's Laplace–GGN evidence")
    return post.prior, f"{how}: {describe_prior(post.prior)}"


def describe_prior(prior: dict) -> str:
    """A prior spec in a few words, e.g. "weights N(0, 0.182²), biases N(0, 0.5²)"; layer-wise
    scales as a list.

    Examples
    --------
    >>> import bayesreg as br
    >>> describe_prior({"weights": br.Gaussian([1.0, 0.25]), "biases": br.Flat()})
    'weights N(0, [1, 0.25]²), biases Flat'
    """
    parts = []
    for group, p in prior.items():
        if isinstance(p, Gaussian):
            scale = p.scale
            text = (f"[{', '.join(f'{float(v):.3g}' for v in scale)}]"
                    if isinstance(scale, list | tuple) else f"{float(scale):.3g}")
            parts.append(f"{group} N(0, {text}²)" if np.all(np.asarray(p.loc, float) == 0)
                         else f"{group} N(loc, {text}²)")
        else:
            parts.append(f"{group} {type(p).__name__}")
    return ", ".join(parts)
