"""How VI sets a learned σ (bayesreg.variational_noise): the fixed point at the mode against
the dense curvature, the interpolating mode, and the pruning test."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import bayesreg as br
from bayesreg.priors import as_prior_spec
from bayesreg.problem import Problem
from bayesreg.variational import posterior_dof
from bayesreg.variational_noise import PRUNED_RSS, mode_noise, pruned, residual_sum


def _curve(n=30, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, (n, 1))
    return X, np.sin(2 * X[:, 0]) + 0.3 * rng.standard_normal(n)


def _problem(X, y, lik=None, prior=None):
    lik = lik or br.GaussianLikelihood(noise_prior=1.0)
    prior = as_prior_spec(prior or br.Gaussian(1.0))
    return Problem(br.MLP((8,)), lik, prior, X, y, jax.random.key(0))


@functools.lru_cache(maxsize=1)
def _curve_mode():
    """Weights near a least-squares fit of ``_curve()`` (a few hundred Adam steps), shared by
    the tests."""
    X, y = _curve()
    return _mode(_problem(X, y))


def _mode(problem):
    fit = br.fit(problem.model, problem.X, problem.y, method=br.MAP(steps=600),
                 likelihood=br.GaussianLikelihood(0.3), prior=br.Gaussian(1.0), center=False)
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a[0]), fit.params)


def test_the_fixed_point_at_the_mode_solves_the_evidence_equation():
    """σ from mode_noise (the eigenvalues of J diag(α)⁻¹Jᵀ, a damped iteration) satisfies
    σ² = RSS / (N − γ(σ)) with γ from the dense inverse of the latent GGN's weight block at
    that σ, an independent computation."""
    X, y = _curve()
    problem = _problem(X, y)
    params = _curve_mode()
    sigma = mode_noise(problem, params)
    z = {"params": params, "theta": {"log_noise": jnp.log(jnp.float32(sigma))}, "hyper": {}}
    gamma = posterior_dof(problem, z, ravel_pytree(z)[0])
    assert 1.0 < gamma < 25.0  # the curvature matters: neither limit
    assert sigma**2 == pytest.approx(residual_sum(problem, params) / (30 - gamma), rel=1e-3)


def test_an_interpolating_mode_has_no_sigma():
    """Three rows, a linear model of five features and a bias at the least-squares fit that
    interpolates them (RSS ~ 1e-12): N − γ falls below 1 on the way, so no σ rather than
    σ ≈ 0. The same weights on the rows with noise added do have one."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((3, 5)), rng.standard_normal(3)
    coef = np.linalg.lstsq(np.c_[X, np.ones(3)], y, rcond=None)[0]
    params = {"weights": [coef[:5, None]], "biases": [coef[5:]]}
    lik, prior = br.GaussianLikelihood(noise_prior=1.0), as_prior_spec(br.Gaussian(1.0))
    problem = Problem(br.Linear(), lik, prior, X, y, jax.random.key(0))
    assert residual_sum(problem, params) < 1e-10
    assert mode_noise(problem, params) is None
    X2 = np.r_[X, rng.standard_normal((7, 5))]
    noisy = Problem(br.Linear(), lik, prior, X2, X2 @ coef[:5] + coef[5] + rng.standard_normal(10),
                    jax.random.key(0))
    assert mode_noise(noisy, params) > 0


def test_pruned_compares_a_flat_mean_with_the_mode_and_only_for_a_learned_sigma():
    """q's mean switched off (all weights 0: f = 0) against a mode that fits: pruned gives the
    mode's σ (RSS(0) ≫ 2σ²N); the mode against itself, and any given σ, give None."""
    X, y = _curve()
    problem = _problem(X, y)
    params = _curve_mode()
    off = jax.tree_util.tree_map(jnp.zeros_like, params)
    z = {"params": params, "theta": {"log_noise": jnp.log(jnp.float32(0.3))}, "hyper": {}}
    sigma = pruned(problem, z, off)
    assert sigma == pytest.approx(mode_noise(problem, params), rel=1e-6)
    assert residual_sum(problem, off) > PRUNED_RSS * 30 * sigma**2
    assert pruned(problem, z, params) is None
    given = _problem(X, y, lik=br.GaussianLikelihood(np.array([1.0])))
    assert pruned(given, dict(z, theta={}), off) is None


def test_a_laplace_prior_uses_its_majorisers_curvature():
    """Under a Laplace prior the exact curvature is 0, so the eigenvalues use the Gaussian
    majoriser's (as MAP's evidence does) and the mode still has a σ; a Flat prior has none."""
    X, y = _curve()
    params = _curve_mode()
    assert mode_noise(_problem(X, y, prior=br.Laplace(1.0)), params) > 0
    assert mode_noise(_problem(X, y, prior=br.Flat()), params) is None


def test_fewer_rows_than_weights_still_find_the_root():
    """10 rows, 20 features and a bias under N(0, 0.3²), at the ridge mode. γ(σ → 0) → N, and
    at the mode's type-I σ = √(RSS/N) fewer than one row's worth of residual is left, so a
    fixed-point iteration started there stopped with no σ; the root of σ²(N − γ(σ)) = RSS,
    which leaves 2.5 rows, is found whatever the start and satisfies the equation with γ
    from the dense inverse."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((10, 20))
    y = X @ (0.3 * rng.standard_normal(20)) + 0.5 * rng.standard_normal(10)
    Phi, alpha = np.c_[X, np.ones(10)], 1 / 0.3**2
    coef = np.linalg.solve(Phi.T @ Phi + alpha * np.eye(21), Phi.T @ y)  # the mode at σ = 1
    params = {"weights": [coef[:20, None]], "biases": [coef[20:]]}
    problem = Problem(br.Linear(), br.GaussianLikelihood(noise_prior=1.0),
                      as_prior_spec(br.Gaussian(0.3)), X, y, jax.random.key(0))
    rss = residual_sum(problem, params)

    def gamma(sigma):
        G = Phi.T @ Phi / sigma**2
        return np.trace(G @ np.linalg.inv(G + alpha * np.eye(21)))

    assert 10 - gamma(np.sqrt(rss / 10)) < 1.0  # where the iteration would have started
    sigma = mode_noise(problem, params)
    assert 1.0 < 10 - gamma(sigma) < 3.0
    assert sigma**2 == pytest.approx(rss / (10 - gamma(sigma)), rel=1e-4)
