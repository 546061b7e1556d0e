r"""The chains of stochastic-gradient MCMC (:class:`bayesreg.SGLD`): the Langevin transform
(:mod:`bayesreg.training.langevin`) run where the rows are.

:func:`sample` runs every chain of a :class:`~bayesreg.training.langevin.Plan`: in memory each
chain is the training loop (:func:`bayesreg.training.loop.train_loop`, one compiled scan, data
parallel over several devices) with the Langevin transform, the loss :class:`NegLogDensity`
and a :class:`Thinning` collector; over chunks of a memmap a Python loop of compiled chunk
scans (:func:`sample_streamed`) of the loop's step. :func:`log_joint_draws` evaluates the log
joint of every kept draw in one pass (where asked).
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from bayesreg.data import devices as _distributed
from bayesreg.data import stream as _stream
from bayesreg.latent import latent_log_joint, latent_log_prior
from bayesreg.problem import log_likelihood
from bayesreg.training.langevin import Plan, langevin
from bayesreg.training.loop import step, train_loop
from bayesreg.training.streamed import chunk_plan, sum_log_likelihood_streamed


@dataclasses.dataclass(frozen=True)
class Thinning:
    """The kept draws of a run as a collector (:class:`bayesreg.training.loop.Collector`):
    after every ``every`` = ``plan.thinning`` steps the state is offered; those of the
    sampling phases are written to their slot of a (cycles × draws, ...) buffer, those of
    the warm-up and of cSG-MCMC's exploration are dropped.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> plan = Plan(cycles=2, explore=2, explore_noise=False, draws=1, thinning=2, batch=None,
    ...             schedule="cyclical", n=10, warmup=0)
    >>> keep = Thinning(plan)
    >>> acc = keep.init(jnp.zeros(()))
    >>> for i in range(4):  # blocks 0, 2: exploration; 1, 3: kept
    ...     acc = keep.update(acc, jnp.asarray(float(i)), i)
    >>> acc.tolist()
    [1.0, 3.0]
    """

    plan: Plan
    whole_state = True  # θ and the prior scales are draws too

    @property
    def every(self) -> int:
        return self.plan.thinning

    def init(self, state):
        size = self.plan.cycles * self.plan.draws
        return jax.tree_util.tree_map(lambda a: jnp.zeros((size, *jnp.shape(a)), a.dtype),
                                      state)

    def update(self, acc, state, i):
        """``state`` after block ``i`` (from 0) of ``every`` steps."""
        blocks, skip = self.plan.cycle_length // self.every, self.plan.explore // self.every
        cycle, block = i // blocks, i % blocks
        slot = jnp.where(block >= skip, cycle * self.plan.draws + block - skip,
                         self.plan.cycles * self.plan.draws)  # out of range: dropped
        return jax.tree_util.tree_map(lambda s, a: s.at[slot].set(a, mode="drop"), acc, state)


def minibatch_log_joint(model, likelihood, prior, z, X, y, scale=1.0) -> jax.Array:
    """log p̃(z) = scale · Σ_rows log p(yᵢ | xᵢ, z) + log p(z): the latent log joint of
    :mod:`bayesreg.latent` with the likelihood of a mini-batch scaled by
    scale = N/|B| (scale 1 on every row: ``latent_log_joint`` itself).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, bayesreg as br
    >>> from bayesreg.priors import as_prior_spec
    >>> model, lik, prior = br.Linear(), br.GaussianLikelihood(1.0), as_prior_spec(br.Flat())
    >>> z = {"params": model.init(jax.random.key(0), 1), "theta": {}, "hyper": {}}
    >>> X, y = jnp.zeros((2, 1)), jnp.zeros(2)
    >>> round(float(minibatch_log_joint(model, lik, prior, z, X, y, scale=2.0)), 4)  # 4 rows
    -3.6758
    """
    ll = jnp.sum(log_likelihood(model, likelihood, z, X, y))
    return scale * ll + latent_log_prior(likelihood, prior, z)


@dataclasses.dataclass(frozen=True)
class NegLogDensity:
    """The loss whose exp(−loss) the chains sample: −log p̃(z) on a batch of |B| rows of
    N = ``n`` (:func:`minibatch_log_joint` at scale N/|B|), in the objective's signature of
    the training loop (:func:`bayesreg.training.loop.step`), so that a Langevin step is the
    loop's step with the Langevin transform. Hashable, like the training objectives.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, bayesreg as br
    >>> from bayesreg.priors import as_prior_spec
    >>> model, lik, prior = br.Linear(), br.GaussianLikelihood(1.0), as_prior_spec(br.Flat())
    >>> z = {"params": model.init(jax.random.key(0), 1), "theta": {}, "hyper": {}}
    >>> X, y = jnp.zeros((2, 1)), jnp.zeros(2)
    >>> round(float(NegLogDensity(model)(z, lik, prior, X, y, None, 4)), 4)  # 4 · ½ log 2π
    3.6758
    """

    model: Any

    def __call__(self, z, likelihood, prior, X, y, key, n, weights=None) -> jax.Array:
        del key, weights  # no noise injection; the batches are never padded
        return -minibatch_log_joint(self.model, likelihood, prior, z, X, y, n / X.shape[0])


def sample(model, plan: Plan, likelihood, prior, z0, keys, X, y, step_size, momentum,
           precondition=None):
    """Kept states of every chain (leading axes (chains, cycles × draws)) where the rows are:
    an X read by chunks streams (mini-batches only), an X in memory runs one compiled scan,
    data parallel when the mini-batches can be spread over several devices."""
    if _stream.is_lazy(X):
        if plan.batch is None:
            raise ValueError("full-batch SGLD (batch_size=None, or at least N) needs every "
                             "row at each step")
        return sample_streamed(model, plan, likelihood, prior, z0, keys, X, np.asarray(y),
                               step_size, momentum, precondition)
    args, sharding = _distributed.data_parallel(
        plan.batch, (likelihood, prior, z0, keys, jnp.asarray(X), jnp.asarray(y)))
    z = _sample(model, plan, *args, step_size, momentum, precondition,
                batch_sharding=sharding)
    return z if sharding is None else _distributed.local(z)


BATCH_KEY = 0x5EED  # folded into a chain's key for its batches' rows (apart from the noise)


@dataclasses.dataclass(frozen=True)
class Chain:
    """One chain as the training loop's ``method`` (:func:`bayesreg.training.loop.train_loop`):
    its Langevin transform, and one batch a unit, the rows drawn with replacement
    (``resample``: O(batch) work a step, whatever N; a permutation of every row at each step
    cost O(N log N), 85% of the sampler at N = 1000). With replacement the N/|B|-scaled
    batch sum stays an unbiased estimate of the log likelihood, with a variance larger by at
    most N/(N − 1) than without."""

    tx: optax.GradientTransformation
    resample: bool = True
    optimizer: str = "langevin"
    early_stopping: None = None
    restore_best: bool = False
    progress_bar: bool = False

    def transform(self, total):
        del total  # the schedule is the plan's
        return self.tx


@partial(jax.jit, static_argnames=("model", "plan", "batch_sharding"))
def _sample(model, plan: Plan, likelihood, prior, z0, keys, X, y, step_size, momentum,
            precondition=None, batch_sharding=None):
    """:func:`sample` in memory: each chain is the training loop
    (:func:`~bayesreg.training.loop.train_loop`) with the Langevin transform for the loss
    −log p̃ (:class:`NegLogDensity`), its kept states a :class:`Thinning` collector; the
    batches' rows from ``fold_in(key, BATCH_KEY)``, the noise from the key in the
    transform's state. With ``batch_sharding`` (X rows, y) each mini-batch is spread over
    the devices (the gradient's sum over the batch is reduced across them)."""

    def chain(z, key):
        tx = plan.transform(step_size, momentum, key, plan.n, precondition)
        _, trace = train_loop(NegLogDensity(model), Chain(tx), plan.steps, 1,
                              plan.batch or plan.n, likelihood, prior, z, X, y,
                              jax.random.fold_in(key, BATCH_KEY), X[:0], y[:0],
                              collect=Thinning(plan), batch_sharding=batch_sharding)
        return trace["collected"]

    return jax.vmap(chain)(z0, keys)


@partial(jax.jit, static_argnames=("model", "plan", "keep"))
def _sample_chunk(model, plan: Plan, keep: int, likelihood, prior, carry, keys, X, y, t0,
                  count, n, step_size, momentum, precondition=None):
    """One chunk of a streamed run: X (L, B, D) and y (L, B) hold L batches' rows in file
    order, of which the first ``count``·B are real (the rest padding, skipped). Each chain
    shuffles the real rows into its own batches on the device (a permutation drawn from its
    key at step ``t0``) and takes one step per batch, steps t0 … t0 + count − 1, with the
    in-memory sampler's noise (the transform's state carries t and the key on); the carry
    (z, Langevin state) goes in and out. Returns (carry, (kept, kept_count)): the kept
    states of the chunk in order, in ``keep`` slots (the first kept_count used). ``plan`` is
    static without N: ``n`` (traced) is the number of rows, so one program serves every
    chunk and every fit of the same shapes."""
    steps, b = y.shape
    rows = steps * b
    loss = NegLogDensity(model)

    def chain(carry, key):
        tx = plan.transform(step_size, momentum, key, n, precondition)
        perm_key = jax.random.split(jax.random.fold_in(key, t0))[0]
        u = jax.random.uniform(perm_key, (rows,))
        perm = jnp.argsort(jnp.where(jnp.arange(rows) < count * b, u, 2.0))
        Xf, yf = X.reshape(rows, -1), y.reshape(rows)

        def one(c, j):
            z, state, buf, i = c
            phase = (t0 + j) % plan.cycle_length
            idx = jax.lax.dynamic_slice_in_dim(perm, j * b, b)
            real = j < count
            (z, state), _ = step(loss, tx, likelihood, prior, n, (z, state),
                                 (Xf[idx], yf[idx], key), real=real)
            kept = (real & (phase >= plan.explore)
                    & ((phase - plan.explore + 1) % plan.thinning == 0))
            slot = jnp.where(kept, i, keep)  # out of range: dropped
            buf = jax.tree_util.tree_map(lambda s, a: s.at[slot].set(a, mode="drop"), buf, z)
            return (z, state, buf, i + kept.astype(i.dtype)), None

        z, state = carry
        buf0 = jax.tree_util.tree_map(lambda a: jnp.zeros((keep, *a.shape), a.dtype), z)
        (z, state, buf, i), _ = jax.lax.scan(one, (z, state, buf0, jnp.zeros((), jnp.int32)),
                                             jnp.arange(steps))
        return (z, state), (buf, i)

    return jax.vmap(chain)(carry, keys)


@jax.jit
def _init_states(z0, keys):
    """Every chain's Langevin state before its first step."""
    return jax.vmap(lambda z, k: langevin(0.0, key=k).init(z))(z0, keys)


def sample_streamed(model, plan: Plan, likelihood, prior, z0, keys, X, y, step_size,
                    momentum, precondition=None):
    """:func:`sample` over an X read by chunks (:mod:`bayesreg.data.stream`): a Python loop
    over chunks of batches, each one compiled scan (:func:`_sample_chunk`) carrying every
    chain's (z, Langevin state) on, the next chunk read by a background thread meanwhile.
    The batches are those of a streamed mini-batch MAP epoch
    (:func:`bayesreg.training.streamed.train_streamed`): an epoch's N // B blocks of B
    contiguous rows (from a random start, modulo N) visited in a random order, a chunk of
    about ``_stream.CHUNK_BYTES`` at a time, its rows shuffled on the device into each
    chain's own batches; epochs follow each other until the plan's steps are done. The
    likelihood gradient is scaled by N/B, as in memory."""
    n, d = X.shape
    batch = plan.batch
    dtype = jnp.asarray(0.0).dtype  # the working precision
    per_epoch = n // batch
    n_chunks, length = chunk_plan(batch, d * dtype.itemsize, per_epoch)
    keep = -(-length // plan.thinning) + 1  # kept states one chunk can hold
    seeds = np.asarray(jax.random.key_data(keys)).reshape(-1).tolist()

    def chunks():
        """(first step, steps, runs of rows) of each chunk, epoch after epoch, until the
        plan's steps are done (the last chunk cut short)."""
        t, e = 0, 0
        while True:
            rng = np.random.default_rng([*seeds, 11, e])
            for _, count, runs in _stream.epoch_chunks(rng, n, batch, per_epoch, n_chunks):
                count = min(count, plan.steps - t)
                if count <= 0:
                    return
                yield t, count, runs
                t += count
            e += 1

    read = _stream.batch_reader(X, y, length, batch, dtype)  # file order: chains shuffle

    def reader(t, count, runs):
        return lambda: (read(runs), (t, count))

    static = plan._replace(n=0)  # N enters as a value: one program for every N
    n_rows = jnp.asarray(n, dtype)
    carry = (z0, _init_states(z0, keys))
    kept = []
    for (Xc, yc), (t, count) in _stream.prefetch(reader(*c) for c in chunks()):
        carry, (buf, used) = _sample_chunk(model, static, keep, likelihood, prior, carry,
                                           keys, Xc, yc, t, count, n_rows, step_size,
                                           momentum, precondition)
        m = int(np.asarray(used)[0])  # waits for the chunk before its buffer is refilled
        if m:
            kept.append(jax.tree_util.tree_map(lambda a, m=m: np.asarray(a[:, :m]), buf))
    return jax.tree_util.tree_map(lambda *a: jnp.asarray(np.concatenate(a, axis=1)), *kept)


def log_joint_draws(model, likelihood, prior, z, X, y) -> np.ndarray:
    """log p(z, y | X) of every draw (a leading axis): in memory one compiled map; over an
    X read by chunks one pass, the log likelihood summed chunk by chunk (float64, host)."""
    if not _stream.is_lazy(X):
        return np.asarray(_log_joint_draws(model, likelihood, prior, z, jnp.asarray(X),
                                           jnp.asarray(y)))
    return (np.asarray(_log_prior_draws(likelihood, prior, z), np.float64)
            + sum_log_likelihood_streamed(model, likelihood, z, X, np.asarray(y)))


@jax.jit
def _log_prior_draws(likelihood, prior, z):
    return jax.vmap(lambda zi: latent_log_prior(likelihood, prior, zi))(z)


@partial(jax.jit, static_argnames=("model",))
def _log_joint_draws(model, likelihood, prior, z, X, y):
    return jax.lax.map(lambda zi: latent_log_joint(model, likelihood, prior, zi, X, y), z)
