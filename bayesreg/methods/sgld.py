r"""Stochastic-gradient Langevin dynamics (SGLD), cyclical SG-MCMC and SGHMC.

The sampler works on the same unconstrained latent state and log density as NUTS and VI
(:mod:`bayesreg.latent`: the weights, log σ when the noise is learned, log s for
a sampled prior scale). A mini-batch B of the N rows estimates that log density by

    log p̃(z) = (N/|B|) Σ_{i∈B} log p(yᵢ | xᵢ, z) + log p(z)

(``latent_log_prior`` plus the scaled ``log_likelihood``; with the full batch it *is*
``latent_log_joint``), and each step is

    v ← m·v + η ∇log p̃(z) + √(2(1 − m)η) ξ,   ξ ~ N(0, I)
    z ← z + v

with η = ε_t / N. ``momentum`` m = 0 is SGLD (Welling & Teh 2011; their step size is 2η:
z ← z + η∇log p̃ + √(2η) ξ, blackjax's convention); m > 0 is SGHMC (Chen et al. 2014) in
its "SGD with momentum" form with friction 1 − m and no estimate of the gradient noise
subtracted. ``step_size`` ε is per data point: η = ε / N, so that the drift is ε times the
gradient of the *mean* log likelihood (plus the prior / N), and one ε suits standardised
data of any size.

Schedules of ε_t (t counts every step, warm-up included):

* ``"constant"``: ε;
* ``"polynomial"``: ε (1 + t / num_warmup)^(−0.55) (Welling & Teh's decaying a(b + t)^(−γ),
  γ = 0.55); draws are kept unweighted;
* ``cyclical=True`` (cSG-MCMC, Zhang et al. 2020): ``num_cycles`` cosine cycles of L steps,
  ε_k = (ε/2)(cos(π (k mod L)/L) + 1). The first ``exploration`` fraction of each cycle is
  gradient ascent without noise (the large steps move between modes); the rest samples,
  with noise, and keeps ``num_samples / num_cycles`` draws.

Every ``thinning``-th state of the sampling phase is kept, inside the scan. One
``lax.scan`` under ``jit`` runs the steps of a chain; chains are ``vmap``-ped. Settings that
fix the number of steps are compiled in; ε and m are arguments, so changing them (or the
data, at the same shapes) does not recompile.

Bias. Without a Metropolis correction SGLD samples a distribution near the posterior, not
the posterior. For a Gaussian posterior of precision h per data point along some direction
(h ≈ 1/σ² for a well-determined coefficient of standardised data with noise σ), the full-batch
chain's stationary variance is exactly

    Var∞ = Var_post / (1 − εh / (2(1 + m)))      (stable for εh < 2(1 + m))

an O(ε) inflation (solve the discrete Lyapunov equation of the linear update; m = 0 gives
Welling & Teh's 1/(1 − εh/2)); the mini-batch gradient's own noise adds about ε·v·N/(2|B|) more in
relative terms (v: variance of one point's score, ≈ h). The docs page shows the measured
bias and the command.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bayesreg._validation import check_int
from bayesreg.data import devices as _distributed
from bayesreg.data import stream as _stream
from bayesreg.fitted import Fitted
from bayesreg.latent import (
    init_latent,
    latent_log_joint,
    latent_log_prior,
    split_draws,
)
from bayesreg.problem import Problem, log_likelihood

SCHEDULES = ("constant", "polynomial")
POLY_DECAY = 0.55  # Welling & Teh's exponent γ ∈ (0.5, 1]
RHAT_LIMIT = 1.01


@dataclasses.dataclass(frozen=True)
class SGLD:
    r"""Stochastic-gradient Langevin dynamics: posterior draws from noisy gradient steps.

    Samples the weights, a learned noise (σ ~ HalfNormal(``noise_prior``), like
    :class:`bayesreg.NUTS`) and sampled prior scales, from mini-batch gradients of the log
    joint. Without a Metropolis correction the draws come from a distribution whose
    variance is inflated by O(``step_size``) (module docstring; the docs page measures it).
    With ``batch_size`` below N, an X read by chunks (a memmap) streams: a Python loop over
    chunks of batches read ahead by a background thread, each chunk one compiled
    ``lax.scan`` that carries every chain's state on and emits its kept draws (each chain
    shuffles the chunk into its own batches; the gradient is scaled by N/B as in memory);
    see docs/large-data.md. Full-batch SGLD reads such an X into memory up to
    ``bayesreg.data.stream.MATERIALIZE_LIMIT`` and refuses it above.

    Parameters
    ----------
    num_samples : int
        Draws kept per chain; S = num_chains × num_samples.
    batch_size : int, optional
        Rows per gradient (sampled without replacement each step); None: every row.
    cyclical : bool
        Cosine cyclical step sizes with an exploration phase without noise (cSG-MCMC,
        Zhang et al. 2020); ``num_warmup`` and ``schedule`` are then not used.
    step_size : float
        ε, per data point: each step moves by (ε/N)·∇log p̃ plus noise of variance 2ε/N
        (times 1 − momentum). The default suits standardised inputs and targets; divide it
        by ten when the noise σ is much below 0.1 or the draws diverge (a clear error).
    momentum : float
        m in [0, 1): 0 is SGLD; e.g. 0.9 is SGHMC with friction 1 − m, which moves further
        per step along directions the data barely constrain.
    num_warmup : int
        Steps before the first kept draw (not cyclical), rounded up to a multiple of
        ``thinning``.
    thinning : int
        Keep every ``thinning``-th state of the sampling phase.
    num_chains : int
        Independent chains from jittered starts, run with ``vmap``; R-hat compares them.
    schedule : {"constant", "polynomial"}
        ε_t = ε, or ε(1 + t/num_warmup)^(−0.55) (not cyclical).
    num_cycles : int
        Cycles of the cyclical schedule; num_samples must be a multiple of it.
    exploration : float
        Fraction of each cycle spent exploring (no noise, nothing kept), in [0, 1).
    init_jitter : float
        Chains start at the model's initialisation plus U(−init_jitter, init_jitter).

    Examples
    --------
    >>> import numpy as np, bayesreg as br
    >>> X = np.linspace(-1, 1, 30); y = 2 * X + 0.3 * np.random.default_rng(0).standard_normal(30)
    >>> post = br.fit(br.Linear(), X, y, method=br.SGLD(num_samples=200, batch_size=10),
    ...               likelihood=br.GaussianLikelihood(0.3))
    >>> post.num_draws, post.num_chains, post.draws_kind
    (400, 2, 'posterior samples')
    >>> cyc = br.SGLD(num_samples=200, cyclical=True, num_cycles=4)
    """

    num_samples: int = 1000
    batch_size: int | None = None
    cyclical: bool = False
    step_size: float = 5e-3
    momentum: float = 0.0
    num_warmup: int = 1000
    thinning: int = 10
    num_chains: int = 2
    schedule: str = "constant"
    num_cycles: int = 4
    exploration: float = 0.5
    init_jitter: float = 0.5

    def __post_init__(self):
        check_int("num_samples", self.num_samples)
        if self.batch_size is not None:
            check_int("batch_size", self.batch_size)
        if not isinstance(self.cyclical, bool):
            raise TypeError(f"cyclical must be True or False; got {self.cyclical!r}")
        if not float(self.step_size) > 0:
            raise ValueError(f"step_size must be > 0; got {self.step_size!r}")
        if not 0.0 <= float(self.momentum) < 1.0:
            raise ValueError(f"momentum must be in [0, 1); got {self.momentum!r}")
        check_int("num_warmup", self.num_warmup, minimum=0)
        check_int("thinning", self.thinning)
        check_int("num_chains", self.num_chains)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}; got {self.schedule!r}")
        check_int("num_cycles", self.num_cycles)
        if self.cyclical and self.num_samples % self.num_cycles:
            raise ValueError(f"num_samples ({self.num_samples}) must be a multiple of "
                             f"num_cycles ({self.num_cycles}) when cyclical=True")
        if not 0.0 <= float(self.exploration) < 1.0:
            raise ValueError(f"exploration must be in [0, 1); got {self.exploration!r}")
        if float(self.init_jitter) < 0:
            raise ValueError(f"init_jitter must be >= 0; got {self.init_jitter!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def supports(self, model, likelihood) -> bool:
        """Whether this method can fit ``model`` under ``likelihood`` (any model and
        likelihood: it needs only the gradient of the log joint)."""
        del model, likelihood
        return True

    def plan(self, n: int) -> _Plan:
        """The static shape of the run for N = n rows (what the compiled scan depends on)."""
        batch = None if self.batch_size is None or self.batch_size >= n else self.batch_size
        if self.cyclical:
            draws = self.num_samples // self.num_cycles
            sampling = draws * self.thinning
            explore = round(sampling * self.exploration / (1.0 - self.exploration))
            explore = -(-explore // self.thinning) * self.thinning
            return _Plan(self.num_cycles, explore, False, draws, self.thinning, batch,
                         "cyclical", n, self.num_warmup)
        warmup = -(-self.num_warmup // self.thinning) * self.thinning
        return _Plan(1, warmup, True, self.num_samples, self.thinning, batch,
                     self.schedule, n, self.num_warmup)

    # -- streaming (bayesreg.data.stream) ----------------------------------------------------
    def _why_not_streamed(self, n: int, likelihood) -> str | None:
        """None when a fit on ``n`` rows streams an X read by chunks; else why it cannot."""
        del likelihood
        if self.batch_size is None or self.batch_size >= n:
            return ("full-batch SGLD (batch_size=None, or at least N) needs every row at each "
                    "step")
        return None

    def _streams(self, n: int, likelihood) -> bool:
        """Whether a fit on ``n`` rows streams an X read by chunks instead of loading it."""
        return self._why_not_streamed(n, likelihood) is None

    def fit(self, problem: Problem) -> Fitted:
        model, lik, prior = problem.model, problem.likelihood, problem.prior
        init_key, run_key = jax.random.split(problem.key)
        starts = [init_latent(problem, k, self.init_jitter)
                  for k in jax.random.split(init_key, self.num_chains)]
        z0 = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *starts)
        plan = self.plan(problem.n)
        chain_keys = jax.random.split(run_key, self.num_chains)
        lazy = _stream.is_lazy(problem.X)  # read by chunks (br.fit checked it can stream)
        if lazy and plan.batch is None:
            raise ValueError(self._why_not_streamed(problem.n, lik))
        X = problem.X if lazy else jnp.asarray(problem.X)
        y = np.asarray(problem.y) if lazy else jnp.asarray(problem.y)
        start = time.perf_counter()
        if lazy:
            z = sample_streamed(model, plan, lik, prior, z0, chain_keys, X, y,
                                float(self.step_size), float(self.momentum))
        else:  # data parallel when the mini-batches can be spread over several devices
            args, sharding = _distributed.data_parallel(plan.batch,
                                                        (lik, prior, z0, chain_keys, X, y))
            z = _sample(model, plan, *args, float(self.step_size), float(self.momentum),
                        batch_sharding=sharding)
            z = z if sharding is None else _distributed.local(z)
        z = jax.block_until_ready(z)
        seconds = time.perf_counter() - start
        flat = jax.tree_util.tree_map(lambda a: a.reshape(-1, *a.shape[2:]), z)
        if not all(bool(jnp.all(jnp.isfinite(a))) for a in jax.tree_util.tree_leaves(flat)):
            raise ValueError(
                f"SGLD diverged (non-finite draws) at step_size={self.step_size}: lower it "
                "(by 10×), standardise X and y, or use a wider noise")
        params, theta, hyper = split_draws(flat)
        lp = (_log_joint_draws_streamed(model, lik, prior, flat, X, y) if lazy else
              np.asarray(_log_joint_draws(model, lik, prior, flat, X, y)))
        diagnostics = _diagnostics(z, seconds)
        diagnostics["lp"] = lp
        diagnostics["step_size"] = np.tile(plan.kept_step_sizes(self.step_size),
                                           self.num_chains)
        diagnostics["gradient_evaluations"] = plan.steps * self.num_chains
        _warn(diagnostics, self)
        return Fitted(
            model=model, likelihood=lik, prior=prior, name="SGLD", params=params,
            theta=theta, X_train=problem.X, y_train=problem.y, diagnostics=diagnostics,
            num_chains=self.num_chains, config=self.to_dict(), hyper=hyper,
        )


class _Plan(NamedTuple):
    """Static structure of a run: ``cycles`` × [``explore`` steps, ``draws`` × ``thinning``
    sampling steps keeping the last state of each ``thinning``]; ``explore`` is a multiple
    of ``thinning``, so one scan over blocks of ``thinning`` steps runs it all."""

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
        xp = jnp if isinstance(t, jax.Array) else np
        if self.schedule == "cyclical":
            length = self.cycle_length
            return base * 0.5 * (xp.cos(xp.pi * (t % length) / length) + 1.0)
        if self.schedule == "polynomial":
            return base * (1.0 + t / max(1, self.warmup)) ** (-POLY_DECAY)
        return base * xp.ones_like(t, dtype=float)

    def kept_steps(self) -> np.ndarray:
        """Indices t of the kept states (the last step of each thinning block)."""
        c = np.arange(self.cycles)[:, None] * self.cycle_length
        j = self.explore + (np.arange(self.draws)[None, :] + 1) * self.thinning - 1
        return (c + j).reshape(-1)

    def kept_step_sizes(self, base) -> np.ndarray:
        return np.asarray(self.step_size(self.kept_steps().astype(float), float(base)))


def minibatch_log_joint(model, likelihood, prior, z, X, y, scale=1.0) -> jax.Array:
    """log p̃(z) = scale · Σ_rows log p(yᵢ | xᵢ, z) + log p(z): the latent log joint of
    :mod:`bayesreg.latent` with the likelihood of a mini-batch scaled by
    scale = N/|B| (scale 1 on every row: ``latent_log_joint`` itself)."""
    ll = jnp.sum(log_likelihood(model, likelihood, z, X, y))
    return scale * ll + latent_log_prior(likelihood, prior, z)


@partial(jax.jit, static_argnames=("model", "plan", "batch_sharding"))
def _sample(model, plan: _Plan, likelihood, prior, z0, keys, X, y, step_size, momentum,
            batch_sharding=None):
    """Kept states of every chain: a pytree with leading axes (chains, cycles × draws).
    With ``batch_sharding`` (X rows, y) each mini-batch is spread over the devices (data
    parallel: the gradient's sum over the batch is reduced across them)."""
    n = plan.n
    grad = jax.grad(partial(minibatch_log_joint, model, likelihood, prior))

    def chain(z, key):
        def step(carry, t):
            z, v = carry
            # Langevin noise everywhere but in cSG-MCMC's exploration phases
            noisy = (t % plan.cycle_length >= plan.explore) | plan.explore_noise
            batch_key, noise_key = jax.random.split(jax.random.fold_in(key, t))
            if plan.batch is None:
                g = grad(z, X, y, 1.0)
            else:
                rows = jax.random.permutation(batch_key, n)[: plan.batch]
                Xb, yb = _distributed.constrain_batch(X[rows], y[rows], batch_sharding)
                g = grad(z, Xb, yb, n / plan.batch)
            eta = plan.step_size(t, step_size) / n
            z, v = _langevin_step(z, v, g, eta, noisy, momentum, noise_key)
            return (z, v), None

        def block(carry, b):  # ``thinning`` steps; the state after them is emitted
            ts = b * plan.thinning + jnp.arange(plan.thinning)
            carry = jax.lax.scan(step, carry, ts)[0]
            return carry, carry[0]

        v0 = jax.tree_util.tree_map(jnp.zeros_like, z)
        _, states = jax.lax.scan(block, (z, v0), jnp.arange(plan.steps // plan.thinning))
        kept = plan.kept_steps() // plan.thinning  # static: the sampling phases' blocks
        return jax.tree_util.tree_map(lambda a: a[kept], states)

    return jax.vmap(chain)(z0, keys)


# -- streaming: X read by chunks (bayesreg.data.stream) -------------------------------------------
@partial(jax.jit, static_argnames=("model", "plan", "keep"))
def _sample_chunk(model, plan: _Plan, keep: int, likelihood, prior, carry, keys, X, y, t0,
                  count, n, step_size, momentum):
    """One chunk of a streamed run: X (L, B, D) and y (L, B) hold L batches' rows in file
    order, of which the first ``count``·B are real (the rest padding, skipped). Each chain
    shuffles the real rows into its own batches on the device (a permutation drawn from its
    key at step ``t0``) and takes one step per batch, steps t0 … t0 + count − 1, with the
    in-memory sampler's noise keys (fold_in(key, t)); the carry (z, v) goes in and out.
    Returns (carry, (kept, kept_count)): the kept states of the chunk in order, in ``keep``
    slots (the first kept_count used). ``plan`` is static without N: ``n`` (traced) is the
    number of rows, so one program serves every chunk and every fit of the same shapes."""
    steps, b = y.shape
    rows = steps * b
    grad = jax.grad(partial(minibatch_log_joint, model, likelihood, prior))

    def chain(carry, key):
        perm_key = jax.random.split(jax.random.fold_in(key, t0))[0]
        u = jax.random.uniform(perm_key, (rows,))
        perm = jnp.argsort(jnp.where(jnp.arange(rows) < count * b, u, 2.0))
        Xf, yf = X.reshape(rows, -1), y.reshape(rows)

        def step(c, j):
            z, v, buf, i = c
            t = t0 + j
            phase = t % plan.cycle_length
            noisy = (phase >= plan.explore) | plan.explore_noise
            noise_key = jax.random.split(jax.random.fold_in(key, t))[1]
            idx = jax.lax.dynamic_slice_in_dim(perm, j * b, b)
            g = grad(z, Xf[idx], yf[idx], n / b)
            eta = plan.step_size(t, step_size) / n
            new_z, new_v = _langevin_step(z, v, g, eta, noisy, momentum, noise_key)
            real = j < count
            z, v = jax.tree_util.tree_map(lambda a, o: jnp.where(real, a, o),
                                          (new_z, new_v), (z, v))
            kept = (real & (phase >= plan.explore)
                    & ((phase - plan.explore + 1) % plan.thinning == 0))
            slot = jnp.where(kept, i, keep)  # out of range: dropped
            buf = jax.tree_util.tree_map(lambda s, a: s.at[slot].set(a, mode="drop"), buf, z)
            return (z, v, buf, i + kept.astype(i.dtype)), None

        z, v = carry
        buf0 = jax.tree_util.tree_map(lambda a: jnp.zeros((keep, *a.shape), a.dtype), z)
        (z, v, buf, i), _ = jax.lax.scan(step, (z, v, buf0, jnp.zeros((), jnp.int32)),
                                         jnp.arange(steps))
        return (z, v), (buf, i)

    return jax.vmap(chain)(carry, keys)


def sample_streamed(model, plan: _Plan, likelihood, prior, z0, keys, X, y, step_size,
                    momentum):
    """:func:`_sample` over an X read by chunks (:mod:`bayesreg.data.stream`): a Python loop
    over chunks of batches, each one compiled scan (:func:`_sample_chunk`) carrying every
    chain's (z, v) and step counter on, the next chunk read by a background thread
    meanwhile. The batches are those of a streamed mini-batch MAP epoch
    (:func:`bayesreg.training.streamed.train_streamed`): an epoch's N // B blocks of B
    contiguous rows (from a random start, modulo N) visited in a random order, a chunk of
    about ``_stream.CHUNK_BYTES`` at a time, its rows shuffled on the device into each
    chain's own batches; epochs follow each other until the plan's steps are done. The
    likelihood gradient is scaled by N/B, as in memory. Returns the kept states, leading
    axes (chains, cycles × draws)."""
    from bayesreg.training.streamed import chunk_plan

    n, d = X.shape
    batch = plan.batch
    dtype = jnp.asarray(0.0).dtype  # the working precision
    per_epoch = n // batch
    n_chunks, length = chunk_plan(batch, d * dtype.itemsize, per_epoch)
    keep = -(-length // plan.thinning) + 1  # kept states one chunk can hold
    seeds = np.asarray(jax.random.key_data(keys)).reshape(-1).tolist()
    y = np.asarray(y)

    def chunks():
        """(first step, steps, runs of rows) of each chunk, epoch after epoch."""
        t, e = 0, 0
        while True:
            rng = np.random.default_rng([*seeds, 11, e])
            start = int(rng.integers(0, n)) if n > per_epoch * batch else 0
            order = rng.permutation(per_epoch)
            base, rest = divmod(per_epoch, n_chunks)
            pos = 0
            for c in range(n_chunks):
                count = min(base + (c < rest), plan.steps - t)
                if count <= 0:
                    return
                blocks = np.sort(order[pos:pos + count])
                yield t, count, _stream.runs_of(np.sort((start + blocks * batch) % n), batch, n)
                pos, t = pos + count, t + count
            e += 1

    # host buffers reused as in train_streamed: one chunk samples, PREFETCH wait, one fills
    ring = [(np.zeros((length, batch, d), dtype), np.zeros((length, batch), dtype))
            for _ in range(_stream.PREFETCH + 2)]

    def reader(i, t, count, runs):
        def thunk():
            out_X, out_y = ring[i % len(ring)]
            host_X, host_y = out_X.reshape(-1, d), out_y.reshape(-1)
            _stream.read_padded(X, y, runs, dtype, host_X, host_y)
            return (out_X, out_y), (t, count)
        return thunk

    static = plan._replace(n=0)  # N enters as a value: one program for every N
    n_rows = jnp.asarray(n, dtype)
    carry = (z0, jax.tree_util.tree_map(jnp.zeros_like, z0))
    kept = []
    for (Xc, yc), (t, count) in _stream.prefetch(
            reader(i, *c) for i, c in enumerate(chunks())):
        carry, (buf, used) = _sample_chunk(model, static, keep, likelihood, prior, carry,
                                           keys, Xc, yc, t, count, n_rows, step_size,
                                           momentum)
        m = int(np.asarray(used)[0])  # waits for the chunk before its buffer is refilled
        if m:
            kept.append(jax.tree_util.tree_map(lambda a, m=m: np.asarray(a[:, :m]), buf))
    return jax.tree_util.tree_map(lambda *a: jnp.asarray(np.concatenate(a, axis=1)), *kept)


@jax.jit
def _log_prior_draws(likelihood, prior, z):
    return jax.vmap(lambda zi: latent_log_prior(likelihood, prior, zi))(z)


def _log_joint_draws_streamed(model, likelihood, prior, z, X, y) -> np.ndarray:
    """:func:`_log_joint_draws` over an X read by chunks: one pass, the log likelihood of
    every draw summed chunk by chunk (float64 on the host)."""
    from bayesreg.training.streamed import sum_log_likelihood_streamed

    return (np.asarray(_log_prior_draws(likelihood, prior, z), np.float64)
            + sum_log_likelihood_streamed(model, likelihood, z, X, y))


def _langevin_step(z, v, g, eta, noisy, momentum, noise_key):
    """One update: v ← m·v + η∇log p̃ + √(2(1−m)η)·ξ (ξ ~ N(0, I), no noise outside the
    sampling phase when ``noisy`` is False), then z ← z + v. Returns (z, v)."""
    leaves, treedef = jax.tree_util.tree_flatten(z)
    noise = jax.tree_util.tree_unflatten(treedef, [
        jax.random.normal(k, jnp.shape(a), jnp.result_type(a))
        for k, a in zip(jax.random.split(noise_key, len(leaves)), leaves, strict=True)])
    amp = jnp.where(noisy, jnp.sqrt(2.0 * (1.0 - momentum) * eta), 0.0)
    v = jax.tree_util.tree_map(lambda vi, gi, xi: momentum * vi + eta * gi + amp * xi,
                               v, g, noise)
    return jax.tree_util.tree_map(jnp.add, z, v), v


@partial(jax.jit, static_argnames=("model",))
def _log_joint_draws(model, likelihood, prior, z, X, y):
    return jax.lax.map(lambda zi: latent_log_joint(model, likelihood, prior, zi, X, y), z)


def _diagnostics(z, seconds: float) -> dict:
    """Split R-hat (one chain: its two halves) and bulk / tail ESS over every coordinate of
    the latent draws (ArviZ), as NUTS reports them."""
    import arviz as az

    from bayesreg._pytree import leaf_names

    names = leaf_names(z)
    arrays = {n: np.asarray(a) for n, a in zip(names, jax.tree_util.tree_leaves(z), strict=True)}

    def halves(a):
        if a.shape[0] != 1:
            return a
        k = a.shape[1] // 2
        return a[:, : 2 * k].reshape(2, k, *a.shape[2:])

    def extreme(ds, fn):
        values = [float(fn(ds[v].values)) for v in ds.data_vars if ds[v].size]
        return fn(np.array(values)) if values else float("nan")

    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        dataset = az.convert_to_dataset(arrays)
        r_hat = extreme(az.rhat(az.convert_to_dataset(
            {n: halves(a) for n, a in arrays.items()})), np.nanmax)
        ess_bulk = extreme(az.ess(dataset, method="bulk"), np.nanmin)
        ess_tail = extreme(az.ess(dataset, method="tail"), np.nanmin)
    return {"r_hat": float(r_hat), "ess_bulk": float(ess_bulk), "ess_tail": float(ess_tail),
            "sampling_seconds": seconds}


def _warn(diag: dict, method: SGLD) -> None:
    if diag["r_hat"] > RHAT_LIMIT:
        warnings.warn(
            f"SGLD: max R-hat {diag['r_hat']:.3f} > {RHAT_LIMIT}: the chains disagree; run "
            f"longer (num_warmup={method.num_warmup}, num_samples={method.num_samples}, "
            f"thinning={method.thinning}), raise step_size (now {method.step_size}) or "
            "momentum, and check for multiple modes", UserWarning, stacklevel=4)
