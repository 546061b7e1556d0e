r"""Stochastic-gradient MCMC: the Langevin step as an optax transform, its step-size
schedules, and the compiled chains that run it over rows in memory or read by chunks.

:func:`langevin` is a ``GradientTransformation`` whose PRNG key lives in its state
(:class:`LangevinState`, as optax's ``add_noise`` keeps ``AddNoiseState``). Given the gradient
g of a loss (the negative log density −log p̃) it returns the update v of

    v ← m·v − η_t g + √(2(1 − m)η_t T)·ξ,   ξ ~ N(0, I),   z ← z + v

(temperature T = 1: Langevin dynamics for p̃; m = 0 is SGLD, m > 0 SGHMC with friction
1 − m). The noise of step t is drawn from ``fold_in(key, t)``, not from a key split at every
step, so that a step's noise does not depend on how the steps are cut into scans (thinning
blocks, chunks of a stream). :func:`constant`, :func:`polynomial_decay` and
:func:`cosine_cycles` are the schedules of η as optax schedules (count → value).

:class:`Plan` is the static shape of a run of :class:`bayesreg.SGLD` (cycles, exploration,
kept draws, thinning, batch); :func:`sample` runs its chains where the rows are — in
memory each chain is the training loop (:func:`bayesreg.training.loop.train_loop`, one
compiled scan, data parallel over several devices) with the Langevin transform, the loss
:class:`NegLogDensity` and a :class:`Thinning` collector; over chunks of a memmap a Python
loop of compiled chunk scans (:func:`sample_streamed`) of the loop's step — and
:func:`log_joint_draws` evaluates the log joint of every kept draw in one pass (where asked),
(:func:`bayesreg.mcmc.chain_summaries` picks the few quantities R-hat and ESS are computed
on).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from bayesreg.curvature import largest_eigenvalue, prior_diag
from bayesreg.data import devices as _distributed
from bayesreg.data import stream as _stream
from bayesreg.latent import latent_log_joint, latent_log_prior
from bayesreg.priors import is_hierarchical
from bayesreg.problem import log_likelihood
from bayesreg.training.loop import step, train_loop
from bayesreg.training.streamed import chunk_plan, sum_log_likelihood_streamed

POLY_DECAY = 0.55  # Welling & Teh's exponent γ ∈ (0.5, 1]


def _xp(count):
    return jnp if isinstance(count, jax.Array) else np


def constant(init_value: float) -> optax.Schedule:
    """η_t = ``init_value``, shaped like t (NumPy or JAX, as t is).

    Examples
    --------
    >>> import numpy as np
    >>> constant(0.1)(np.arange(3)).tolist()
    [0.1, 0.1, 0.1]
    """
    return lambda count: init_value * _xp(count).ones_like(count, dtype=float)


def polynomial_decay(init_value: float, warmup: int, power: float = POLY_DECAY
                     ) -> optax.Schedule:
    """η_t = ``init_value`` · (1 + t / ``warmup``)^(−``power``): Welling & Teh's a(b + t)^(−γ).

    Examples
    --------
    >>> round(float(polynomial_decay(1.0, 10)(10.0)), 4)  # 2^(−0.55)
    0.6830
    """
    return lambda count: init_value * (1.0 + count / max(1, warmup)) ** (-power)


def cosine_cycles(init_value: float, cycle_length: int) -> optax.Schedule:
    """η_t = (``init_value``/2)(cos(π (t mod L)/L) + 1): cSG-MCMC's cycles of L steps, each
    restarting at ``init_value`` (Zhang et al. 2020).

    Examples
    --------
    >>> import numpy as np
    >>> cosine_cycles(1.0, 4)(np.arange(5.0)).round(3).tolist()
    [1.0, 0.854, 0.5, 0.146, 1.0]
    """
    def schedule(count):
        xp = _xp(count)
        return init_value * 0.5 * (xp.cos(xp.pi * (count % cycle_length) / cycle_length) + 1.0)
    return schedule


class LangevinState(NamedTuple):
    """The steps taken (t), the velocity v (a pytree like the parameters) and the key from
    which step t's noise is drawn (``fold_in(key, t)``)."""

    count: jax.Array
    velocity: Any
    key: jax.Array


