r"""The chains of stochastic-gradient MCMC (:class:`bayesreg.SGLD`): the Langevin transform
(:mod:`bayesreg.training.langevin`) run where the rows are.

:func:`sample` runs every chain of a :class:`~bayesreg.training.langevin.Plan` as a member of
the training loop (:func:`bayesreg.training.run.run_members`): its step the Langevin transform
with its key, step size, N and preconditioner in its state (:class:`Chains`), its loss
:class:`NegLogDensity`, its kept draws a :class:`Thinning` collector. In memory every step
draws its batch's rows with replacement (O(batch) work, whatever N); over chunks of a memmap
the chains share the streamed loop's epochs. :func:`log_joint_draws` evaluates the log joint
of every kept draw in one pass (where asked).
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from bayesreg.data import stream as _stream
from bayesreg.latent import latent_log_joint, latent_log_prior
from bayesreg.problem import log_likelihood
from bayesreg.training.langevin import LangevinState, Plan, langevin
from bayesreg.training.run import run_members
from bayesreg.training.streamed import sum_log_likelihood_streamed


@dataclasses.dataclass(frozen=True)
class Thinning:
    """The kept draws of a run as a collector (:class:`bayesreg.training.update.Collector`):
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
    >>> keep.update(acc, jnp.asarray(9.0), keep.past_end).tolist()  # an index it drops
    [1.0, 3.0]
    """

    plan: Plan
    whole_state = True  # θ and the prior scales are draws too

    @property
    def every(self) -> int:
        return self.plan.thinning

    @property
    def past_end(self) -> int:
        """A block index past the run's last, whose state ``update`` drops."""
        return self.plan.cycles * (self.plan.cycle_length // self.every)

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
    the training loop (:func:`bayesreg.training.update.step`), so that a Langevin step is the
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
        del key  # no noise injection
        if weights is None:
            return -minibatch_log_joint(self.model, likelihood, prior, z, X, y, n / X.shape[0])
        # a full batch padded to a bucketed count: weights B/n on the real rows, 0 on copies
        ll = jnp.sum(weights * log_likelihood(self.model, likelihood, z, X, y))
        return -(n / X.shape[0] * ll + latent_log_prior(likelihood, prior, z))


def sample(model, plan: Plan, likelihood, prior, z0, keys, X, y, step_size, momentum,
           precondition=None):
    """Kept states of every chain (leading axes (chains, cycles × draws)): the chains are the
    members of the training loop (:func:`bayesreg.training.run.run_members`) with the
    Langevin transform (:class:`Chains`), the loss :class:`NegLogDensity` and a
    :class:`Thinning` collector; the batches' rows from ``fold_in(key, BATCH_KEY)``, the
    noise from the key in the transform's state.

    In memory a step is one batch of rows drawn with replacement (``Chains.resample``: O(batch)
    work whatever N; a permutation of every row at each step cost O(N log N), 85% of the
    sampler at N = 1000; with replacement the N/|B|-scaled batch sum stays an unbiased
    estimate of the log likelihood, its variance larger by at most N/(N − 1)). Over an X read
    by chunks (mini-batches only) the batches are those of a streamed mini-batch ensemble: an
    epoch's N // B blocks of B contiguous rows (from a random start, modulo N) visited in a
    random order, every chunk read once for all chains and its rows shuffled on the device
    into each chain's own batches; epochs follow each other until the plan's steps are done
    (the last chunk cut short). The likelihood gradient is scaled by N/B either way."""
    n = X.shape[0]
    static = plan._replace(n=0)  # N enters as a value: one program for every N
    chains = Chains(static)
    opt0 = jax.vmap(lambda z, k: chains.start(z, k, step_size, momentum, n, precondition))(
        z0, keys)
    batch_keys = jax.vmap(lambda k: jax.random.fold_in(k, BATCH_KEY))(keys)
    if not _stream.is_lazy(X):  # one unit a step
        units, streamed = (plan.steps, 1, plan.batch or n), {}
        X, y = jnp.asarray(X), jnp.asarray(y)
    elif plan.batch is None:
        raise ValueError("full-batch SGLD (batch_size=None, or at least N) needs every "
                         "row at each step")
    else:  # epochs of N // B batches, the last cut short at the plan's steps
        per_epoch = n // plan.batch
        units = (-(-plan.steps // per_epoch), per_epoch, plan.batch)
        streamed = {"updates": plan.steps, "collect_period": plan.thinning}
        y = np.asarray(y)
    _, trace = run_members(NegLogDensity(model), chains, units, (None, None), likelihood,
                           prior, z0, X, y, batch_keys, X[:0], y[:0], collect=Thinning(static),
                           opt_state0=opt0, **streamed)
    return trace["collected"]


BATCH_KEY = 0x5EED  # folded into a chain's key for its batches' rows (apart from the noise)


class ChainState(NamedTuple):
    """A chain's Langevin state and the values its step reads (as
    ``optax.inject_hyperparams`` keeps a transform's hyperparameters in its state): the base
    step size ε, the momentum m, the number of rows N and the preconditioner M (or None)."""

    inner: LangevinState
    step_size: jax.Array
    momentum: jax.Array
    n: jax.Array
    precondition: Any


@dataclasses.dataclass(frozen=True)
class Chains:
    """The chains as the training loop's ``method``: the plan's Langevin transform with ε, m,
    N and M read from its state (:class:`ChainState`), so that this object is static —
    ``plan`` without N — and one compiled program serves every step size, momentum and N
    (with the same shapes). ``resample``: in memory a unit is one batch drawn with
    replacement."""

    plan: Plan
    progress_bar: bool = False
    resample = True
    optimizer = "langevin"
    early_stopping = None
    restore_best = False

    def start(self, z, key, step_size, momentum, n, precondition=None) -> ChainState:
        """A chain's transform state before its first step (its noise from ``key``)."""
        dtype = jnp.asarray(0.0).dtype
        return ChainState(langevin(0.0, key=key).init(z), jnp.asarray(step_size, dtype),
                          jnp.asarray(momentum, dtype), jnp.asarray(n, dtype), precondition)

    def transform(self, total) -> optax.GradientTransformation:
        del total  # the schedule is the plan's

        def init(params):
            raise TypeError("a chain's state holds its step size and key: build it with "
                            "Chains.start")

        def update(grads, state: ChainState, params=None):
            tx = self.plan.transform(state.step_size, state.momentum, None, state.n,
                                     state.precondition)
            updates, inner = tx.update(grads, state.inner, params)
            return updates, state._replace(inner=inner)

        return optax.GradientTransformation(init, update)


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
