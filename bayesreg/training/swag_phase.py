r"""SWAG's SGD phase on the training engine: the update, its rates, the collector of the
iterates' moments and the draws from the Gaussian they define (the method, its settings and
its diagnostics are :class:`bayesreg.SWAG`; the mathematics is docs/methods/swag.md).

:func:`run_sgd_phase` runs it from pretrained modes with a leading member axis (M ≥ 1), the
members of the training loop (:func:`bayesreg.training.run.run_members`, in memory or on rows
read by chunks): each member's rates (:func:`_default_lr`, on every row in memory, on at most
``LR_ROWS`` rows read at random from a stream), the update :func:`preconditioned_sgd` (the
rates in its initial state, :class:`RatesState`) and the collector :class:`IterateMoments`;
then the draws from the moments (:func:`_swag_draws`) and the objective at θ_SWA (one pass
over the rows). In memory each unit of the loop is one update on B rows drawn without
replacement; read by chunks a unit is an epoch of N // B batches (the members on one shared
stream, each under its own learned prior scales), collected at the end of every
``collect_every // (N // B)``-th epoch.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from bayesreg import _progress
from bayesreg._random import numpy_rng
from bayesreg.data import stream as _stream
from bayesreg.priors import PARAM_GROUPS, log_prior
from bayesreg.problem import Problem, log_likelihood
from bayesreg.training.evidence import layerwise_prior
from bayesreg.training.objective import NegLogJoint
from bayesreg.training.run import run_members
from bayesreg.training.streamed import sum_log_likelihood_streamed
from bayesreg.training.trainer import Trained

CYCLE_RATIO = 0.1  # the cyclical schedule's rate at the end of a cycle, relative to lr
LR_ROWS = 1024  # rows used for the default learning rate's gradient covariance and Hessian
POWER_ITERATIONS = 20  # power iterations for the largest Hessian eigenvalue
# Per-parameter rates are clipped at this multiple of their median: a parameter the data do
# not reach at the mode (a dead ReLU unit) would otherwise get the prior's rate N s², and
# blow up once SGD revives it
MAX_RATE_RATIO = 100.0


def plan(n: int, epochs: int, batch_size: int | None,
         collect_every: int | None) -> tuple[int, int, int]:
    """(batch size B, collected iterates K, updates between collections) of an SGD phase of
    ``epochs`` passes over N = ``n`` rows in memory (⌈N/B⌉ updates a pass).

    Examples
    --------
    >>> plan(100, epochs=5, batch_size=32, collect_every=None)  # 4 updates a pass
    (32, 5, 4)
    """
    batch = n if batch_size is None else min(batch_size, n)
    per_epoch = -(-n // batch)
    total = epochs * per_epoch
    every = per_epoch if collect_every is None else collect_every
    collected = total // every
    if collected < 2:
        raise ValueError(
            f"SWAG needs at least 2 collected iterates; epochs={epochs} × {per_epoch} "
            f"updates collected every {every} updates gives {collected}. Raise epochs or "
            "lower collect_every")
    return batch, collected, every


def why_not_streamed(n: int, batch_size: int | None, collect_every: int | None) -> str | None:
    """None when the SGD phase on N = ``n`` rows can run on an X read by chunks (epochs of
    N // B updates, collecting at an epoch's end); else why it cannot.

    Examples
    --------
    >>> why_not_streamed(100, 10, None) is None, why_not_streamed(100, 10, 15)[:24]
    (True, 'a streamed SWAG collects')
    """
    if batch_size is None or batch_size >= n:
        return "full-batch SWAG (batch_size=None, or at least N) needs every row at each update"
    per_epoch = n // batch_size
    if collect_every is not None and collect_every % per_epoch:
        return (f"a streamed SWAG collects at the end of an epoch: collect_every must be a "
                f"multiple of N // batch_size = {per_epoch}")
    return None


def run_sgd_phase(swag, problem: Problem, pre: Trained):
    """SWAG's SGD phase from the pretrained modes ``pre`` (states with a leading member axis,
    M ≥ 1; σ and the prior scales it learned held fixed), on every row of ``problem``, in
    memory or streamed (the module docstring).

    ``swag`` carries the settings (:class:`bayesreg.SWAG`'s ``members``, ``rank``,
    ``num_samples``, ``epochs``, ``batch_size``, ``lr``, ``schedule``, ``momentum``,
    ``collect_every`` and ``training.progress_bar``). Returns (draws with leading axes
    (M, S), {"losses" (M, updates), "swa_loss" (M,), "lr" (M, 3): the median, min and max
    rate}, the number K of collected iterates).

    Examples
    --------
    >>> import dataclasses, jax, numpy as np, bayesreg as br
    >>> from bayesreg.priors import as_prior_spec
    >>> from bayesreg.problem import Problem
    >>> X = np.linspace(-1, 1, 20, dtype=np.float32)[:, None]
    >>> problem = Problem(br.Linear(), br.GaussianLikelihood(0.1),
    ...                   as_prior_spec(br.Gaussian(1.0)), X, 2 * X[:, 0], jax.random.key(0))
    >>> swag = br.SWAG(rank=3, num_samples=7, epochs=4, batch_size=5,
    ...                training=br.MAP(steps=200))
    >>> pre = swag.pretrain(problem)
    >>> draws, out, collected = run_sgd_phase(swag, problem, pre)
    >>> draws["weights"][0].shape, out["losses"].shape, collected  # 4 epochs of 4 updates
    ((1, 7, 1, 1), (1, 16), 4)
    """
    X, y, n, M = problem.X, np.asarray(problem.y), problem.n, swag.members
    loop, every, collected = _loop_plan(swag, n, _stream.is_lazy(X))
    dtype = jnp.asarray(0.0, problem.dtype).dtype
    # every member's state, prior and keys with a leading member axis (M ≥ 1)
    state = jax.tree_util.tree_map(jnp.asarray, pre.state)
    log_scale = _learned_log_scales(pre, M)
    prior, prior_axis = ((_member_priors(log_scale, M), 0) if log_scale is not None
                         else (pre.prior, None))
    keys = jax.random.split(jax.random.fold_in(problem.key, 0x5A6), M)
    k_lr, k_run, k_draw = jnp.moveaxis(jax.vmap(lambda k: jax.random.split(k, 3))(keys),
                                       1, 0)
    objective = NegLogJoint(deterministic(problem.model))
    unravel = ravel_pytree(jax.tree_util.tree_map(lambda a: a[0], state["params"]))[1]
    batch = loop["plan"][2]
    if swag.lr is None:  # every row in memory; LR_ROWS rows read at random from a stream
        Xs, ys = _stream.sample_rows(X, y, LR_ROWS, numpy_rng(k_lr[0]), dtype) if \
            _stream.is_lazy(X) else (jnp.asarray(X, dtype), jnp.asarray(y, dtype))
        rates = jax.vmap(
            lambda st, pr, k: _rates_compiled(objective, batch, float(swag.momentum),
                                              problem.likelihood, pr, st, Xs, ys, k,
                                              jnp.asarray(n, dtype)),
            in_axes=(0, prior_axis, 0))(state, prior, k_lr)
    else:
        rates = jax.vmap(lambda p: jnp.full_like(ravel_pytree(p)[0], swag.lr))(
            state["params"])
    # θ (the likelihood's σ) has rate 0: the phase holds it where the pretraining put it
    opt0 = RatesState({"params": jax.vmap(unravel)(rates),
                       "theta": jax.tree_util.tree_map(jnp.zeros_like, state["theta"])},
                      jax.tree_util.tree_map(jnp.zeros_like, state),
                      jnp.zeros((M,), jnp.int32))
    _, trace = run_members(objective, _phase(swag, every), loop["plan"], (None, prior_axis),
                           problem.likelihood, prior, state, X, y, k_run, X[:0], y[:0],
                           collect=IterateMoments(loop["every"], swag.rank), opt_state0=opt0)
    mean, m2, D = trace["collected"]
    flats = jax.vmap(lambda a, b, c, k: _swag_draws_compiled(
        a, b, c, collected, swag.num_samples, k))(mean, m2, D, k_draw)
    draws = jax.vmap(jax.vmap(unravel))(flats)  # (M, S, ...)
    swa = {"params": jax.vmap(unravel)(mean), "theta": state["theta"]}
    ll = sum_log_likelihood_streamed(objective.model, problem.likelihood, swa, X, y)
    lp = np.asarray(jax.vmap(lambda p, pr: log_prior(pr, p), in_axes=(0, prior_axis))(
        swa["params"], prior))
    rates = np.asarray(rates)
    out = {"losses": np.asarray(trace["losses"]), "swa_loss": -(ll + lp) / n,
           "lr": np.stack([np.median(rates, 1), rates.min(1), rates.max(1)], axis=1)}
    return draws, out, collected


def _loop_plan(swag, n: int, streamed: bool):
    """({"plan": (units, batches a unit, B), "every": units between collections}, updates
    between collections, iterates collected K). In memory a unit is one update on B rows
    drawn without replacement (:func:`plan`); read by chunks a unit is an epoch of N // B
    updates, collected at an epoch's end (:func:`why_not_streamed`)."""
    if not streamed:
        batch, collected, every = plan(n, swag.epochs, swag.batch_size, swag.collect_every)
        return {"plan": (collected * every, 1, batch), "every": every}, every, collected
    why = why_not_streamed(n, swag.batch_size, swag.collect_every)
    if why is not None:
        raise ValueError(why)
    per_epoch = n // swag.batch_size
    every = per_epoch if swag.collect_every is None else swag.collect_every
    rounds_of = every // per_epoch  # epochs between two collected iterates
    collected = swag.epochs // rounds_of
    if collected < 2:
        raise ValueError(f"SWAG needs at least 2 collected iterates; epochs={swag.epochs} "
                         f"collected every {rounds_of} epoch(s) gives {collected}. Raise "
                         "epochs or lower collect_every")
    return ({"plan": (collected * rounds_of, per_epoch, swag.batch_size), "every": rounds_of},
            every, collected)


