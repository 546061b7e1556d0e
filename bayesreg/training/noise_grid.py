r"""The noise chosen on validation rows: the alternative to the evidence
(``MAP(hyperparameters="validation")``, also used by :class:`bayesreg.MCDropout`).

A fraction of the rows is held out. For each σₖ on a grid (``NOISE_GRID`` × std(y),
geometric), a network is trained on the remaining rows with the noise fixed at σₖ, and σₖ
is scored by the mean log predictive density of the held-out rows. The network returned is
the one trained with the chosen σ — selection and result share one regularization.

All K networks are one vmapped program: with a fixed noise only λ = σ²/s² moves the mode,
so training at noise 1 with the prior rescaled (N(0, s²) → N(0, (s/σₖ)²),
Laplace(b) → Laplace(b/σₖ²)) has the mode of noise σₖ, and the grid is a grid of prior
scales stacked along the member axis of :func:`bayesreg.training.run.run_members`.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from bayesreg._random import split_rows
from bayesreg.approximation import draw_outputs
from bayesreg.likelihoods import GaussianLikelihood
from bayesreg.predictive import Predictive
from bayesreg.priors import Flat, Gaussian, Laplace, Tempered
from bayesreg.problem import Problem
from bayesreg.training.results import check_trace
from bayesreg.training.run import run_members

NOISE_GRID = (0.02, 1.0, 16)  # candidate σ / std(y): geomspace(start, stop, num)


def at_noise(prior, sigma: float):
    """The prior that, with noise 1, gives the MAP objective of noise σ (up to a factor σ²)."""
    if isinstance(prior, Tempered):
        return Tempered(at_noise(prior.prior, sigma), prior.power)
    if isinstance(prior, Flat):
        return prior
    if isinstance(prior, Gaussian) and np.ndim(prior.scale) == 0:
        return prior.replace_unchecked(scale=float(prior.scale) / sigma)
    if isinstance(prior, Laplace) and np.ndim(prior.scale) == 0:
        return prior.replace_unchecked(scale=float(prior.scale) / sigma**2)
    raise ValueError(f"choosing the noise on validation rows needs a Gaussian, Laplace or Flat "
                     f"prior with one scale; got {prior!r}. Use hyperparameters='evidence' "
                     "(the default) or fix the noise.")


def fit_noise_grid(problem: Problem, training, model, prior: dict, key, score,
                   fraction: float = 0.2):
    """Train one network per σₖ and keep the best by ``score(params_k, σₖ, X_val, y_val)``.

    Returns (state of the chosen network with its log σ, its trace, diagnostics,
    (X_train, y_train) it was trained on).
    """

    val, train = split_rows(problem, fraction, key)
    part = dataclasses.replace(problem, X=problem.X[train], y=problem.y[train], model=model,
                               likelihood=GaussianLikelihood(1.0))
    sigmas = (float(np.std(problem.y)) or 1.0) * np.geomspace(*NOISE_GRID)
    specs = [{g: at_noise(p, s) for g, p in prior.items()} for s in sigmas]
    spec = jax.tree_util.tree_map(
        lambda *a: jnp.stack([jnp.asarray(x, jnp.float32) for x in a]), *specs)
    k = len(sigmas)
    init_key, train_key = jax.random.split(jax.random.fold_in(key, 1))
    # resolved as a single fit resolves it: the rate depends on the likelihood and prior
    method = training.resolved(model, problem.likelihood, prior)
    epochs, per_epoch, batch = method.plan(part.n)
    # one initialisation and one key for every candidate: they differ by σ alone
    state0 = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (k, *jnp.shape(a))),
                                    part.init_state(init_key))
    states, trace = run_members(
        method.objective(model), method, (epochs, per_epoch, batch), (None, 0),
        part.likelihood, spec, state0, part.X, part.y,
        jnp.stack([train_key] * k), part.X[:0], part.y[:0])
    scores = np.array([score(jax.tree_util.tree_map(lambda a, i=i: a[i], states["params"]),
                             float(s), problem.X[val], problem.y[val])
                       for i, s in enumerate(sigmas)])
    best = int(np.argmax(scores))
    state = {"params": jax.tree_util.tree_map(lambda a: a[best], states["params"]),
             "theta": {"log_noise": jnp.asarray(np.log(sigmas[best]), jnp.float32)}}
    trace = check_trace(jax.tree_util.tree_map(lambda a: a[best], trace), method.lr, part)
    diagnostics = {"hyperparameters": "validation", "noise_std": float(sigmas[best]),
                   "validation_loglik": float(scores[best]), "noise_grid": sigmas,
                   "validation_logliks": scores}
    return state, trace, diagnostics, (part.X, part.y)


def masked_score(net, key, num_samples: int):
    """The ``score`` of :func:`fit_noise_grid` for MC dropout: the mean log predictive density
    of the held-out rows under ``num_samples`` masks of the network ``net``
    (:class:`bayesreg.masks.DropoutNetwork`) drawn from ``key``, the noise fixed at σ.

    Examples
    --------
    >>> import jax, numpy as np, bayesreg as br
    >>> from bayesreg.masks import DropoutNetwork
    >>> net = DropoutNetwork(br.MLP((4,)), 0.1)
    >>> params = net.init(jax.random.key(0), 1)
    >>> score = masked_score(net, jax.random.key(1), 10)
    >>> bool(np.isfinite(score(params, 1.0, np.zeros((3, 1)), np.zeros(3))))
    True
    """
    def score(params, sigma, X_val, y_val):
        f = draw_outputs(net.base, net.masked_params(params, key, num_samples), X_val)[..., 0]
        return float(np.mean(Predictive(f, np.full((1, 1), sigma)).log_prob(y_val)))

    return score
