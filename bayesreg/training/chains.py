"""NUTS chains run by blackjax: window adaptation and sampling as one compiled program.

Why blackjax: on ``benchmarks/nuts_vs_blackjax.py`` (MLP(10) on 100 diabetes rows, 121
coordinates) NumPyro's NUTS kernel, run in a loop compiled once per kernel, took 1.04–1.25×
the seconds per effective sample of blackjax's NUTS written by hand on the same log density
(the chains' seconds, warmup included, per leapfrog step of sampling: 16.9 µs against 16.4 µs
now), and the first fit took 10–12 s to compile and run against 6 s now. With blackjax's
kernels br.NUTS runs the hand-written program (the same seconds on the same starts and keys);
what remains of the ratio (0.97–1.01 over 10–20 seeds) is the fit's own work after sampling,
R-hat and ESS (7 ms, :mod:`bayesreg.chain_diagnostics`), and the seeds' ESS
(``benchmarks/results.md``).

The chains move the latent pytree itself, not a flat vector: with the log density of a flat
vector unravelled at each gradient (what NumPyro's single site needed) the same blackjax
program took 1.3–1.4× as long on the benchmark's posterior (median 1.40–1.46 s against
1.05 s per fit, same starts and keys, the same number of leapfrog steps).

:func:`chain_program` returns, for a model, the shapes and the sampler's settings,
``run(key, z0, X, y, likelihood, prior)``: ``num_warmup`` steps of
``blackjax.window_adaptation`` (Stan's schedule: step size by dual averaging towards
``target_accept``, a diagonal or dense inverse mass matrix from doubling windows) and then
``num_samples`` NUTS steps with the adapted step size and mass matrix, for one chain, all in
one ``jax.jit`` program (``vmap`` over the chains when vectorized, ``pmap`` when parallel)
cached on those arguments. The data, likelihood and prior are traced arguments, so a second
fit of the same shapes, with other values, compiles nothing. The log density is
:func:`bayesreg.latent.latent_log_joint` of the latent state z.

The iteration count travels in the chain's state (:class:`Counted`), so that the progress
tick (:func:`bayesreg._progress.tick`, only when ``report``) fires from inside the
adaptation's loop as well as the sampling loop; under ``vmap`` the count stays unbatched and
the tick a real ``cond``.
"""

from __future__ import annotations

import functools
import time
import types
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from bayesreg import _progress, mcmc
from bayesreg.latent import latent_log_joint

FIELDS = ("diverging", "accept_prob", "num_steps", "energy", "lp")
BATCH = {"sequential": "one", "vectorized": "vmap", "parallel": "pmap"}  # chain_method's


class Counted(NamedTuple):
    """blackjax's ``HMCState`` and the number of iterations that led to it."""

    position: jax.Array
    logdensity: jax.Array
    logdensity_grad: jax.Array
    count: jax.Array


def counting_nuts(total: int, report: bool):
    """``blackjax.nuts`` (its ``init`` and ``build_kernel``, what ``window_adaptation`` uses)
    on :class:`Counted` states; each step ticks the progress reporter when ``report``."""
    import blackjax  # deferred: 0.32 s, paid only by a NUTS fit
    from blackjax.mcmc.hmc import HMCState

    def init(position, logdensity_fn):
        return Counted(*blackjax.nuts.init(position, logdensity_fn), jnp.zeros((), jnp.int32))

    def build_kernel(integrator=blackjax.mcmc.integrators.velocity_verlet):
        step = blackjax.nuts.build_kernel(integrator)

        def kernel(key, state, logdensity_fn, step_size, inverse_mass_matrix, **kwargs):
            new, info = step(key, HMCState(*state[:3]), logdensity_fn, step_size,
                             inverse_mass_matrix, **kwargs)
            count = state.count + 1
            if report:
                _progress.tick(count, total)
            return Counted(*new, count), info

        return kernel

    return types.SimpleNamespace(init=init, build_kernel=build_kernel)


