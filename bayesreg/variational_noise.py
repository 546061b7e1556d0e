r"""How VI sets a learned σ: the evidence's fixed point σ² = RSS / (N − γ), at q's mean, or
at the mode VI started from when mean field has pruned the network.

At q's mean μ (:func:`evidence_noise`, γ from :func:`bayesreg.variational.curvature_dof`) is
the default. On a wide network with few rows mean field can switch units off — each weight's
factor pays its KL to the prior, and a unit the data need only a little is cheaper turned off
(over-pruning; Trippe & Turner 2018) — and q's mean is then nearly flat: γ at it is near 1
and σ set there is the spread of y. :func:`pruned` detects it against the mode VI started
from, and :func:`mode_noise` gives σ there: the fixed point with the weights held at the
mode, solved through the eigenvalues μₖ of J diag(α)⁻¹Jᵀ
(:func:`bayesreg.variational.kernel_eigenvalues`, computed once), since
γ(σ) = Σₖ μₖ / (σ² + μₖ): one root, found by bisection.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from bayesreg.likelihoods import GaussianLikelihood
from bayesreg.problem import Problem
from bayesreg.variational import kernel_eigenvalues

# q's mean leaving more than this times the residual σ²N that the mode's σ expects has pruned
# the network: σ set at q's mean would be at least √2 = 1.41 times the mode's
PRUNED_RSS = 2.0


def evidence_noise(problem: Problem, z, loc, gamma: float) -> float | None:
    """σ at the evidence's fixed point at q's mean μ: σ² = Σᵢ (yᵢ − f(xᵢ; μ))² / (N − γ),
    γ from :func:`bayesreg.variational.posterior_dof` (the weights the full curvature counts
    as determined), the rule by which MAP's evidence learns σ
    (bayesreg/training/evidence.py). In the units the fit works in. None where the model
    nearly interpolates its rows (N − γ < 1: less than one row's worth of residual to
    measure σ on; the exact evidence refuses such a fit).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, numpy as np, bayesreg as br
    >>> from bayesreg.priors import as_prior_spec
    >>> from bayesreg.problem import Problem
    >>> X, y = np.zeros((5, 1)), np.array([1.0, -1.0, 1.0, -1.0, 0.0])
    >>> problem = Problem(br.Linear(), br.GaussianLikelihood(), as_prior_spec(br.Flat()), X, y,
    ...                   jax.random.key(0))
    >>> z = {"params": br.Linear().init(jax.random.key(1), 1), "theta": {}, "hyper": {}}
    >>> mu = jnp.zeros(2)  # f = 0: RSS = 4, and γ = 1 (the bias) leaves 4 rows
    >>> evidence_noise(problem, z, mu, 1.0)
    1.0
    """
    if problem.n - gamma < 1.0:
        return None
    return float(np.sqrt(residual_sum(problem, ravel_pytree(z)[1](jnp.asarray(loc))["params"])
                         / (problem.n - gamma)))


def mode_noise(problem: Problem, params, rtol: float = 1e-9, rss: float | None = None
               ) -> float | None:
    """σ at the evidence's fixed point with the weights held at ``params`` (VI's starting
    mode): the root of σ² (N − γ(σ)) = RSS, γ(σ) = Σₖ μₖ / (σ² + μₖ). The left side,
    h(s) = sN − Σₖ μₖ s / (s + μₖ) in s = σ², grows from 0 to ∞ (h′(s) = N − Σₖ μₖ² /
    (s + μₖ)² ≥ N − #μ ≥ 0), so the root is unique and bisection on log σ² finds it from any
    start. None where the eigenvalues cannot be formed, and where the mode interpolates its
    rows: RSS = 0, or fewer than one row's worth of residual left at the root (N − γ < 1,
    where the exact evidence refuses). ``rss``: the residual at ``params`` when the caller
    has it (:func:`residual_sum`).

    Examples
    --------
    >>> import jax, numpy as np, bayesreg as br
    >>> from bayesreg.priors import as_prior_spec
    >>> from bayesreg.problem import Problem
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((30, 2)); y = X @ [1.0, -1.0] + 0.5 * rng.standard_normal(30)
    >>> problem = Problem(br.Linear(), br.GaussianLikelihood(noise_prior=1.0),
    ...                   as_prior_spec(br.Gaussian(1.0)), X, y, jax.random.key(0))
    >>> params = {"weights": [np.array([[1.0], [-1.0]])], "biases": [np.zeros(1)]}
    >>> sigma = mode_noise(problem, params)
    >>> Phi = np.c_[X, np.ones(30)]  # J of a linear model; α = 1 for every weight
    >>> gamma = np.sum(1 / (sigma**2 / np.linalg.eigvalsh(Phi.T @ Phi) + 1))
    >>> bool(np.isclose(sigma**2, residual_sum(problem, params) / (30 - gamma), rtol=1e-6))
    True
    """
    mu = kernel_eigenvalues(problem, params)
    rss = residual_sum(problem, params) if rss is None else rss
    n = problem.n
    if mu is None or not 0 < rss < np.inf or not np.all(np.isfinite(mu)):
        return None  # (an infinite RSS would never bracket the root)

    def excess(log_s):  # h(s) − RSS, increasing in log s
        s = np.exp(log_s)
        return s * (n - np.sum(mu / (s + mu))) - rss

    lo = hi = np.log(rss / n)  # h(s) ≤ sN: the root is at or above RSS/N
    while excess(hi) < 0:
        hi += np.log(4.0)
    while hi - lo > rtol:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if excess(mid) < 0 else (lo, mid)
    s2 = float(np.exp(hi))
    return None if n - np.sum(mu / (s2 + mu)) < 1.0 else float(np.sqrt(s2))


def pruned(problem: Problem, z, params, mode_rss: float | None = None) -> float | None:
    """σ at the mode ``z`` VI started from (:func:`mode_noise`) when q's mean, the weights
    ``params``, leaves more than ``PRUNED_RSS`` times the residual σ²N that σ expects: mean
    field has switched off units the data need. None when it has not, where σ is not
    learned, and where the mode interpolates (no σ to measure against). ``mode_rss``: the
    mode's residual when the caller has it.

    Examples
    --------
    >>> import jax, numpy as np, bayesreg as br
    >>> from bayesreg.priors import as_prior_spec
    >>> from bayesreg.problem import Problem
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((30, 2)); y = X @ [1.0, -1.0] + 0.5 * rng.standard_normal(30)
    >>> problem = Problem(br.Linear(), br.GaussianLikelihood(noise_prior=1.0),
    ...                   as_prior_spec(br.Gaussian(1.0)), X, y, jax.random.key(0))
    >>> mode = {"params": {"weights": [np.array([[1.0], [-1.0]])], "biases": [np.zeros(1)]}}
    >>> off = {"weights": [np.zeros((2, 1))], "biases": [np.zeros(1)]}  # a switched-off fit
    >>> pruned(problem, mode, off) == mode_noise(problem, mode["params"])
    True
    >>> pruned(problem, mode, mode["params"]) is None  # q's mean fits as the mode does
    True
    """
    if not getattr(problem.likelihood, "learned_noise", False):
        return None
    rss = residual_sum(problem, params)
    mode_rss = residual_sum(problem, z["params"]) if mode_rss is None else mode_rss
    if not rss > PRUNED_RSS * mode_rss:  # RSS(mode) ≤ σ²N: no σ needed to rule it out
        return None
    sigma = mode_noise(problem, z["params"], rss=mode_rss)
    return sigma if sigma is not None and rss > PRUNED_RSS * problem.n * sigma**2 else None


def residual_sum(problem: Problem, params) -> float:
    """Σᵢ (yᵢ − f(xᵢ))² of the first output at the weights ``params``, in float64.

    Examples
    --------
    >>> import jax, numpy as np, bayesreg as br
    >>> from bayesreg.priors import as_prior_spec
    >>> from bayesreg.problem import Problem
    >>> problem = Problem(br.Linear(), br.GaussianLikelihood(), as_prior_spec(br.Flat()),
    ...                   np.zeros((3, 1)), np.array([1.0, 2.0, 2.0]), jax.random.key(0))
    >>> residual_sum(problem, {"weights": [np.zeros((1, 1))], "biases": [np.ones(1)]})
    2.0
    """
    f = np.asarray(problem.model.apply(params, jnp.asarray(problem.X)))[:, 0]
    return float(np.sum((np.asarray(problem.y, np.float64) - f) ** 2))


def noise_source(likelihood, noise) -> str:
    """How σ was set: "given", "evidence", "elbo", or "none" (a likelihood without one σ).

    Examples
    --------
    >>> import bayesreg as br
    >>> noise_source(br.GaussianLikelihood(0.3), None), noise_source(br.GaussianLikelihood(), 0.4)
    ('given', 'evidence')
    """
    if not isinstance(likelihood, GaussianLikelihood) or likelihood.heteroscedastic:
        return "none"
    if not likelihood.learned_noise:
        return "given"
    return "evidence" if noise is not None else "elbo"


def interpolation_warning(gamma: float, n: int) -> str:
    """The warning when the evidence cannot set σ: the model interpolates its rows.

    Examples
    --------
    >>> interpolation_warning(11.6, 12)[:52]
    'VI: the curvature counts 11.6 weights as determined '
    """
    return (f"VI: the curvature counts {gamma:.1f} weights as determined by {n} rows: the "
            "model interpolates them and leaves no residual to set σ by the evidence, so σ "
            "is the ELBO's (a narrower prior, more rows, or "
            "likelihood=br.GaussianLikelihood(noise=...))")


def pruning_warning(pruned: bool, at: str, rss: float, n: int, noise) -> str | None:
    """The warning when mean field has switched off units the data need: the first q's mean
    left more than ``PRUNED_RSS`` times the residual the mode's σ expects (``pruned``,
    :func:`pruned`) and σ was not set at the mode (``noise="elbo"``, or a prior whose γ VI
    does not form); or, σ set there (``at`` "mode"), q's mean still leaves more than
    ``PRUNED_RSS`` times the residual σ²N.

    Examples
    --------
    >>> pruning_warning(True, "mean", 30.0, 50, None)[:38]  # σ kept from the ELBO
    'VI: mean field has pruned units the da'
    >>> pruning_warning(True, "mode", 5.0, 50, 0.3) is None  # 5 < 2 · 50 · 0.3²: it fits
    True
    """
    if at == "mode":
        if not rss > PRUNED_RSS * n * noise**2:
            return None
        why = f"its mean leaves {rss / (n * noise**2):.1f}× the residual σ²N of σ = {noise:.3g}"
    elif pruned:
        why = "its mean left over twice the residual the mode's σ expects"
    else:
        return None
    return (f"VI: mean field has pruned units the data need ({why}; diagnostics['rss_mean'], "
            "['rss_mode']), and the predictive mean misses the rows. Use LaplaceApprox, SGLD "
            "or NUTS for this network, a narrower prior, or give σ "
            "(likelihood=br.GaussianLikelihood(noise=...))")
