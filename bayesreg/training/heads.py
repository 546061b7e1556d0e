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

a pseudo-count prior on Σ worth ν = ``POOL_PSEUDO_TASKS`` heads drawn from the isotropic
prior the evidence learned (ν → 0 is plain type-II maximum likelihood). The heads
the tasks with many labels learned span the directions of φ that carry signal; Σ puts its
variance there, and the task with few labels only has to find its coordinates in that span.
The returned heads are the posterior means mₜ; the body is unchanged.

On ``bayesreg.datasets.multitask_example`` (three tasks, one with 12 labels) task 2's test
RMSE under ``br.fit(br.MLP((32,), activation="tanh"), X, Y)`` went 0.465 → 0.209, 0.136 →
0.079, 0.333 → 0.072 for data seeds 0, 1, 2 (docs/multitask.md).
"""

from __future__ import annotations

import warnings

import jax
import numpy as np

from bayesreg.last_layer import design
from bayesreg.likelihoods import GaussianLikelihood
from bayesreg.models import MLP
from bayesreg.priors import Gaussian
from bayesreg.problem import Problem
from bayesreg.training.trainer import Trained

# ν of the M-step: the isotropic prior counts as this many heads. Measured on the three data
# seeds of the multi-task example (task 2's RMSE, seeds 0/1/2): ν = 0 0.212/0.112/0.062,
# 0.01 0.208/0.081/0.063, 0.1 0.210/0.079/0.072, 1 0.261/0.094/0.090, 3 0.337/0.099/0.092
POOL_PSEUDO_TASKS = 0.1
MAX_ITERATIONS, TOLERANCE = 500, 1e-6  # EM stops when Σ changes by less than this, relatively
MAX_FEATURES = 1024  # a body wider than this keeps the per-array prior (Σ is H × H)


def poolable(problem: Problem, trace: dict) -> bool:
    """Whether the heads of ``problem``'s fit are pooled: several tasks, an MLP or a model
    linear in its parameters (whose last layer is the heads), a homoscedastic Gaussian
    likelihood and prior scales the evidence learned (a given prior is used as given), an
    output layer of at most ``MAX_FEATURES`` inputs, rows in memory."""
    lik, y, model = problem.likelihood, problem.y, problem.model
    return (getattr(y, "ndim", 1) == 2 and y.shape[1] >= 2
            and (isinstance(model, MLP) or getattr(model, "linear_in_params", False))
            and isinstance(problem.X, np.ndarray | jax.Array)
            and isinstance(lik, GaussianLikelihood) and not lik.heteroscedastic
            and trace.get("hyperparameters") == "evidence" and problem.learn_prior
            and all(isinstance(p, Gaussian) for p in problem.prior.values()))


def pooled(net: Trained, members: bool) -> Trained:
    """``net`` (one network, or ``members`` networks on a leading axis) with its heads pooled
    (:func:`pool_heads`) where :func:`poolable`, else as it is: what MAP and the ensemble
    return."""
    if not poolable(net.rows, net.diagnostics):
        return net
    state, diagnostics = pool_heads(net.rows, net.state, net.prior, net.diagnostics, members)
    return net._replace(state=state, diagnostics=diagnostics)


def pool_heads(problem: Problem, state, prior: dict, trace: dict, members: bool):
    """(state with every head replaced by its posterior mean under the pooled prior, trace
    with ``heads_prior_variances``: the largest eigenvalues of each learned Σ, 2T of them,
    and ``heads_em_iterations``).

    ``state`` holds one network, or ``members`` networks on a leading axis; ``trace`` its
    ``noise_std`` (T,) or (M, T) and the scales the evidence learned, ``prior_scales``
    ((L,) or (M, L) per group: each member pooled under its own); ``prior`` is the fallback
    where they are absent.
    """
    params = state["params"]
    if np.shape(params["weights"][-1])[-2] > MAX_FEATURES:
        return state, trace
    count = np.shape(params["weights"][0])[0] if members else 1
    sigma = np.broadcast_to(np.asarray(trace["noise_std"], np.float64),
                            (count, problem.y.shape[1]))
    weights, biases, variances, iterations = [], [], [], []
    for m in range(count):
        mode = jax.tree_util.tree_map(lambda a, m=m: np.asarray(a)[m] if members
                                      else np.asarray(a), params)
        scale_w, scale_b = (_last_scale(trace, prior, g, m if members else None)
                            for g in ("weights", "biases"))
        heads, cov, steps = _em(design(problem.model, mode, problem.X), np.asarray(problem.y),
                                sigma[m], scale_w, scale_b)
        iterations.append(steps)
        weights.append(heads[:-1])
        biases.append(heads[-1])
        variances.append(np.linalg.eigvalsh(cov)[::-1][:2 * problem.y.shape[1]])
    stack = (lambda xs: np.stack(xs)) if members else (lambda xs: xs[0])
    last_w, last_b = params["weights"][-1], params["biases"][-1]
    new = dict(params, weights=[*params["weights"][:-1], stack(weights).astype(last_w.dtype)],
               biases=[*params["biases"][:-1], stack(biases).astype(last_b.dtype)])
    if max(iterations) >= MAX_ITERATIONS:  # (the last may have settled: no harm in saying)
        warnings.warn(f"the pooled heads' EM stopped at {MAX_ITERATIONS} iterations before Σ "
                      f"settled (to {TOLERANCE:g}): the heads are those of its last step",
                      UserWarning, stacklevel=4)
    return dict(state, params=new), {**trace, "heads_prior_variances": stack(variances),
                                     "heads_em_iterations": stack(iterations)}


def _last_scale(trace: dict, prior: dict, group: str, member: int | None) -> float:
    """The output layer's learned prior scale of ``group``, of one member (or the network)."""
    scales = trace.get("prior_scales")
    if scales is not None:
        scale = np.asarray(scales[group], np.float64)
        return float((scale if member is None else scale[member])[-1])
    scale = prior[group].scale
    return float(np.asarray(scale[-1] if isinstance(scale, list | tuple) else scale))