def _phase(swag, every: int) -> SGDPhase:
    """The SGD phase's engine configuration (a cycle of ``every`` updates)."""
    return SGDPhase(float(swag.momentum), every if swag.schedule == "cyclical" else None,
                    _progress.in_loop(swag.training.progress_bar))


def _member_priors(log_scale: dict, members: int) -> dict:
    """The layer-wise Gaussian priors of M members as one prior whose every array has a
    leading member axis (its ``loc`` too), to be ``vmap``ped over members."""
    prior = layerwise_prior(log_scale)
    for g in PARAM_GROUPS:
        object.__setattr__(prior[g], "loc", jnp.zeros(members, log_scale[g][0].dtype))
    return prior


def _learned_log_scales(pre, members: int):
    """The log prior scales the pretraining's evidence learned, per member
    ({group: [(M,) per layer]}), or None for a prior given by the user."""
    scales = pre.diagnostics.get("prior_scales")
    if scales is None:
        return None
    return {g: [jnp.log(jnp.asarray(np.reshape(scales[g], (members, -1))[:, j]))
                for j in range(np.reshape(scales[g], (members, -1)).shape[1])]
            for g in PARAM_GROUPS}


def deterministic(model):
    """``model`` without dropout: SWAG's SGD phase, its rates and ``swa_loss`` evaluate the
    network the draws are pushed through, which drops nothing (the noise of SGD is the
    mini-batch's).

    Examples
    --------
    >>> import bayesreg as br
    >>> deterministic(br.MLP((4,), dropout=0.5)).dropout, deterministic(br.Linear())
    (0.0, Linear())
    """
    if getattr(model, "dropout", 0.0):
        return dataclasses.replace(model, dropout=0.0)
    return model


