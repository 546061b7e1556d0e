"""Diagnostics of Markov chains, written once for every sampler (NUTS, SGLD).

:func:`chain_summary` reduces draws with leading axes (chains, draws) to the worst
coordinate's rank-normalised split R-hat (ArviZ's numbers, computed over every coordinate at
once by :mod:`bayesreg.chain_diagnostics`; one chain is split into its two halves, so that
R-hat exists for it too) and the smallest bulk and tail ESS. :func:`warn` turns the
summary into the ``UserWarning`` that names the fix: R-hat above :data:`RHAT_LIMIT`, and
divergent transitions where the sampler reports them. :func:`process_chains` and
:func:`all_chains` split independent chains over the processes of a cluster and gather
them back (:mod:`bayesreg.data.devices`), so that a sampler never decides about devices.
:func:`chain_summaries` picks what R-hat and ESS are computed on (identified quantities, not
a network's every weight) and :func:`diverged` tells a chain that ran away.
"""

from __future__ import annotations

import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from bayesreg import chain_diagnostics
from bayesreg.data import devices as _distributed

RHAT_LIMIT = 1.01


def _halves(a: np.ndarray) -> np.ndarray:
    """One chain (1, S, ...) as two chains of its halves (2, S // 2, ...): split-R-hat."""
    if a.shape[0] != 1:
        return a
    k = a.shape[1] // 2
    return a[:, : 2 * k].reshape(2, k, *a.shape[2:])


def chain_summary(z) -> dict:
    """Max split R-hat and min bulk / tail ESS over every coordinate of ``z``.

    Parameters
    ----------
    z : pytree
        Draws; every leaf has leading axes (chains, draws).

    Returns
    -------
    dict
        ``r_hat``, ``ess_bulk``, ``ess_tail`` as floats (nan when there is no coordinate).
        A chain that never moves has zero variance: its R-hat and ESS are inf or nan, and
        no NumPy warning is raised about it.

    Examples
    --------
    >>> import numpy as np
    >>> draws = {"w": np.random.default_rng(0).standard_normal((2, 500, 3))}
    >>> s = chain_summary(draws)
    >>> s["r_hat"] < 1.01, s["ess_bulk"] > 300
    (True, True)
    >>> stuck = {"w": np.stack([np.zeros(500), np.ones(500)])}  # two chains that disagree
    >>> chain_summary(stuck)["r_hat"] > 1.01
    True
    """
    leaves = [np.asarray(a) for a in jax.tree_util.tree_leaves(z) if np.size(a)]
    if not leaves:
        return {"r_hat": float("nan"), "ess_bulk": float("nan"), "ess_tail": float("nan")}
    # every coordinate side by side: (chains, draws, coordinates)
    draws = np.concatenate([a.reshape(a.shape[0], a.shape[1], -1) for a in leaves], axis=2)

    def extreme(values, fn):  # over the coordinates that have a number
        values = values[~np.isnan(values)]
        return float(fn(values)) if values.size else float("nan")

    return {"r_hat": extreme(chain_diagnostics.rhat(_halves(draws)), np.max),
            "ess_bulk": extreme(chain_diagnostics.ess_bulk(draws), np.min),
            "ess_tail": extreme(chain_diagnostics.ess_tail(draws), np.min)}


def warn(sampler: str, diagnostics: dict, rhat_fix: str, divergence_fix: str = "",
         stacklevel: int = 5) -> None:
    """Warn when ``diagnostics["r_hat"]`` exceeds :data:`RHAT_LIMIT`, and when
    ``diagnostics["divergences"]`` (if present) is positive, naming the fix.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn("SGLD", {"r_hat": 1.2}, "run longer")
    >>> str(caught[0].message)
    'SGLD: max R-hat 1.200 > 1.01: the chains disagree; run longer'
    """
    if diagnostics.get("divergences", 0) > 0:
        warnings.warn(f"{sampler}: {diagnostics['divergences']} divergent transitions after "
                      f"warmup; {divergence_fix}", UserWarning, stacklevel=stacklevel)
    if diagnostics["r_hat"] > RHAT_LIMIT:
        warnings.warn(f"{sampler}: max R-hat {diagnostics['r_hat']:.3f} > {RHAT_LIMIT}: the "
                      f"chains disagree; {rhat_fix}", UserWarning, stacklevel=stacklevel)


