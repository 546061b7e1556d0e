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
(:func:`bayesreg.variational_noise.evidence_noise`) where γ can be formed.
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
from bayesreg.training.evidence import prior_precision

# σ wider than the evidence's by more than this factor warns (10%: the bands as much too wide)
INFLATION_LIMIT = 1.1
# the full curvature is formed up to this many latent coordinates (a D × D matrix), its dual
# (at most this many rows) above; either up to this many entries of the rows' Jacobian
# (N × D: 2·10⁷ floats, 80 MB in float32)
DENSE_LIMIT, JACOBIAN_LIMIT = 3000, 20_000_000
# above DENSE_LIMIT, mean_field_dof above this share of the rows warns
MEAN_FIELD_SHARE = 0.5


def mean_field_check(problem: Problem, z, loc, scale):
    """(γ_MF, γ, σ inflation) of a mean-field q (``loc``, ``scale``, flat over ``z``'s
    structure) fitted to ``problem``: None where not defined (a prior that is not Gaussian or
    Flat, a hierarchical one; γ and the inflation without a learned σ). Up to
    ``DENSE_LIMIT`` coordinates γ comes from the dense weight block of H
    (:func:`posterior_dof`), above from its N × N dual (:func:`dual_posterior_dof`). Where
    neither is formed (several tasks, too many Jacobian entries, above ``DENSE_LIMIT`` a
    flat prior on some weight or more than ``DENSE_LIMIT`` rows) and where H's weight block is
    singular, γ is None and the
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
    coordinates (:func:`posterior_dof`), from its dual above (:func:`dual_posterior_dof`);
    None above ``JACOBIAN_LIMIT`` Jacobian entries or for several tasks."""
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
    """:func:`posterior_dof` through the eigenvalues μₖ of J diag(α)⁻¹Jᵀ
    (:func:`kernel_eigenvalues`, J the rows' Jacobian in the weights at ``loc``):
    γ = tr(βJᵀJ (βJᵀJ + diag α)⁻¹) = Σₖ μₖ / (σ² + μₖ) ≤ min(N, P), σ at ``loc``, the form
    MAP's evidence uses above its dense limit (bayesreg/training/evidence.py). The weight
    block of a Gaussian likelihood's GGN; None where :func:`kernel_eigenvalues` is.

    Examples
    --------
    >>> import jax, numpy as np, bayesreg as br
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
    latent = ravel_pytree(z)[1](jnp.asarray(loc))
    mu = kernel_eigenvalues(problem, latent["params"])
    if mu is None:
        return None
    sigma = float(np.ravel(problem.likelihood.noise_std(latent["theta"]))[0])
    return float(np.sum(mu / (sigma**2 + mu)))


def kernel_eigenvalues(problem: Problem, params) -> np.ndarray | None:
    """The eigenvalues μ (float64, min(N, P) of them) of J diag(α)⁻¹Jᵀ at the weights
    ``params``: J (N, P) the rows' Jacobian of the first output, α the prior's curvature
    (:func:`bayesreg.training.evidence.prior_precision`: exact for a Gaussian prior, the
    Gaussian majoriser's for Laplace, Student-t and Cauchy ones). Formed on the smaller side
    (A Aᵀ or AᵀA, A = J diag(α)^(−1/2): the same nonzero eigenvalues). None for a Gaussian
    likelihood's σ-free or several-task problem, a hierarchical prior, a weight with no prior
    curvature (Flat), min(N, P) > ``DENSE_LIMIT`` or N·P > ``JACOBIAN_LIMIT``.

    Examples
    --------
    A linear model: J = [X, 1], so with α = 1 the eigenvalues are those of [X, 1]ᵀ[X, 1].

    >>> import jax, numpy as np, bayesreg as br
    >>> from bayesreg.priors import as_prior_spec
    >>> from bayesreg.problem import Problem
    >>> X = np.array([[0.0], [1.0], [2.0]])
    >>> problem = Problem(br.Linear(), br.GaussianLikelihood(), as_prior_spec(br.Gaussian(1.0)),
    ...                   X, np.zeros(3), jax.random.key(0))
    >>> params = {"weights": [np.zeros((1, 1))], "biases": [np.zeros(1)]}
    >>> Phi = np.c_[X, np.ones(3)]
    >>> bool(np.allclose(kernel_eigenvalues(problem, params), np.linalg.eigvalsh(Phi.T @ Phi),
    ...                  atol=1e-5))
    True
    """
    lik, n = problem.likelihood, problem.n
    params = jax.tree_util.tree_map(jnp.asarray, params)  # the working precision
    flat, unravel = ravel_pytree(params)
    if (not isinstance(lik, GaussianLikelihood) or is_hierarchical(problem.prior)
            or np.ndim(problem.y) != 1 or min(n, flat.size) > DENSE_LIMIT
            or n * flat.size > JACOBIAN_LIMIT):
        return None
    alpha = np.asarray(prior_precision(problem.prior, unravel, flat), np.float64)
    if not np.all(alpha > 0):
        return None
    shapes = tuple((a.shape, a.dtype) for a in jax.tree_util.tree_leaves(params))
    J = np.asarray(_jacobian(problem.model, jax.tree_util.tree_structure(params), shapes)(
        flat, jnp.asarray(problem.X)), np.float64)
    A = J / np.sqrt(alpha)
    return np.clip(np.linalg.eigvalsh(A @ A.T if n <= flat.size else A.T @ A), 0.0, None)


@functools.lru_cache(maxsize=16)
def _jacobian(model, treedef, shapes):
    """The rows' Jacobian (N, P) of the first output in the flat weights, one jitted function
    of (flat, X) per model and structure."""
    like = jax.tree_util.tree_unflatten(treedef, [jnp.zeros(s, d) for s, d in shapes])
    unravel = ravel_pytree(like)[1]

    def jac(flat, X):
        return curvature.GGN(lambda v, rows: model.apply(unravel(v), rows)[:, :1], X).jacobian(
            flat)[:, 0]

    return jax.jit(jac)


@functools.lru_cache(maxsize=16)
def _ggn(model, treedef, shapes):
    """The latent GGN as one jitted function of (loc, X, y, likelihood, prior), built once
    per model and latent structure: a second fit of the same shapes compiles nothing."""
    like = jax.tree_util.tree_unflatten(treedef, [jnp.zeros(s, d) for s, d in shapes])
    unravel = ravel_pytree(like)[1]
    return jax.jit(lambda loc, X, y, lik, prior: curvature.latent(
        "ggn", model, lik, prior, unravel, X, y)(loc))


def inflation_warning(dof, gamma, n: int, inflation) -> str | None:
    """The warning when the ELBO's σ is wider than the evidence's by more than
    ``INFLATION_LIMIT`` (:func:`mean_field_check`); None otherwise, or σ not learned.

    Examples
    --------
    >>> inflation_warning(112.0, 14.7, 354, 1.18)[:47]
    'VI: mean field counts 112 weights as determined'
    >>> inflation_warning(6.8, 6.6, 12, 1.03) is None  # within 10%
    True
    """
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