class RatesState(NamedTuple):
    """The state of :func:`preconditioned_sgd`: per-parameter rates η (a pytree like the
    parameters, set by the caller), the heavy-ball velocity v and the updates made."""

    rates: Any
    velocity: Any
    count: jax.Array


def preconditioned_sgd(momentum: float, cycle: int | None = None) -> optax.GradientTransformation:
    r"""Heavy-ball SGD with a rate per parameter: v ← βv + g, φ ← φ − c(t) η ⊙ v.

    ``init`` sets every rate to 1; the caller puts its own in the state (:class:`RatesState`,
    passed to the engine as ``opt_state0``), since SWAG's default rates are computed in the
    compiled program from the pretrained mode. With ``cycle`` = c updates the rate falls
    linearly within each cycle, c(t) = (1 − t) + t·``CYCLE_RATIO`` with t = (j + 1)/c at
    the cycle's j-th update (Izmailov et al. 2018); else c(t) = 1. A rate of 0 freezes its
    parameter (SWAG holds the likelihood's θ fixed so).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> tx = preconditioned_sgd(momentum=0.0)
    >>> state = tx.init({"w": jnp.zeros(2)})._replace(rates={"w": jnp.array([0.1, 1.0])})
    >>> updates, _ = tx.update({"w": jnp.ones(2)}, state)
    >>> updates["w"].tolist()
    [-0.10000000149011612, -1.0]
    """

    def init(params):
        return RatesState(jax.tree_util.tree_map(jnp.ones_like, params),
                          jax.tree_util.tree_map(jnp.zeros_like, params),
                          jnp.zeros((), jnp.int32))

    def update(grads, state, params=None):
        del params
        velocity = jax.tree_util.tree_map(lambda v, g: momentum * v + g, state.velocity, grads)
        factor = 1.0
        if cycle is not None:
            t = ((state.count % cycle) + 1) / cycle
            factor = (1 - t) + t * CYCLE_RATIO
        updates = jax.tree_util.tree_map(lambda r, v: -(factor * r) * v, state.rates, velocity)
        return updates, RatesState(state.rates, velocity, state.count + 1)

    return optax.GradientTransformation(init, update)


