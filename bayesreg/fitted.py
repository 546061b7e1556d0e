"""What a method hands back: :class:`Fitted`, turned into a :class:`bayesreg.Posterior` by
:func:`bayesreg.fit` in one place.

A method never builds a ``Posterior`` itself. It returns its draws and what it learned; the
fields it leaves at ``None`` are filled from the problem (model, likelihood, training rows)
and from the method (its name, its ``to_dict()``).

Examples
--------
>>> import numpy as np
>>> fitted = Fitted(params={"weights": [np.zeros((1, 1, 1))], "biases": [np.zeros((1, 1))]},
...                 theta={}, prior={})
>>> fitted.num_chains, fitted.draws_kind
(1, 'posterior samples')
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from bayesreg import _units
from bayesreg.posterior import POSTERIOR_SAMPLES, Posterior


@dataclasses.dataclass(frozen=True, eq=False)
class Fitted:
    """A method's result, before it becomes a :class:`bayesreg.Posterior`.

    Attributes
    ----------
    params : pytree
        Parameter draws with a leading axis of S draws (S = 1 for a point estimate).
    theta : dict
        Likelihood parameters with a leading axis S (``{"log_noise": (S,)}``, or ``{}``).
    prior : dict
        The prior the fit actually used (learned scales written in).
    diagnostics : dict
        The method's numbers: losses, σ and the prior scales learned, R-hat, ESS, ELBO, ...
    log_evidence : float
        log p(y) where the method has it, else ``nan``.
    num_chains : int
        Chains (or members) the S draws come from, in order.
    hyper : dict
        Draws (S,) of sampled prior scales.
    approximation : object or None
        What the method knows beyond its draws (:mod:`bayesreg.approximation`).
    point : {"mean", "median"}
        The point prediction over draws.
    draws_kind : str
        What the draws are ("posterior samples", "dropout masks of one trained network", ...).
    name : str, optional
        The method's name in the posterior; ``None``: the method's class name.
    config : dict, optional
        The settings to record; ``None``: ``method.to_dict()``.
    model, likelihood : optional
        Set only where they differ from the problem's (MC dropout's network without its
        masks; a likelihood whose σ the method fixed).
    X_train, y_train : arrays, optional
        The rows the fit used, where they differ from the problem's (rows held out).
    """

    params: Any
    theta: dict
    prior: dict
    diagnostics: dict = dataclasses.field(default_factory=dict)
    log_evidence: float = math.nan
    num_chains: int = 1
    hyper: dict = dataclasses.field(default_factory=dict)
    approximation: Any = None
    point: str = "mean"
    draws_kind: str = POSTERIOR_SAMPLES
    name: str | None = None
    config: dict | None = None
    model: Any = None
    likelihood: Any = None
    X_train: Any = None
    y_train: Any = None


def to_posterior(fitted: Fitted, problem, method, *, likelihood=None, prior=None) -> Posterior:
    """The :class:`bayesreg.Posterior` of ``fitted``, a result of ``method`` on ``problem``.

    A problem fitted in standard units (``problem.scale`` ≠ 1, :mod:`bayesreg._units`) is
    mapped back here, in one place: σ, the learned prior scales and the evidence into the
    units of y; ``likelihood`` and ``prior`` are the user's (in those units), which the
    posterior reports where the method used them as given."""
    def given(value, default):
        return default if value is None else value

    s = problem.scale
    likelihood = given(likelihood, problem.likelihood)
    fit_likelihood = given(fitted.likelihood, problem.likelihood)
    theta, diagnostics, log_evidence = fitted.theta, fitted.diagnostics, fitted.log_evidence
    post_prior = fitted.prior
    if s != 1.0:
        theta = fit_likelihood.rescaled_theta(theta, s)
        # a likelihood the method fixed (its σ), or the user's as given
        likelihood = fit_likelihood.rescaled(s) if fitted.likelihood is not None else likelihood
        diagnostics = _units.scaled_diagnostics(diagnostics, s)
        observed = int(np.sum(~np.isnan(np.asarray(problem.y, np.float64))))
        log_evidence = _units.scaled_evidence(log_evidence, s, observed)
        post_prior = _prior_in_units(fitted.prior, problem.prior, given(prior, problem.prior), s,
                                     len(fitted.params["weights"]))
    return Posterior(
        model=given(fitted.model, problem.model),
        likelihood=likelihood,
        prior=post_prior, method=given(fitted.name, type(method).__name__),
        params=fitted.params, theta=theta,
        X_train=given(fitted.X_train, problem.X),
        y_train=_uncentred(given(fitted.y_train, problem.y), problem.offset, s),
        diagnostics=diagnostics, log_evidence=log_evidence,
        num_chains=fitted.num_chains, config=given(fitted.config, method.to_dict()),
        hyper=fitted.hyper, dtype=problem.dtype, approximation=fitted.approximation,
        point=fitted.point, draws_kind=fitted.draws_kind, offset=problem.offset, scale=s)


def _prior_in_units(used: dict, fitted_spec: dict, user_spec: dict, s: float, layers: int):
    """The prior a fit in standard units used, in the units of y: the user's own where the
    method kept the prior it was given, else its output-layer scale times s (a learned or
    tempered Gaussian: :func:`bayesreg._units.scaled_group`)."""
    return {g: user_spec[g] if p is fitted_spec.get(g) else _units.scaled_group(p, s, layers)
            for g, p in used.items()}


def _uncentred(y, offset: float, scale: float = 1.0):
    """The training targets in the user's units (``br.fit`` fitted (y − offset) / scale)."""
    if not np.any(offset) and scale == 1.0:
        return y
    return (np.asarray(y, np.float64) * scale + offset).astype(y.dtype)
