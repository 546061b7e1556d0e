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


def to_posterior(fitted: Fitted, problem, method) -> Posterior:
    """The :class:`bayesreg.Posterior` of ``fitted``, a result of ``method`` on ``problem``."""
    def given(value, default):
        return default if value is None else value

    return Posterior(
        model=given(fitted.model, problem.model),
        likelihood=given(fitted.likelihood, problem.likelihood),
        prior=fitted.prior, method=given(fitted.name, type(method).__name__),
        params=fitted.params, theta=fitted.theta,
        X_train=given(fitted.X_train, problem.X),
        y_train=_uncentred(given(fitted.y_train, problem.y), problem.offset),
        diagnostics=fitted.diagnostics, log_evidence=fitted.log_evidence,
        num_chains=fitted.num_chains, config=given(fitted.config, method.to_dict()),
        hyper=fitted.hyper, dtype=problem.dtype, approximation=fitted.approximation,
        point=fitted.point, draws_kind=fitted.draws_kind, offset=problem.offset)


def _uncentred(y, offset: float):
    """The training targets in the user's units (``br.fit`` fitted y − offset)."""
    return y if not np.any(offset) else (np.asarray(y, np.float64) + offset).astype(y.dtype)