def langevin(learning_rate: float | optax.Schedule, momentum: float = 0.0, key=None,
             noise: bool | Callable = True, temperature: float = 1.0, precondition=None
             ) -> optax.GradientTransformation:
    r"""The Langevin step of SG-MCMC as an optax transform (key in its state).

    Parameters
    ----------
    learning_rate : float or schedule
        η_t (per gradient of the loss fed to ``update``); a schedule is called with t.
    momentum : float
        m in [0, 1): 0 is SGLD, above 0 SGHMC with friction 1 − m.
    key : jax PRNG key
        Stored by ``init`` in the state; step t's noise comes from ``fold_in(key, t)``.
    noise : bool or callable
        Whether step t adds noise (a callable of t: cSG-MCMC explores without it).
    temperature : float
        T scales the noise's variance: 1 samples p̃ ∝ exp(−loss), 0 is SGD with momentum.
    precondition : pytree like the parameters, optional
        A constant diagonal preconditioner M in (0, 1]: the step becomes −η M g + √(…η M) ξ,
        still Langevin dynamics for p̃ (a constant M needs no correction term). Where M is
        exactly 1 the step is bit for bit the plain one.

    Returns
    -------
    optax.GradientTransformation
        ``update(grads, state, params=None)`` returns v (apply it with
        ``optax.apply_updates``) and the state with t + 1 and v.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, optax
    >>> tx = langevin(0.1, key=jax.random.key(0), noise=False)  # no noise: SGD at rate 0.1
    >>> state = tx.init({"w": jnp.ones(2)})
    >>> v, state = tx.update({"w": jnp.array([1.0, -2.0])}, state)
    >>> v["w"].tolist(), int(state.count)
    ([-0.10000000149011612, 0.20000000298023224], 1)
    """
    lr = learning_rate if callable(learning_rate) else constant(learning_rate)
    noisy = noise if callable(noise) else (lambda count: jnp.asarray(noise))

    def init(params) -> LangevinState:
        return LangevinState(jnp.zeros((), jnp.int32),
                             jax.tree_util.tree_map(jnp.zeros_like, params), key)

    def update(grads, state: LangevinState, params=None):
        del params
        t = state.count
        eta = lr(t)
        leaves, treedef = jax.tree_util.tree_flatten(grads)
        noise_key = jax.random.split(jax.random.fold_in(state.key, t))[1]
        xi = jax.tree_util.tree_unflatten(treedef, [
            jax.random.normal(k, jnp.shape(a), jnp.result_type(a))
            for k, a in zip(jax.random.split(noise_key, len(leaves)), leaves, strict=True)])
        amp = jnp.where(noisy(t), jnp.sqrt(2.0 * (1.0 - momentum) * eta * temperature), 0.0)
        if precondition is not None:
            grads = jax.tree_util.tree_map(jnp.multiply, precondition, grads)
            xi = jax.tree_util.tree_map(lambda m, x: jnp.sqrt(m) * x, precondition, xi)
        v = jax.tree_util.tree_map(lambda vi, gi, x: momentum * vi - eta * gi + amp * x,
                                   state.velocity, grads, xi)
        return v, LangevinState(t + 1, v, state.key)

    return optax.GradientTransformation(init, update)


class Plan(NamedTuple):
    """Static structure of an SGLD run: ``cycles`` × [``explore`` steps, ``draws`` ×
    ``thinning`` sampling steps keeping the last state of each ``thinning``]; ``explore`` is
    a multiple of ``thinning``, so one scan over blocks of ``thinning`` steps runs it all."""

    cycles: int
    explore: int
    explore_noise: bool  # warm-up is Langevin; cSG-MCMC's exploration is noise-free
    draws: int
    thinning: int
    batch: int | None
    schedule: str
    n: int
    warmup: int

    @property
    def cycle_length(self) -> int:
        return self.explore + self.draws * self.thinning

    @property
    def steps(self) -> int:
        return self.cycles * self.cycle_length

    def step_size(self, t, base):
        """ε_t at step t (0-based), for jnp or NumPy t."""
        if self.schedule == "cyclical":
            return cosine_cycles(base, self.cycle_length)(t)
        if self.schedule == "polynomial":
            return polynomial_decay(base, self.warmup)(t)
        return constant(base)(t)

    def noisy(self, t):
        """Whether step t adds noise: everywhere but in cSG-MCMC's exploration phases."""
        return (t % self.cycle_length >= self.explore) | self.explore_noise

    def transform(self, base, momentum, key, n, precondition=None
                  ) -> optax.GradientTransformation:
        """The Langevin transform of this run for the gradient of −log p̃ (η_t = ε_t / N)."""
        return langevin(lambda t: self.step_size(t, base) / n, momentum, key, self.noisy,
                        precondition=precondition)

    def kept_steps(self) -> np.ndarray:
        """Indices t of the kept states (the last step of each thinning block)."""
        c = np.arange(self.cycles)[:, None] * self.cycle_length
        j = self.explore + (np.arange(self.draws)[None, :] + 1) * self.thinning - 1
        return (c + j).reshape(-1)

    def kept_step_sizes(self, base) -> np.ndarray:
        return np.asarray(self.step_size(self.kept_steps().astype(float), float(base)))


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


