"""``br.fit``: one entry point for every method."""

from __future__ import annotations

import jax

from bayesreg._validation import check_int, check_X, check_y
from bayesreg.inference._problem import Problem
from bayesreg.inference.map import MAP
from bayesreg.likelihoods import GaussianLikelihood
from bayesreg.priors import Gaussian, as_prior_spec


def fit(model, X, y, method=None, prior=None, likelihood=None, seed: int = 0):
    """Fit ``model`` to (X, y) with ``method`` under ``prior`` and ``likelihood``.

    Parameters
    ----------
    model : Linear, Polynomial, Basis or MLP
    X : array (N, D) or (N,)
        Inputs; a 1-D X is one feature.
    y : array (N,) or (N, 1)
        Targets (class labels for Bernoulli / Categorical).
    method : MAP, Exact, ... , default ``br.MAP()``
    prior : Prior or {"weights": Prior, "biases": Prior}, default ``br.Gaussian(1.0)``
    likelihood : default ``br.GaussianLikelihood()`` (noise learned)
    seed : int
        Seeds every random choice (initialisation, batches, draws): same seed, same numbers.

    Returns
    -------
    Posterior

    Example
    -------
    >>> import numpy as np, bayesreg as br
    >>> X = np.linspace(0, 1, 15); y = np.exp(np.sin(2 * np.pi * X))
    >>> post = br.fit(br.Polynomial(3), X, y, method=br.Exact(), prior=br.Gaussian(10.0))
    >>> post.predict(X).mean.shape
    (15,)
    """
    method = MAP() if method is None else method
    if not hasattr(method, "_run"):
        raise TypeError(f"method must be a bayesreg method such as br.MAP() or br.Exact(); "
                        f"got {type(method).__name__}")
    if not (hasattr(model, "init") and hasattr(model, "apply")):
        raise TypeError(f"model must be a bayesreg model such as br.Linear() or br.MLP(); "
                        f"got {type(model).__name__}")
    spec = as_prior_spec(Gaussian(1.0) if prior is None else prior)
    likelihood = GaussianLikelihood() if likelihood is None else likelihood
    X = check_X(X, "X")
    y = likelihood.check_targets(check_y(y, X.shape[0]))
    likelihood = likelihood.resolved(y)
    key = jax.random.key(check_int("seed", seed, minimum=0))
    return method._run(Problem(model=model, likelihood=likelihood, prior=spec, X=X, y=y, key=key))
