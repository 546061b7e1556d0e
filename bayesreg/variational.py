r"""What mean-field VI does to a learned σ, measured: how many weights mean field counts as
determined by the data (:func:`mean_field_dof`), how many the full curvature counts
(:func:`posterior_dof`), and what the difference does to σ (:func:`mean_field_check`).

A learned σ meets the same fixed point under the evidence and under the ELBO,
σ² = RSS / (N − γ), with γ the number of weights the data determine. Mean field counts them
one by one, γ_MF = Σⱼ (1 − αⱼ ρⱼ²); the curvature at q's mean counts them with their
correlations, γ = Σⱼ (1 − αⱼ [H⁻¹]ⱼⱼ) ≤ γ_MF. So mean field's σ is wider than the evidence's
by about √((N − γ) / (N − γ_MF)): on the diabetes table with MLP(50), 112 against 15 (at q's
mean) on 354 rows, 1.18; measured 58.7 against MAP's evidence 52.4 (1.12) and NUTS's 51.2
(1.15) (docs/methods/vi.md). So VI sets a learned σ by the evidence at q's mean instead
(:func:`evidence_noise`) where γ can be formed.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from bayesreg import curvature
from bayesreg.curvature import index_of, prior_diag
from bayesreg.latent import latent_log_prior
from bayesreg.likelihoods import GaussianLikelihood
from bayesreg.priors import Flat, Gaussian, is_hierarchical
from bayesreg.problem import Problem

# σ wider than the evidence's by more than this factor warns (10%: the bands as much too wide)
INFLATION_LIMIT = 1.1
# the full curvature is formed up to this many latent coordinates (a D × D matrix), its N × N
# dual above; either up to this many entries of the rows' Jacobian (N × D: 2·10⁷ floats,
# 80 MB in float32)
DENSE_LIMIT, JACOBIAN_LIMIT = 3000, 20_000_000
# above DENSE_LIMIT, mean_field_dof above this share of the rows warns
MEAN_FIELD_SHARE = 0.5
# q's mean with more than this times the mode's residual sum of squares has pruned the
# network: σ set at it would be at least √2 = 1.41 times the mode's (pruning_warning)
PRUNED_RSS = 2.0


def mean_field_check(problem: Problem, z, loc, scale):
    """(γ_MF, γ, σ inflation) of a mean-field q (``loc``, ``scale``, flat over ``z``'s
    structure) fitted to ``problem``: None where not defined (a prior that is not Gaussian or
    Flat, a hierarchical one; γ and the inflation without a learned σ). Up to
    ``DENSE_LIMIT`` coordinates γ comes from the dense weight block of H
    (:func:`posterior_dof`), above from its N × N dual (:func:`dual_posterior_dof`). Above
    ``JACOBIAN_LIMIT`` Jacobian entries, for several tasks, above ``DENSE_LIMIT`` with a
    flat prior on some weight, and where H's weight block is singular, γ is None and the
    inflation the share rule's stand-in √(N / (N − γ_MF)) when γ_MF >
    ``MEAN_FIELD_SHARE``·N, else None."""
    lik, prior, n = problem.likelihood, problem.prior, problem.n
    dof = mean_field_dof(lik, prior, z, loc, scale)
    if dof is None or not getattr(lik, "learned_noise", False):  # no σ to inflate
        return dof, None, None
    gamma = curvature_dof(problem, z, loc)
    if gamma is None:  # not formed, or a singular weight block: the share rule stands in
        share = dof > MEAN_FIELD_SHARE * n
        return dof, None, (np.sqrt(n / max(n - dof, 1.0)) if share else None)
    return dof, gamma, float(np.sqrt(max(n - gamma, 1.0) / max(n - dof, 1.0)))


def curvature_dof(problem: Problem, z, loc) -> float | None:
    """γ at the flat latent ``loc``: from the dense weight block of H up to ``DENSE_LIMIT``
    coordinates (:func:`posterior_dof`), from its N × N dual above
    (:func:`dual_posterior_dof`); None above ``JACOBIAN_LIMIT`` Jacobian entries or for
    several tasks."""
    if problem.n * np.size(loc) > JACOBIAN_LIMIT or np.ndim(problem.y) != 1:
        return None
    if np.size(loc) <= DENSE_LIMIT:
        return posterior_dof(problem, z, loc)
    return dual_posterior_dof(problem, z, loc)


def posterior_dof(problem: Problem, z, loc) -> float | None:
    """γ = Σⱼ (1 − αⱼ [H⁻¹]ⱼⱼ) over the weights, H the GGN of the negative log joint at the
    flat latent ``loc`` (:func:`bayesreg.curvature.latent`, the prior's curvature included)
    and αⱼ the prior precision of weight j: the evidence's effective number of parameters.
    None where H's weight block is singular (a flat prior on collinear columns)."""
    _, unravel = ravel_pytree(z)
    shapes = tuple((a.shape, a.dtype) for a in jax.tree_util.tree_leaves(z))
    H = _ggn(problem.model, jax.tree_util.tree_structure(z), shapes)(
        jnp.asarray(loc), jnp.asarray(problem.X), jnp.asarray(problem.y),
        problem.likelihood, problem.prior)
    idx = index_of(z, "params")
    try:
        cov = np.linalg.inv(np.asarray(H, np.float64)[np.ix_(idx, idx)])
    except np.linalg.LinAlgError:
        return None
    alpha = np.asarray(_prior_precision(problem.likelihood, problem.prior, unravel, loc))[idx]
    return float(np.sum(np.clip(1.0 - alpha * np.diag(cov), 0.0, 1.0)))


def dual_posterior_dof(problem: Problem, z, loc) -> float | None:
    """:func:`posterior_dof` through the N × N dual of H's weight block βJᵀJ + diag(α) (J the
    rows' Jacobian in the weights, β = 1/σ² at ``loc``): with K = β J diag(α)⁻¹ Jᵀ of
    eigenvalues λₖ, γ = tr(βJᵀJ H⁻¹) = Σₖ λₖ / (1 + λₖ) ≤ N, the form MAP's evidence uses
    above its dense limit (bayesreg/training/evidence.py). The weight block is that of a
    Gaussian likelihood's GGN, so None for another likelihood, and where a weight has no
    prior curvature (a Flat prior: α = 0).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, numpy as np, bayesreg as br
    >>> from jax.flatten_util import ravel_pytree
    >>> from bayesreg.priors import as_prior_spec
    >>> from bayesreg.problem import Problem
    >>> X, y = np.linspace(-1, 1, 6)[:, None], np.zeros(6)
    >>> problem = Problem(br.Linear(), br.GaussianLikelihood(0.5), as_prior_spec(br.Gaussian(1.0)),
    ...                   X, y, jax.random.key(0))
    >>> z = {"params": br.Linear().init(jax.random.key(1), 1), "theta": {}, "hyper": {}}
    >>> loc = ravel_pytree(z)[0]
    >>> bool(np.isclose(dual_posterior_dof(problem, z, loc), posterior_dof(problem, z, loc)))
    True
    """
    lik = problem.likelihood
    if not isinstance(lik, GaussianLikelihood) or is_hierarchical(problem.prior):
        return None
    _, unravel = ravel_pytree(z)
    alpha = np.asarray(_prior_precision(lik, problem.prior, unravel, loc),
                       np.float64)[index_of(z, "params")]
    if not np.all(alpha > 0):
        return None
    latent = unravel(jnp.asarray(loc))
    shapes = tuple((a.shape, a.dtype) for a in jax.tree_util.tree_leaves(latent["params"]))
    J = np.asarray(_jacobian(problem.model, jax.tree_util.tree_structure(latent["params"]),
                             shapes)(latent["params"], jnp.asarray(problem.X)), np.float64)
    beta = 1.0 / float(lik.noise_std(latent["theta"])) ** 2
    A = J / np.sqrt(alpha)
    lam = np.clip(np.linalg.eigvalsh(beta * (A @ A.T)), 0.0, None)
    return float(np.sum(lam / (1.0 + lam)))


@functools.lru_cache(maxsize=16)
def _jacobian(model, treedef, shapes):
    """The rows' Jacobian (N, P) of the first output in the flat weights, one jitted function
    of (params, X) per model and structure."""
    like = jax.tree_util.tree_unflatten(treedef, [jnp.zeros(s, d) for s, d in shapes])
    unravel = ravel_pytree(like)[1]

    def jac(params, X):
        ggn = curvature.GGN(lambda v, rows: model.apply(unravel(v), rows)[:, :1], X)
        return ggn.jacobian(ravel_pytree(params)[0])[:, 0]

    return jax.jit(jac)


@functools.lru_cache(maxsize=16)
def _ggn(model, treedef, shapes):
    """The latent GGN as one jitted function of (loc, X, y, likelihood, prior), built once
    per model and latent structure: a second fit of the same shapes compiles nothing."""
    like = jax.tree_util.tree_unflatten(treedef, [jnp.zeros(s, d) for s, d in shapes])
    unravel = ravel_pytree(like)[1]
    return jax.jit(lambda loc, X, y, lik, prior: curvature.latent(
        "ggn", model, lik, prior, unravel, X, y)(loc))


def evidence_noise(problem: Problem, z, loc, gamma: float) -> float | None:
    """σ at the evidence's fixed point at q's mean μ: σ² = Σᵢ (yᵢ − f(xᵢ; μ))² / (N − γ),
    γ from :func:`posterior_dof` (the weights the full curvature counts as determined), the
    rule by which MAP's evidence learns σ (bayesreg/training/evidence.py). In the units the
    fit works in. None where the model nearly interpolates its rows (N − γ < 1: less than
    one row's worth of residual to measure σ on; the exact evidence refuses such a fit).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, numpy as np, bayesreg as br
    >>> from jax.flatten_util import ravel_pytree
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


def mode_noise(problem: Problem, z, iterations: int = 8) -> float | None:
    """σ at the evidence's fixed point with the weights held at the latent point ``z`` (VI's
    starting mode): σ² ← RSS / (N − γ(σ)) from z's own σ, γ by :func:`curvature_dof`, until
    σ moves by less than 0.1% (two or three steps on the networks measured). None where γ
    cannot be formed or the mode interpolates its rows (N − γ < 1 on the way: RSS near 0
    drives σ, so γ, to the rows' count)."""
    sigma = None
    for _ in range(iterations):
        loc = ravel_pytree(z)[0]
        gamma = curvature_dof(problem, z, loc)
        new = None if gamma is None else evidence_noise(problem, z, loc, gamma)
        if new is None or not new > 0:
            return None
        if sigma is not None and abs(new - sigma) < 1e-3 * sigma:
            return new
        sigma = new
        z = dict(z, theta={"log_noise": jnp.log(jnp.asarray(sigma, loc.dtype))})
    return sigma


def pruned(problem: Problem, z, params) -> float | None:
    """σ at the mode ``z`` VI started from (:func:`mode_noise`) when q's mean, the weights
    ``params``, leaves more than ``PRUNED_RSS`` times the residual σ²N that σ expects: mean
    field has switched off units the data need. None when it has not, and where the mode
    interpolates (no σ to measure against)."""
    rss, mode_rss = residual_sum(problem, params), residual_sum(problem, z["params"])
    if not rss > PRUNED_RSS * mode_rss:  # RSS(mode) ≤ σ²N: no σ needed to rule it out
        return None
    sigma = mode_noise(problem, z)
    return sigma if sigma is not None and rss > PRUNED_RSS * problem.n * sigma**2 else None


def noise_source(likelihood, noise) -> str:
    """How σ was set: "given", "evidence", "elbo", or "none" (a likelihood without one σ)."""
    if not isinstance(likelihood, GaussianLikelihood) or likelihood.heteroscedastic:
        return "none"
    if not likelihood.learned_noise:
        return "given"
    return "evidence" if noise is not None else "elbo"


def residual_sum(problem: Problem, params) -> float:
    """Σᵢ (yᵢ − f(xᵢ))² of the first output at the weights ``params``, in float64."""
    f = np.asarray(problem.model.apply(params, jnp.asarray(problem.X)))[:, 0]
    return float(np.sum((np.asarray(problem.y, np.float64) - f) ** 2))


def interpolation_warning(gamma: float, n: int) -> str:
    """The warning when the evidence cannot set σ: the model interpolates its rows."""
    return (f"VI: the curvature counts {gamma:.1f} weights as determined by {n} rows: the "
            "model interpolates them and leaves no residual to set σ by the evidence, so σ "
            "is the ELBO's (a narrower prior, more rows, or "
            "likelihood=br.GaussianLikelihood(noise=...))")


def inflation_warning(dof, gamma, n: int, inflation) -> str | None:
    """The warning when the ELBO's σ is wider than the evidence's by more than
    ``INFLATION_LIMIT`` (:func:`mean_field_check`); None otherwise, or σ not learned."""
    if inflation is None or not inflation > INFLATION_LIMIT:
        return None
    full = "" if gamma is None else f", the full curvature at q's mean {gamma:.0f}"
    return (f"VI: mean field counts {dof:.0f} weights as determined by the {n} rows{full} "
            "(diagnostics['mean_field_dof'], ['posterior_dof']): each such weight adds its "
            "spread to every prediction and the learned σ grows to absorb it, by about "
            f"{100 * (inflation - 1):.0f}% here (σ and the bands too wide, "
            "diagnostics['sigma_inflation']). For a network use LaplaceApprox, SGLD or NUTS, "
            "or give σ (likelihood=br.GaussianLikelihood(noise=...))"
            + ("" if gamma is None else "; VI(noise='evidence') sets σ by the evidence"))


def pruning_warning(pruned: bool, at: str, rss: float, n: int, noise) -> str | None:
    """The warning when mean field has switched off units the data need (over-pruning,
    Trippe & Turner 2018): the first q's mean left more than ``PRUNED_RSS`` times the
    residual the mode's σ expects (``pruned``, :func:`pruned`) and σ was not set at the mode
    (``noise="elbo"``); or, σ set there, q's mean still leaves more than ``PRUNED_RSS``
    times the residual σ²N."""
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


def _prior_precision(likelihood, prior, unravel, loc):
    return prior_diag(lambda v: -latent_log_prior(likelihood, prior, unravel(v)),
                      jnp.asarray(loc))


def mean_field_dof(likelihood, prior, z, loc, scale) -> float | None:
    r"""γ_MF = Σⱼ (1 − αⱼ ρⱼ²) over the weights: how many of them mean-field q treats as
    determined by the data, αⱼ the prior precision of weight j and ρⱼ² its variance under q.

    At the mean-field optimum of a Gaussian target 1/ρⱼ² = Aⱼⱼ = hⱼⱼ + αⱼ (module docstring),
    so each term is hⱼⱼ/(hⱼⱼ + αⱼ), the diagonal counterpart of the effective number of
    parameters γ of the evidence. A network's weights are correlated, so mean field counts
    many as pinned down by the data, each adds its spread to every training prediction, and
    a learned σ grows to absorb it (diabetes, MLP(50): 112 of 601 on 354 rows, σ 57.9
    against NUTS's 51.2; docs/methods/vi.md). None unless every prior is a Gaussian (or
    Flat) that is not hierarchical.

    Examples
    --------
    >>> import jax.numpy as jnp, bayesreg as br
    >>> z = {"params": {"weights": [jnp.zeros((2, 1))], "biases": [jnp.zeros(1)]},
    ...      "theta": {}, "hyper": {}}
    >>> prior = {"weights": br.Gaussian(1.0), "biases": br.Flat()}
    >>> # q's variances 0.5 and 1.0 for the weights (α = 1), anything for the flat bias
    >>> mean_field_dof(br.GaussianLikelihood(1.0), prior, z, jnp.zeros(3),
    ...                jnp.array([7.0, 0.5 ** 0.5, 1.0]))  # order: bias, w₁, w₂
    1.5
    """
    if is_hierarchical(prior) or not all(isinstance(p, Gaussian | Flat)
                                         for p in prior.values()):
        return None
    _, unravel = ravel_pytree(z)
    alpha = _prior_precision(likelihood, prior, unravel, loc)
    idx = index_of(z, "params")
    share = 1.0 - np.asarray(alpha)[idx] * np.asarray(scale)[idx] ** 2
    return float(np.sum(np.clip(share, 0.0, 1.0)))