@dataclasses.dataclass(frozen=True)
class SGDPhase:
    """SWAG's SGD phase as the training engine's ``method``: :func:`preconditioned_sgd`,
    no early stopping (hashable, so equal phases share a compiled program).

    Examples
    --------
    >>> SGDPhase(0.9, None, False) == SGDPhase(0.9, None, False)  # one compiled program
    True
    """

    momentum: float
    cycle: int | None
    progress_bar: bool | None

    optimizer = "sgd"
    early_stopping = None
    restore_best = False
    progress_desc = "SWAG (SGD phase)"

    def transform(self, total: int) -> optax.GradientTransformation:
        del total
        return preconditioned_sgd(self.momentum, self.cycle)


@dataclasses.dataclass(frozen=True)
class IterateMoments:
    r"""The engine's :class:`~bayesreg.training.update.Collector` of SWAG: every ``every``
    units the flattened iterate θₖ updates the running mean θ̄ and Σ (θₖ − θ̄)² (Welford's
    update, no cancellation), and θₖ − θ̄ₖ overwrites the oldest of ``rank`` deviation rows.
    The state is (mean (P,), m2 (P,), D (rank, P)).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> collect = IterateMoments(every=1, rank=2)
    >>> acc = collect.init({"w": jnp.zeros(2)})
    >>> for i, w in enumerate([1.0, 3.0]):
    ...     acc = collect.update(acc, {"w": jnp.full(2, w)}, i)
    >>> mean, m2, D = acc
    >>> mean.tolist(), (m2 / 2).tolist(), D[:, 0].tolist()  # mean, variance, deviations
    ([2.0, 2.0], [1.0, 1.0], [0.0, 1.0])
    """

    every: int
    rank: int

    def init(self, params):
        flat, _ = ravel_pytree(params)
        zeros = jnp.zeros_like(flat)
        return zeros, zeros, jnp.zeros((self.rank, flat.shape[0]), flat.dtype)

    def update(self, acc, params, i):
        mean, m2, D = acc
        flat, _ = ravel_pytree(params)
        delta = flat - mean
        mean = mean + delta / jnp.asarray(i + 1, flat.dtype)
        m2 = m2 + delta * (flat - mean)
        D = jax.lax.dynamic_update_slice(D, (flat - mean)[None], (i % self.rank, 0))
        return mean, m2, D


def _swag_draws(mean, m2, D, collected: int, num_samples: int, key) -> jax.Array:
    """(S, P) draws θ = θ_SWA + (1/√2) Σ_diag^½ z₁ + D z₂ / √(2(K_D − 1)) from the moments
    and the deviation rows D (rank, P) of K collected iterates (module docstring)."""
    rank = D.shape[0]
    k_d = min(collected, rank)  # rows of D that hold deviations (the rest are zeros)
    z1, z2 = (jax.random.normal(k, shape, mean.dtype) for k, shape in zip(
        jax.random.split(key), [(num_samples, mean.shape[0]), (num_samples, rank)],
        strict=True))
    return mean + jnp.sqrt(m2 / collected / 2) * z1 + (z2 @ D) / jnp.sqrt(2.0 * (k_d - 1))


