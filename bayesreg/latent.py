r"""The unconstrained latent state that NUTS, VI and the Laplace approximation work on.

z = {"params": model parameters, "theta": {"log_noise"} when the noise is learned,
     "hyper": {group: log scale} for each prior whose scale is itself a prior}

and its log density (up to the evidence)

    log p(z, y) = Σᵢ log p(yᵢ | xᵢ, φ, σ)
                + Σ_g log p(φ_g | s_g)                        weight prior, scale s_g
                + Σ_g [log p_hyper(s_g) + log s_g]            hyperprior on log s_g
                + log HalfNormal(σ; noise_prior) + log σ      noise prior on log σ

The log-Jacobian terms make the density the one of the unconstrained coordinates
(log s, log σ), which is what samplers and Gaussian approximations need.
"""

from __future__ import annotations

import threading

import jax
import jax.numpy as jnp
import numpy as np

from bayesreg.priors import PARAM_GROUPS, is_hierarchical
from bayesreg.problem import Problem, log_likelihood

# NumPyro keeps its effect-handler stack in a module-level list, so two models traced at
# once in two threads see each other's sites (duplicate-site errors, IndexError). VI holds
# this lock while NumPyro runs, and NUTS (blackjax, no handlers) holds it too, so that one
# run's progress ticks reach its own reporter (bayesreg._progress.active): the two are
# serialised across threads; every other method (MAP, ensembles, MC dropout, Laplace, Exact)
# runs in parallel.
NUMPYRO_LOCK = threading.RLock()


def hyper_groups(prior) -> tuple[str, ...]:
    """Parameter groups whose prior scale is sampled."""
    return tuple(g for g in PARAM_GROUPS if prior[g].hierarchical)


def init_latent(problem: Problem, key, jitter: float = 0.0) -> dict:
    """A starting z: the model's initialisation, log σ = log std(y), log s = log E[s]-ish 0.

    ``jitter`` > 0 adds U(−jitter, jitter) to every coordinate (distinct chain starts).
    """
    init_key, jitter_key = jax.random.split(key)
    state = problem.init_state(init_key)
    z = {"params": state["params"], "theta": state["theta"],
         "hyper": {g: jnp.zeros(()) for g in hyper_groups(problem.prior)}}
    if jitter <= 0:
        return z
    leaves, treedef = jax.tree_util.tree_flatten(z)
    keys = jax.random.split(jitter_key, len(leaves))
    leaves = [x + jax.random.uniform(k, jnp.shape(x), minval=-jitter, maxval=jitter)
              for x, k in zip(leaves, keys, strict=True)]
    return jax.tree_util.tree_unflatten(treedef, leaves)


def latent_log_prior(likelihood, prior, z) -> jax.Array:
    """All prior terms of log p(z, y) (weights, hyper scales, noise) in unconstrained space."""
    total = likelihood.log_noise_prior(z["theta"])
    for g in PARAM_GROUPS:
        p = prior[g]
        if p.hierarchical:
            log_s = z["hyper"][g]
            scale = jnp.exp(log_s)
            total = total + p.scale.log_prob(scale) + log_s + p.with_scale(scale).log_prob(
                z["params"][g])
        else:
            total = total + p.log_prob(z["params"][g])
    return total


def latent_log_joint(model, likelihood, prior, z, X, y) -> jax.Array:
    """log p(z, y | X): the density NUTS samples and the Laplace approximation expands."""
    ll = jnp.sum(log_likelihood(model, likelihood, z, X, y))
    return ll + latent_log_prior(likelihood, prior, z)


def split_draws(z_draws) -> tuple[dict, dict, dict]:
    """(params, theta, hyper scales s = exp(log s)) from draws of z, as NumPy arrays."""
    as_np = jax.tree_util.tree_map(np.asarray, z_draws)
    hyper = {f"{g}_scale": np.exp(v) for g, v in as_np.get("hyper", {}).items()}
    return as_np["params"], as_np["theta"], hyper


def check_hierarchical(prior, method: str) -> None:
    """Point estimates and Gaussian expansions of a hierarchical prior are degenerate."""
    if is_hierarchical(prior):
        raise ValueError(
            f"{method} cannot use a prior whose scale is itself a prior (the joint mode sits at "
            "scale → 0); use br.NUTS or br.VI, or give the scale a number"
        )
