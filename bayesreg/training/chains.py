"""NumPyro kernels run by a compiled loop that is built once per sampler and shape.

``numpyro.infer.MCMC.run`` collects draws with ``fori_collect``, which defines and jit-compiles
a fresh loop body on every call: a second fit with the same shapes compiled the sampling loop
again (about 0.9 s per sequential chain for a small network on 2 CPU cores), and the compiled
programs of 19 repeated fits held 300 MB more than the first (``benchmarks/nuts_vs_blackjax.py``,
``tests/methods/test_nuts.py``). :func:`run_chains` performs the calls ``MCMC.run`` makes — the
same key split across chains, the kernel's ``init`` per chain, ``num_warmup`` adaptation steps
and ``num_samples`` kept steps of ``kernel.sample`` — inside one ``lax.scan`` program cached on
the kernel, so the program is compiled once. It is the same computation as ``MCMC.run``'s but
a differently compiled program: on a toy model the draws agree to 2e-6, and on a network's
posterior the rounding differences grow along the chaotic trajectories into different (equally
valid) draws.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from bayesreg import _progress


def _field(state, path: str):
    """``state.a.b`` for ``path`` "a.b" (NumPyro's extra-field names)."""
    for name in path.split("."):
        state = getattr(state, name)
    return state


@functools.lru_cache(maxsize=16)
def compiled_chains(kernel, num_warmup: int, num_samples: int, fields: tuple[str, ...],
                    vectorized: bool):
    """``run(state, model_args) -> (z draws, {field: values})`` for ``kernel``: ``num_warmup``
    steps of ``kernel.sample`` then ``num_samples`` kept ones, leading axis the draws (then
    the chains when ``vectorized``: ``state`` holds every chain). Compiled once per kernel
    (an ``lru_cache`` keyed on it: the kernels are themselves cached per settings and shapes)."""

    del vectorized  # a kernel initialised on several keys vmaps its own sample function

    def step(state, args):
        return kernel.sample(state, args, {})

    @jax.jit
    def run(state, args):
        state = jax.lax.fori_loop(0, num_warmup, lambda _, s: step(s, args), state)

        def keep(s, _):
            s = step(s, args)
            return s, (s.z, {f: _field(s, f) for f in fields})

        return jax.lax.scan(keep, state, None, length=num_samples)[1]

    return run


def run_chains(kernel, key, init_params, model_args, *, num_warmup: int, num_samples: int,
               num_chains: int, vectorized: bool, fields: tuple[str, ...]):
    """(draws of the latent sites, extra fields), each with leading axes (chains, draws), by
    the calls ``MCMC(kernel, ..., jit_model_args=True).run(key, *model_args, init_params=...)``
    makes before ``get_samples(group_by_chain=True)`` / ``get_extra_fields(...)``.
    ``init_params`` has a leading chain axis when ``num_chains > 1``.

    Examples
    --------
    >>> import numpyro, numpyro.distributions as dist
    >>> from numpyro.infer import NUTS
    >>> def model(y):
    ...     mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    ...     numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)
    >>> z, extra = run_chains(NUTS(model), jax.random.key(0), {"mu": jnp.zeros(2)},
    ...                       (jnp.ones(5),), num_warmup=50, num_samples=20, num_chains=2,
    ...                       vectorized=False, fields=("diverging",))
    >>> z["mu"].shape, extra["diverging"].shape
    ((2, 20), (2, 20))
    """
    run = compiled_chains(kernel, num_warmup, num_samples, tuple(fields),
                          vectorized and num_chains > 1)

    def start(k, params):
        return kernel.init(k, num_warmup, params, model_args=model_args, model_kwargs={})

    if num_chains == 1:
        out = run(start(key, init_params), model_args)
        return jax.tree_util.tree_map(lambda a: a[None], out)
    keys = jax.random.split(key, num_chains)
    if vectorized:  # one program over every chain: draws come back (draws, chains)
        out = run(start(keys, init_params), model_args)
        return jax.tree_util.tree_map(lambda a: jnp.swapaxes(a, 0, 1), out)
    chains = [run(start(keys[c], jax.tree_util.tree_map(lambda a, c=c: a[c], init_params)),
                  model_args) for c in range(num_chains)]
    return jax.tree_util.tree_map(lambda *a: jnp.stack(a), *chains)


def reporting(kernel, total: int):
    """``kernel`` whose ``sample`` also ticks the active progress reporter (the draws are
    unchanged: the tick is a host callback under a ``cond``)."""
    plain = kernel.sample

    def sample(state, model_args, model_kwargs):
        new = plain(state, model_args, model_kwargs)
        _progress.tick(new.i, total)
        return new

    kernel.sample = sample
    return kernel