_swag_draws_compiled = jax.jit(_swag_draws, static_argnums=(3, 4))


def _flat_objective(objective, likelihood, prior, state, n):
    """The per-point objective (:class:`~bayesreg.training.objective.NegLogJoint`, N = ``n``)
    as a function (flat φ, X, y) with θ held at ``state``'s. SWAG's network is
    deterministic (:func:`deterministic`), so the objective's key is unused."""
    unravel = ravel_pytree(state["params"])[1]

    def fn(flat, Xb, yb):
        return objective({"params": unravel(flat), "theta": state["theta"]}, likelihood,
                         prior, Xb, yb, jax.random.key(0), n)

    return fn


def _rates(objective, batch, momentum, likelihood, prior, state, X, y, key, n):
    """The default per-parameter rates (P,) at ``state`` from the rows X, y of a data set
    of N = ``n`` rows (all of them in memory; a random subset of a stream)."""
    flat0, unravel = ravel_pytree(state["params"])
    return _default_lr(objective.model, likelihood, state["theta"], prior,
                       _flat_objective(objective, likelihood, prior, state, n), flat0, unravel,
                       X, y, key, batch, momentum, n_total=n)


_rates_compiled = jax.jit(_rates, static_argnums=(0, 1, 2))


def _default_lr(model, likelihood, theta, prior, objective, flat, unravel, X, y, key, batch,
                momentum, n_total=None):
    """Per-parameter rates: Mandt et al.'s preconditioner 2B/(N C_kk), capped at 1/H_kk,
    scaled down until the preconditioned Hessian is stable, times (1 − β) (module
    docstring). ``n_total``: N when X holds only some rows of the data (a stream)."""
    n_rows, P = X.shape[0], flat.shape[0]
    n = n_rows if n_total is None else n_total
    tiny = jnp.finfo(flat.dtype).tiny
    m = min(n_rows, LR_ROWS, max(16, (1 << 22) // max(1, P)))
    k_rows, k_power = jax.random.split(key)
    if m < n_rows:
        rows = jax.random.choice(k_rows, n_rows, (m,), replace=False)
        Xs, ys = X[rows], y[rows]
    else:
        Xs, ys = X, y

    def row_nll(f, x, t):
        state = {"params": unravel(f), "theta": theta}
        return -log_likelihood(model, likelihood, state, x[None], t[None])[0]

    grads = jax.vmap(jax.grad(row_nll), in_axes=(None, 0, 0))(flat, Xs, ys)  # (m, P)
    noise = jnp.var(grads, axis=0)  # C_kk
    # the curvature of each coordinate: empirical Fisher of the rows plus the prior's
    # (its Hessian is diagonal: every prior here is a product over scalars)
    prior_diag = jax.jvp(jax.grad(lambda f: -log_prior(prior, unravel(f))), (flat,),
                         (jnp.ones_like(flat),))[1]
    curvature = jnp.mean(grads**2, axis=0) + jnp.abs(prior_diag) / n
    rate = jnp.minimum(2.0 * batch / (n * jnp.maximum(noise, tiny)),
                       1.0 / jnp.maximum(curvature, tiny))
    rate = jnp.minimum(rate, MAX_RATE_RATIO * jnp.median(rate))
    root = jnp.sqrt(rate)

    def hvp(v):  # diag(rate)^½ H diag(rate)^½ v
        return root * jax.jvp(jax.grad(lambda f: objective(f, Xs, ys)), (flat,),
                              (root * v,))[1]

    def power(v, _):
        w = hvp(v)
        return w / jnp.maximum(jnp.linalg.norm(w), tiny), None

    v0 = jax.random.normal(k_power, flat.shape, flat.dtype)
    v, _ = jax.lax.scan(power, v0 / jnp.linalg.norm(v0), None, length=POWER_ITERATIONS)
    lam = jnp.abs(jnp.vdot(v, hvp(v)))
    return (1.0 - momentum) * rate * jnp.minimum(1.0, 1.0 / jnp.maximum(lam, tiny))