# η·λ_max of the log joint's curvature (preconditioned) at most half the stability limit
# 2(1 + m): the stiffest direction's variance at most doubled (module docstring)
STIFF_LIKELIHOOD = 1.0


def stable_step_size(model, likelihood, prior, z, X, y, step_size: float, momentum: float,
                     precondition=None) -> tuple[float, float]:
    """(ε used, h) with h = λ_max(M^½ ∇²(−log p(z, y)) M^½) / N, the largest per-point
    curvature of the log joint at ``z`` (a mode: where full-batch chains start) under the
    preconditioner M: ε itself where ε h ≤ ``STIFF_LIKELIHOOD``·(1 + m), else the step
    that meets it. Past the stability limit ε h = 2(1 + m) a chain cannot stay at the
    mode; it drifts to flatter regions that fit worse (diabetes, MLP(50): h = 1717, and at
    ε = 5e-3 the draws' σ was 61 against NUTS's 51), and no divergence shows it.

    Examples
    --------
    >>> import jax, numpy as np, bayesreg as br
    >>> model = br.Linear()
    >>> z = {"params": model.init(jax.random.key(0), 1), "theta": {}, "hyper": {}}
    >>> X = np.ones((10, 1)); y = np.zeros(10)  # f = w + b: curvature 2/σ² = 200 per row
    >>> eps, h = stable_step_size(model, br.GaussianLikelihood(0.1), {"weights": br.Flat(),
    ...     "biases": br.Flat()}, z, X, y, 5e-3, 0.0)
    >>> round(h, 1), round(eps, 4)  # ε h = 1
    (200.0, 0.005)
    """
    M = jax.tree_util.tree_map(jnp.ones_like, z) if precondition is None else precondition
    h = float(_stiffest(model, likelihood, prior, z, jnp.asarray(X), jnp.asarray(y), M))
    h /= X.shape[0]
    limit = STIFF_LIKELIHOOD * (1.0 + momentum)
    return (step_size if not np.isfinite(h) or step_size * h <= limit else limit / h), h


@partial(jax.jit, static_argnames=("model",))
def _stiffest(model, likelihood, prior, z, X, y, M):
    flat, unravel = ravel_pytree(z)
    root = jnp.sqrt(ravel_pytree(M)[0])
    grad = jax.grad(lambda v: -latent_log_joint(model, likelihood, prior, unravel(v), X, y))

    def hvp(u):  # M^½ H M^½ u
        return root * jax.jvp(grad, (flat,), (root * u,))[1]

    v0 = jax.random.normal(jax.random.key(0), flat.shape, flat.dtype)
    return largest_eigenvalue(hvp, v0)


STIFF = 0.5  # η·α above which a coordinate's step is preconditioned (stable below 2)


def prior_precondition(likelihood, prior, z, step_size: float, n: int):
    """M for :func:`langevin`: 1 where the step is far inside the stable range of the prior's
    own curvature, η αᵢ ≤ ``STIFF`` (η = ε/N, αᵢ = ∂²(−log p(z))/∂zᵢ² at one chain's start ``z``),
    and ``STIFF``/(η αᵢ) where it is not — a prior scale learned down to 1e-4 has α = 1e8,
    which no usable ε crosses; None when no coordinate is stiff (the plain step), and under
    a hierarchical prior, whose sampled scales couple the weights (its Hessian is not
    diagonal, which :func:`bayesreg.curvature.prior_diag` needs).

    Examples
    --------
    >>> import jax.numpy as jnp, bayesreg as br
    >>> z = {"params": {"weights": [jnp.zeros((2, 1))], "biases": [jnp.zeros(1)]},
    ...      "theta": {}, "hyper": {}}
    >>> prior = {"weights": br.Gaussian(1.0), "biases": br.Gaussian(1e-4)}
    >>> m = prior_precondition(br.GaussianLikelihood(1.0), prior, z, 5e-3, 100)
    >>> [float(v) for v in m["params"]["biases"][0]], float(m["params"]["weights"][0][0, 0])
    ([0.001], 1.0)
    """
    if is_hierarchical(prior):  # sampled scales couple the weights: no diagonal to read
        return None
    flat, unravel = ravel_pytree(z)
    alpha = prior_diag(lambda v: -latent_log_prior(likelihood, prior, unravel(v)), flat)
    stiffness = (step_size / n) * alpha
    if not bool(jnp.any(stiffness > STIFF)):
        return None
    return unravel(jnp.where(stiffness > STIFF, STIFF / stiffness, 1.0).astype(flat.dtype))
