"""Diagnostics of Markov chains, written once for every sampler (NUTS, SGLD).

:func:`chain_summary` reduces draws with leading axes (chains, draws) to the worst
coordinate's rank-normalised split R-hat (ArviZ; one chain is split into its two halves, so
that R-hat exists for it too) and the smallest bulk and tail ESS. :func:`warn` turns the
summary into the ``UserWarning`` that names the fix: R-hat above :data:`RHAT_LIMIT`, and
divergent transitions where the sampler reports them. :func:`process_chains` and
:func:`all_chains` split independent chains over the processes of a cluster and gather
them back (:mod:`bayesreg.data.devices`), so that a sampler never decides about devices.
"""

from __future__ import annotations

import warnings

import jax
import numpy as np

from bayesreg._pytree import leaf_names
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
    import arviz as az  # deferred: 3.9 s to import (measured on 2 shared cores)

    names = leaf_names(z)
    arrays = {n: np.asarray(a) for n, a in zip(names, jax.tree_util.tree_leaves(z), strict=True)}

    def extreme(ds, fn):
        values = [float(fn(ds[v].values)) for v in ds.data_vars if ds[v].size]
        return fn(np.array(values)) if values else float("nan")

    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        # a stuck chain has zero variance: ArviZ then divides by zero and reports inf/nan
        warnings.simplefilter("ignore", RuntimeWarning)
        dataset = az.convert_to_dataset(arrays)
        split = az.convert_to_dataset({n: _halves(a) for n, a in arrays.items()})
        r_hat = extreme(az.rhat(split), np.nanmax)
        ess_bulk = extreme(az.ess(dataset, method="bulk"), np.nanmin)
        ess_tail = extreme(az.ess(dataset, method="tail"), np.nanmin)
    return {"r_hat": float(r_hat), "ess_bulk": float(ess_bulk), "ess_tail": float(ess_tail)}


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