def process_chains(num_chains: int, parallel: bool) -> np.ndarray | None:
    """The indices of the chains this process runs when ``parallel`` chains are spread over
    the processes of a cluster (``jax.distributed.initialize``); None when every process
    runs them all (one process, one chain, or chains that are not parallel).

    Examples
    --------
    >>> process_chains(4, parallel=True) is None  # one process
    True
    """
    if not (parallel and num_chains > 1 and _distributed.multiprocess()):
        return None
    return _distributed.chain_share(num_chains)


def all_chains(tree, num_chains: int):
    """Every process's chains (from :func:`process_chains`) gathered into (num_chains, ...)
    arrays on every process: a collective, which every process calls in the same order."""
    return _distributed.gather_chains(tree, num_chains)


SUMMARY_ROWS = 8  # training rows at which the model's output is summarised
SUMMARY_WEIGHTS = 64  # a linear-in-parameters model with at most this many: its weights


def chain_summaries(model, z, X) -> dict:
    """What R-hat and ESS are computed on (:func:`bayesreg.mcmc.chain_summary`): a few
    identified quantities of the draws z (leading axes (chains, draws)), not every weight.
    The noise and prior scales (θ, log s) always; the weights of a linear-in-parameters
    model with at most ``SUMMARY_WEIGHTS`` of them (its posterior has one mode); otherwise
    the model's output at ``SUMMARY_ROWS`` training rows spread over X (a network's weights
    are not identified: hidden units permute and flip, chains in equivalent modes disagree
    on every weight while agreeing on every prediction).

    Examples
    --------
    >>> import jax, numpy as np, bayesreg as br
    >>> params = br.MLP((3,)).init(jax.random.key(0), 2)
    >>> z = {"params": jax.tree_util.tree_map(lambda a: np.zeros((2, 5, *a.shape)), params),
    ...      "theta": {"log_noise": np.zeros((2, 5))}, "hyper": {}}
    >>> s = chain_summaries(br.MLP((3,)), z, np.ones((100, 2)))
    >>> sorted(s), s["output"].shape
    (['hyper', 'output', 'theta'], (2, 5, 8, 1))
    """
    out = {"theta": z["theta"], "hyper": z["hyper"]}
    size = sum(np.size(a[0, 0]) for a in jax.tree_util.tree_leaves(z["params"]))
    if getattr(model, "linear_in_params", False) and size <= SUMMARY_WEIGHTS:
        return {**out, "params": z["params"]}
    return {**out, "output": _outputs(model, z["params"], _summary_rows(X))}


RUNAWAY = 1e4  # draws whose outputs at training rows exceed this × max(|y|, 1) ran away


def diverged(model, z, X, y) -> bool:
    """Whether a chain ran away: a non-finite draw, or a draw whose output at the
    ``SUMMARY_ROWS`` training rows exceeds ``RUNAWAY`` × max(|y|, 1). A step too large for
    the posterior's curvature multiplies the distance to the mode by |1 − ηh| > 1 at every
    step: a few hundred steps at 1.1 overflow to inf, but at 1.01 a chain ends near 1e8
    with every number finite (z: leading axes (chains, draws))."""
    if not all(bool(jnp.all(jnp.isfinite(a))) for a in jax.tree_util.tree_leaves(z)):
        return True
    out = np.asarray(_outputs(model, z["params"], _summary_rows(X)))
    bound = RUNAWAY * max(float(np.max(np.abs(np.asarray(y, np.float64)))), 1.0)
    return not bool(np.all(np.abs(out) <= bound))


def _summary_rows(X) -> jax.Array:
    """``SUMMARY_ROWS`` training rows spread evenly over X (a memmap reads these only)."""
    n = len(X)
    rows = np.unique(np.linspace(0, n - 1, min(n, SUMMARY_ROWS)).round().astype(int))
    return jnp.asarray(np.asarray(X[rows]))


@partial(jax.jit, static_argnames=("model",))
def _outputs(model, params, X):
    """The model's output at X for every draw: (chains, draws, len(X), ...)."""
    return jax.vmap(jax.vmap(lambda p: model.apply(p, X)))(params)