@functools.lru_cache(maxsize=16)
def chain_program(model, signature, *, num_warmup: int, num_samples: int, dense: bool,
                  target_accept: float, max_tree_depth: int, report: bool, batch: str):
    """``run(keys, z0, X, y, likelihood, prior) -> (z draws, {field: values}, start_ok)``,
    with a leading chain axis on ``keys``, the latent state ``z0`` and the outputs when
    ``batch`` is "vmap" or "pmap" (none when "one"); the draws are ``z0``'s tree with a
    draws axis. ``start_ok``: the log density and its gradient are finite at ``z0``.
    ``signature`` (:func:`bayesreg._pytree.signature`) is a key of the cache only: each
    cached program then holds one executable, and 16 of them at most are kept, whatever
    shapes come."""
    import blackjax  # deferred: 0.32 s, paid only by a NUTS fit
    from blackjax.adaptation.base import get_filter_adapt_info_fn
    from blackjax.adaptation.step_size import find_reasonable_step_size
    from blackjax.mcmc.hmc import HMCState

    del signature
    nuts = counting_nuts(num_warmup + num_samples, report)

    def one_chain(key, z0, X, y, likelihood, prior):
        def logdensity(z):
            return latent_log_joint(model, likelihood, prior, z, X, y)

        warm_key, sample_key = jax.random.split(key)
        adapt = blackjax.window_adaptation(
            nuts, logdensity, is_mass_matrix_diagonal=not dense,
            target_acceptance_rate=target_accept, max_num_doublings=max_tree_depth,
            adaptation_info_fn=get_filter_adapt_info_fn())  # keep no per-step warmup info
        start = nuts.init(z0, logdensity)
        if num_warmup:
            (state, parameters), _ = adapt.run(warm_key, z0, num_steps=num_warmup)
        else:  # no adaptation (blackjax's schedule needs a step): unit mass, and the step
            # size that halves or doubles from 1 to where one leapfrog step is accepted with
            # probability 0.8 (Hoffman & Gelman's heuristic, as NumPyro's initial step size)
            flat = ravel_pytree(z0)[0]
            mass = jnp.eye(flat.size, dtype=flat.dtype) if dense else jnp.ones_like(flat)
            hmc = functools.partial(blackjax.hmc.build_kernel(), logdensity_fn=logdensity,
                                    inverse_mass_matrix=mass, num_integration_steps=1)
            eps = find_reasonable_step_size(
                warm_key, lambda e: functools.partial(hmc, step_size=e),
                HMCState(*start[:3]), jnp.ones((), flat.dtype), target_accept=0.8)
            state, parameters = start, {"step_size": eps, "inverse_mass_matrix": mass,
                                        "max_num_doublings": max_tree_depth}
        start_ok = jnp.isfinite(start.logdensity) & jnp.all(
            jnp.isfinite(ravel_pytree(start.logdensity_grad)[0]))
        kernel = nuts.build_kernel()

        def step(state, k):
            state, info = kernel(k, state, logdensity, **parameters)
            return state, (state.position, {
                "diverging": info.is_divergent, "accept_prob": info.acceptance_rate,
                "num_steps": info.num_integration_steps, "energy": info.energy,
                "lp": state.logdensity})

        _, (z, extra) = jax.lax.scan(step, state, jax.random.split(sample_key, num_samples))
        extra["step_size"] = jnp.full(num_samples, parameters["step_size"])
        return z, extra, start_ok

    if batch == "one":
        return jax.jit(one_chain)
    axes = (0, 0, None, None, None, None)
    if batch == "vmap":
        return jax.jit(jax.vmap(one_chain, in_axes=axes))
    return jax.pmap(one_chain, in_axes=axes)


def sample(program_for, keys, starts, args, chain_method: str):
    """Every chain of ``keys`` (C,) from ``starts`` (the latent tree, leaves (C, ...)) laid
    out as ``chain_method`` says: (z, {field: values}, start_ok, seconds) with leaves
    (C, S, ...) and start_ok (C,) on every process, and the wall seconds of the sampling
    (not of building the program). ``program_for(batch, one_start)`` gives
    :func:`chain_program`'s run for the batching ("one", "vmap" or "pmap", :data:`BATCH`)
    and one chain's start. On a cluster (``jax.distributed.initialize``) parallel chains are
    split over the processes, each running the keys and starts one process would give its
    chains (:func:`bayesreg.mcmc.process_chains`), and gathered back on every process —
    start_ok too, so that every process sees a chain that could not start. A single chain
    runs as "one".

    Examples
    --------
    >>> def program_for(batch, one_start):  # a "chain" that stays at its start for 3 draws
    ...     def run(key, z0):
    ...         return jnp.stack([z0] * 3), {}, jnp.isfinite(z0)
    ...     return jax.jit(jax.vmap(run) if batch == "vmap" else run)
    >>> keys = jax.random.split(jax.random.key(0), 2)
    >>> z, extra, start_ok, seconds = sample(program_for, keys, jnp.arange(2.0), (),
    ...                                      "vectorized")
    >>> z.tolist(), start_ok.tolist()
    ([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]], [True, True])
    """
    num_chains = len(keys)
    share = mcmc.process_chains(num_chains, chain_method == "parallel")
    if share is not None:
        keys, starts = keys[share], _take(starts, share)
    layout = chain_method if len(keys) > 1 else "sequential"
    program = program_for(BATCH[layout], _take(starts, 0))
    start = time.perf_counter()
    out = jax.block_until_ready(run_chains(program, keys, starts, args, layout))
    if share is not None:
        out = mcmc.all_chains(out, num_chains)
    return (*out, time.perf_counter() - start)


def run_chains(program, keys, starts, args, chain_method: str):
    """Every chain of ``keys`` (C,) from ``starts`` (the latent tree, leaves (C, ...))
    through ``program`` (from :func:`chain_program` with the ``batch`` that ``chain_method``
    needs: "one" for "sequential", "vmap" for "vectorized", "pmap" for "parallel"):
    (z, leaves (C, S, ...), {field: (C, S)}, start_ok (C,)). Parallel chains run in groups of
    the local device count."""
    if chain_method == "vectorized":
        return program(keys, starts, *args)
    if chain_method == "parallel":
        size = jax.local_device_count()
        groups = [program(keys[i:i + size], _take(starts, slice(i, i + size)), *args)
                  for i in range(0, len(keys), size)]
        return jax.tree_util.tree_map(lambda *a: jnp.concatenate(a), *groups)
    chains = [program(keys[c], _take(starts, c), *args) for c in range(len(keys))]
    return jax.tree_util.tree_map(lambda *a: jnp.stack(a), *chains)


def _take(tree, index):
    return jax.tree_util.tree_map(lambda a: a[index], tree)