def _em(phi, y, sigma, scale_w: float, scale_b: float):
    """EM for Σ (module docstring) on features Φ̃ = [φ, 1] (N, H + 1) and targets y (N, T)
    with NaN where a label is missing: (the heads' posterior means (H + 1, T), Σ (H, H),
    the iterations run)."""
    n_features = phi.shape[1] - 1
    seen = ~np.isnan(y)
    # each task's Φₜᵀ Φₜ / σₜ² and Φₜᵀ yₜ / σₜ² do not change between iterations
    grams = [phi[seen[:, t]].T @ phi[seen[:, t]] / sigma[t] ** 2 for t in range(y.shape[1])]
    moments = [phi[seen[:, t]].T @ y[seen[:, t], t] / sigma[t] ** 2 for t in range(y.shape[1])]
    cov = scale_w**2 * np.eye(n_features)
    floor = POOL_PSEUDO_TASKS * scale_w**2 * np.eye(n_features)
    precision = np.zeros((n_features + 1, n_features + 1))
    precision[-1, -1] = 1.0 / scale_b**2
    iterations, done = 0, False
    while not done and iterations < MAX_ITERATIONS:
        iterations += 1
        precision[:-1, :-1] = np.linalg.inv(cov)
        heads, second = [], floor.copy()
        for gram, moment in zip(grams, moments, strict=True):
            post_cov = np.linalg.inv(gram + precision)
            mean = post_cov @ moment
            heads.append(mean)
            second += (np.outer(mean, mean) + post_cov)[:-1, :-1]
        new = second / (POOL_PSEUDO_TASKS + len(grams))
        done = np.max(np.abs(new - cov)) <= TOLERANCE * np.max(np.abs(new))
        cov = new
    return np.stack(heads, axis=1), cov, iterations
