r"""SWA-Gaussian (Maddox et al. 2019) and MultiSWAG (Wilson & Izmailov 2020).

SWAG fits a Gaussian to the iterates of stochastic gradient descent run, after a MAP
pretraining, at a constant (or cyclical) learning rate. Every ``collect_every`` updates
the iterate θₖ is collected into running first and second moments,

    θ_SWA = (1/K) Σₖ θₖ,     Σ_diag = (1/K) Σₖ (θₖ − θ_SWA)²   (Welford's update),

and the last ``rank`` deviations θₖ − θ̄ₖ (θ̄ₖ the running mean after θₖ) are kept as the
columns of D (P × K_D, K_D = min(K, rank)). The posterior is

    N(θ_SWA, ½ (Σ_diag + D Dᵀ / (K_D − 1))),

and a draw is θ = θ_SWA + (1/√2) Σ_diag^{1/2} z₁ + (1/√(2(K_D − 1))) D z₂ with
z₁ ~ N(0, I_P), z₂ ~ N(0, I_{K_D}). The draws pushed through the network are SWAG's
predictive (Bayesian model averaging by Monte Carlo), so no approximation object is kept.

``members > 1`` is MultiSWAG: M SWAG fits from M independently initialised MAP
pretrainings (:class:`bayesreg.Ensemble`'s members), their collection loops ``vmap``\ ped in
one compiled program; the predictive is the equal mixture of the M Gaussians
(``num_samples`` draws from each).

**The SGD phase.** Each update takes B rows drawn without replacement (``batch_size``;
``None``: all rows, which leaves no gradient noise: SGD then stays at the mode and the
covariance is only that of the optimiser's own transient) and steps on the per-point
negative log joint −(1/B) Σ_batch log p(yᵢ | φ, θ) − log p(φ)/N, the objective of
:class:`bayesreg.MAP`, with the hyperparameters (σ, prior scales) held where the
pretraining's evidence put them; the noise of each draw is its member's σ. The update is
heavy-ball SGD, v ← βv + g, φ ← φ − η v.

The default learning rate is per parameter: the optimal diagonal preconditioner of Mandt,
Hoffman & Blei (2017, Thm. 2), for which the stationary distribution of constant-rate SGD
best matches the posterior (in KL, under their Ornstein–Uhlenbeck approximation),
ηₖ = 2B/(N Cₖₖ), with Cₖₖ the variance over rows of the k-th coordinate of the gradient of
−log p(yᵢ | φ, θ) at the pretrained mode (on at most ``LR_ROWS`` rows). In one dimension
with C = H (a well-specified model, Fisher = Hessian) the iterates' variance η C/(2BH) is
then 1/(NH), the posterior's. Each ηₖ is capped at 1/Hₖₖ (Hₖₖ: the rows' empirical Fisher
plus the prior's curvature over N) and at ``MAX_RATE_RATIO`` × the median rate (a dead
ReLU unit would get the prior's rate N s² and blow up once SGD revives it); then all are
scaled down, if needed, until the largest eigenvalue of diag(η)^½ H diag(η)^½ (power
iteration with Hessian-vector products) is at most 1, so the linearised dynamics are
stable; with momentum they are multiplied by (1 − β), leaving the effective step
η/(1 − β) unchanged. A float ``lr`` is one rate for every parameter instead. The
"cyclical" schedule (Izmailov et al. 2018) lowers the rate linearly from η to η/10 within
each cycle of ``collect_every`` updates and collects at the end of the cycle.

The SGD phase runs on the training engine (:func:`bayesreg.training.loop.train_loop`):
the objective is MAP's :class:`~bayesreg.training.loop.NegLogJoint`, the update
:func:`preconditioned_sgd` with the rates computed in the program as its initial state, and
the iterates are folded into the moments by the engine's collector hook
(:class:`IterateMoments`). Each unit of the loop is one update on B rows drawn without
replacement. Rates, updates, collection and draws are one program under ``jit``, the members
``vmap``\ ped, cached on shapes and configuration: a second fit with the same shapes does not
recompile.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from bayesreg._pytree import check_positive
from bayesreg._random import numpy_rng
from bayesreg._validation import check_int
from bayesreg.data import stream as _stream
from bayesreg.fitted import Fitted
from bayesreg.latent import check_hierarchical
from bayesreg.methods.ensemble import Ensemble
from bayesreg.methods.map import MAP
from bayesreg.priors import PARAM_GROUPS, log_prior
from bayesreg.problem import Problem, log_likelihood
from bayesreg.training.evidence import layerwise_prior
from bayesreg.training.loop import NegLogJoint, train_loop
from bayesreg.training.trainer import check_training

SCHEDULES = ("constant", "cyclical")
CYCLE_RATIO = 0.1  # the cyclical schedule's rate at the end of a cycle, relative to lr
LR_ROWS = 1024  # rows used for the default learning rate's gradient covariance and Hessian
POWER_ITERATIONS = 20  # power iterations for the largest Hessian eigenvalue
# Per-parameter rates are clipped at this multiple of their median: a parameter the data do
# not reach at the mode (a dead ReLU unit) would otherwise get the prior's rate N s², and
# blow up once SGD revives it
MAX_RATE_RATIO = 100.0


@dataclasses.dataclass(frozen=True)
class SWAG:
    r"""SWA-Gaussian: a low-rank plus diagonal Gaussian fitted to SGD iterates.

    Parameters
    ----------
    rank : int
        Number of deviation columns K kept in D (Maddox et al.'s K = 20).
    num_samples : int
        Draws from each member's Gaussian (S = ``members`` × ``num_samples``).
    members : int
        1: SWAG; M > 1: MultiSWAG, M SWAG fits from independently initialised pretrainings
        (the members of ``br.Ensemble(members=M, training=training)``), vmapped.
    epochs : int
        Length of the SGD phase in passes over the training rows (⌈N/B⌉ updates each;
        one update each with the full batch).
    batch_size : int, optional
        Rows per SGD update (default 32, or N when N is smaller). ``None``: full batch —
        no gradient noise, so SGD stays at the mode (see the module docstring).
    lr : float, optional
        The SGD learning rate on the per-point objective, one for every parameter.
        ``None`` (default): one rate per parameter, Mandt et al.'s (2017) diagonal
        preconditioner 2B/(N Cₖₖ), capped for stability (module docstring); their median
        is ``diagnostics["swag_lr"]``, their (min, max) ``diagnostics["swag_lr_range"]``.
    schedule : {"constant", "cyclical"}
        "cyclical": from lr down to lr/10 linearly within each cycle of ``collect_every``
        updates, collecting at each cycle's end (Izmailov et al. 2018).
    momentum : float
        β of the heavy-ball update v ← βv + g, φ ← φ − ηv (0: plain SGD).
    collect_every : int, optional
        Updates between two collected iterates. ``None``: once per epoch (Maddox et al.).
        At least 2 iterates must be collected.
    training : MAP
        The pretraining (a MAP fit, or one per member). The noise σ and the prior scales
        that it learns by the evidence when the user leaves them out are held fixed in the
        SGD phase and reported in ``diagnostics`` as MAP reports them.

    Notes
    -----
    ``post.diagnostics`` holds the pretraining's (``losses``, ``noise_std``,
    ``prior_scales``, ``l2_strength``, …) and ``swag_losses`` (the mini-batch objective at
    every SGD update, per member), ``swa_loss`` (the full-data objective at θ_SWA),
    ``swag_lr`` (median rate), ``swag_lr_range``, ``num_collected`` (K) and ``rank_used``
    (K_D).

    Examples
    --------
    >>> import bayesreg as br
    >>> X, y = br.datasets.gap_example(n=40)
    >>> post = br.fit(br.MLP((16,)), X, y, method=br.SWAG(rank=10, num_samples=50, epochs=20,
    ...               training=br.MAP(steps=500)))
    >>> post.num_draws, post.diagnostics["num_collected"]
    (50, 20)
    """

    rank: int = 20
    num_samples: int = 100
    members: int = 1
    epochs: int = 100
    batch_size: int | None = 32
    lr: float | None = None
    schedule: str = "constant"
    momentum: float = 0.0
    collect_every: int | None = None
    training: MAP = dataclasses.field(default_factory=MAP)

    def __post_init__(self):
        check_int("rank", self.rank, minimum=2)
        check_int("num_samples", self.num_samples)
        check_int("members", self.members)
        check_int("epochs", self.epochs)
        if self.batch_size is not None:
            check_int("batch_size", self.batch_size)
        if self.lr is not None:
            check_positive("lr", self.lr)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}; got {self.schedule!r}")
        if not 0.0 <= float(self.momentum) < 1.0:
            raise ValueError(f"momentum must be in [0, 1); got {self.momentum!r}")
        if self.collect_every is not None:
            check_int("collect_every", self.collect_every)
        check_training(self.training)

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["training"] = self.training.to_dict()
        return out

    def supports(self, model, likelihood) -> bool:
        """Whether this method can fit ``model`` under ``likelihood`` (what its MAP
        pretraining supports)."""
        return self.training.supports(model, likelihood)

    def plan(self, n: int) -> tuple[int, int, int]:
        """(batch size B, collected iterates K, updates between collections) for N rows."""
        batch = n if self.batch_size is None else min(self.batch_size, n)
        per_epoch = -(-n // batch)
        total = self.epochs * per_epoch
        every = per_epoch if self.collect_every is None else self.collect_every
        collected = total // every
        if collected < 2:
            raise ValueError(
                f"SWAG needs at least 2 collected iterates; epochs={self.epochs} × {per_epoch} "
                f"updates collected every {every} updates gives {collected}. Raise epochs or "
                "lower collect_every")
        return batch, collected, every

    def pretrain(self, problem: Problem):
        """The MAP pretraining: one fit, or the M members of ``br.Ensemble`` (a Posterior
        whose draws are the modes)."""
        if self.members == 1:
            return self.training.fit(problem)
        return Ensemble(members=self.members, training=self.training).fit(problem)

    # -- streaming (bayesreg.data.stream) ----------------------------------------------------
    def _why_not_streamed(self, n: int, likelihood) -> str | None:
        """None when a fit on ``n`` rows streams an X read by chunks; else why it cannot."""
        why = self.training._why_not_streamed(n, likelihood)
        if why is not None:
            return f"SWAG's pretraining cannot stream: {why}"
        if self.members > 1:
            why = Ensemble(members=self.members, training=self.training)._why_not_streamed(
                n, likelihood)
            if why is not None:
                return f"MultiSWAG's pretraining cannot stream: {why}"
        if self.batch_size is None or self.batch_size >= n:
            return "full-batch SWAG (batch_size=None, or at least N) needs every row at each update"
        per_epoch = n // self.batch_size
        if self.collect_every is not None and self.collect_every % per_epoch:
            return (f"a streamed SWAG collects at the end of an epoch: collect_every must be a "
                    f"multiple of N // batch_size = {per_epoch}")
        return None

    def _streams(self, n: int, likelihood) -> bool:
        """Whether a fit on ``n`` rows streams an X read by chunks instead of loading it."""
        return self._why_not_streamed(n, likelihood) is None

    # -- running -------------------------------------------------------------------------
    def fit(self, problem: Problem) -> Fitted:
        check_hierarchical(problem.prior, "SWAG")
        if _stream.is_lazy(problem.X):  # read by chunks (br.fit checked it can stream)
            why = self._why_not_streamed(problem.n, problem.likelihood)
            if why is not None:
                raise ValueError(why)
            return self._run_streamed(problem)
        pre = self.pretrain(problem)
        M = self.members
        # every row: the pretraining may have held some out (a heteroscedastic likelihood)
        X, y = np.asarray(problem.X), np.asarray(problem.y)
        batch, collected, every = self.plan(X.shape[0])
        state = {"params": jax.tree_util.tree_map(jnp.asarray, pre.params),
                 "theta": jax.tree_util.tree_map(jnp.asarray, pre.theta)}
        dtype = jnp.asarray(X[:1], problem.dtype).dtype
        lr = jnp.full((M,), jnp.nan if self.lr is None else self.lr, dtype)
        keys = jax.random.split(jax.random.fold_in(problem.key, 0x5A6), M)
        draws, out = _swag_members(
            NegLogJoint(deterministic(problem.model)), self._phase(every),
            IterateMoments(every, self.rank),
            (collected, batch, self.num_samples, self.lr is None), problem.likelihood,
            pre.prior, state, _learned_log_scales(pre, M), jnp.asarray(X, dtype),
            jnp.asarray(y), keys, lr)
        return self._posterior(problem, pre, draws, out, collected)

    def _phase(self, every: int) -> SGDPhase:
        """The SGD phase's engine configuration (a cycle of ``every`` updates)."""
        return SGDPhase(float(self.momentum), every if self.schedule == "cyclical" else None,
                        self.training.progress_bar)

    def _run_streamed(self, problem: Problem):
        """SWAG over an X read by chunks: the pretraining streams (MAP with ``batch_size``,
        or the streamed ensemble for MultiSWAG), the rates are computed on at most
        ``LR_ROWS`` rows read at random, the SGD phase is the streamed engine's loop (epochs
        of N // B batches without replacement; the members share the stream, each with its
        own prior scales) with the iterate collected at the end of every
        ``collect_every // (N // B)``-th epoch, and ``swa_loss`` takes one more pass."""
        from bayesreg.training.streamed import sum_log_likelihood_streamed, train_streamed

        pre = self.pretrain(problem)
        X, y, n, M = problem.X, np.asarray(problem.y), problem.n, self.members
        batch = self.batch_size
        per_epoch = n // batch
        every = per_epoch if self.collect_every is None else self.collect_every
        rounds_of = every // per_epoch  # epochs between two collected iterates
        collected = self.epochs // rounds_of
        if collected < 2:
            raise ValueError(f"SWAG needs at least 2 collected iterates; epochs={self.epochs} "
                             f"collected every {rounds_of} epoch(s) gives {collected}. Raise "
                             "epochs or lower collect_every")
        dtype = jnp.asarray(0.0, problem.dtype).dtype
        # every member's state, prior and keys with a leading member axis (M ≥ 1)
        state = jax.tree_util.tree_map(jnp.asarray, {"params": pre.params, "theta": pre.theta})
        log_scale = _learned_log_scales(pre, M)
        prior, prior_axis = ((_member_priors(log_scale, M), 0) if log_scale is not None
                             else (pre.prior, None))
        keys = jax.random.split(jax.random.fold_in(problem.key, 0x5A6), M)
        k_lr, k_run, k_draw = jnp.moveaxis(jax.vmap(lambda k: jax.random.split(k, 3))(keys),
                                           1, 0)
        objective = NegLogJoint(deterministic(problem.model))
        unravel = ravel_pytree(jax.tree_util.tree_map(lambda a: a[0], state["params"]))[1]
        if self.lr is None:  # the rates on LR_ROWS rows read at random (the same rows)
            pick = np.sort(numpy_rng(k_lr[0]).choice(n, min(n, LR_ROWS), replace=False))
            Xs, ys = _stream.take(X, pick, dtype), np.asarray(y[pick], dtype)
            rates = jax.vmap(
                lambda st, pr, k: _streamed_rates(objective, batch, float(self.momentum),
                                                  problem.likelihood, pr, st, Xs, ys, k,
                                                  jnp.asarray(n, dtype)),
                in_axes=(0, prior_axis, 0))(state, prior, k_lr)
        else:
            rates = jax.vmap(lambda p: jnp.full_like(ravel_pytree(p)[0], self.lr))(
                state["params"])
        opt0 = RatesState({"params": jax.vmap(unravel)(rates),
                           "theta": jax.tree_util.tree_map(jnp.zeros_like, state["theta"])},
                          jax.tree_util.tree_map(jnp.zeros_like, state),
                          jnp.zeros((M,), jnp.int32))
        _, trace = train_streamed(objective, self._phase(every), collected * rounds_of,
                                  per_epoch, batch, problem.likelihood, prior, state, X, y,
                                  k_run, members=M, prior_axis=prior_axis,
                                  collect=IterateMoments(rounds_of, self.rank),
                                  opt_state0=opt0)
        mean, m2, D = trace["collected"]
        flats = jax.vmap(lambda a, b, c, k: _swag_draws_compiled(
            a, b, c, collected, self.num_samples, k))(mean, m2, D, k_draw)
        draws = jax.vmap(jax.vmap(unravel))(flats)  # (M, S, ...)
        swa = {"params": jax.vmap(unravel)(mean), "theta": state["theta"]}
        ll = sum_log_likelihood_streamed(objective.model, problem.likelihood, swa, X, y)
        lp = np.asarray(jax.vmap(lambda p, pr: log_prior(pr, p), in_axes=(0, prior_axis))(
            swa["params"], prior))
        rates = np.asarray(rates)
        out = {"losses": np.asarray(trace["losses"]), "swa_loss": -(ll + lp) / n,
               "lr": np.stack([np.median(rates, 1), rates.min(1), rates.max(1)], axis=1)}
        return self._posterior(problem, pre, draws, out, collected)

    def _posterior(self, problem: Problem, pre, draws, out, collected: int):
        """The Posterior of M members' draws (M, S, ...) and their phase's outputs."""
        M, S = self.members, self.num_samples
        # (M, S, ...) → (M·S, ...), member-major: member m's draws are one "chain"
        params = jax.tree_util.tree_map(lambda a: np.asarray(a).reshape(M * S, *a.shape[2:]),
                                        draws)
        theta = {k: np.repeat(np.asarray(v), S, axis=0) for k, v in pre.theta.items()}
        losses = np.asarray(out["losses"])
        if not np.all(np.isfinite(losses)) or not all(
                np.all(np.isfinite(a)) for a in jax.tree_util.tree_leaves(params)):
            raise FloatingPointError(
                f"SWAG's SGD phase diverged (learning rate {np.asarray(out['lr'])[:, 0]}): "
                "lower lr, or leave lr=None for the default")
        diagnostics = dict(pre.diagnostics)
        one = M == 1
        diagnostics.update(
            swag_losses=losses[0] if one else losses,
            swa_loss=float(out["swa_loss"][0]) if one else np.asarray(out["swa_loss"]),
            swag_lr=float(out["lr"][0, 0]) if one else np.asarray(out["lr"][:, 0]),
            swag_lr_range=(np.asarray(out["lr"][0, 1:]) if one
                           else np.asarray(out["lr"][:, 1:])),
            num_collected=collected, rank_used=min(collected, self.rank))
        return Fitted(
            model=problem.model, likelihood=problem.likelihood, prior=pre.prior,
            name="MultiSWAG" if M > 1 else "SWAG", params=params, theta=theta,
            X_train=problem.X, y_train=problem.y, diagnostics=diagnostics,
            config=self.to_dict(), num_chains=M,
            draws_kind="draws from SWAG's Gaussian fitted to SGD iterates (an approximate "
                       "posterior), not posterior samples")


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
    r"""The engine's :class:`~bayesreg.training.loop.Collector` of SWAG: every ``every``
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


def _swag_one(objective, phase, collector, config, likelihood, prior, state, log_scale, X, y,
              key, lr):
    """One member's SGD phase (the training engine's loop, iterates collected by
    ``collector``), its rates and its draws (pure; ``vmap``\\ ped over members)."""
    collected, batch, num_samples, default_lr = config
    if log_scale is not None:
        prior = layerwise_prior(log_scale)
    flat0, unravel = ravel_pytree(state["params"])
    n = X.shape[0]
    k_lr, k_run, k_draw = jax.random.split(key, 3)
    if default_lr:
        lr = _rates(objective, batch, phase.momentum, likelihood, prior, state, X, y, k_lr, n)
    rates = jnp.broadcast_to(lr, flat0.shape)
    # θ (the likelihood's σ) has rate 0: the phase holds it where the pretraining put it
    opt0 = RatesState({"params": unravel(rates),
                       "theta": jax.tree_util.tree_map(jnp.zeros_like, state["theta"])},
                      jax.tree_util.tree_map(jnp.zeros_like, state), jnp.zeros((), jnp.int32))
    _, trace = train_loop(objective, phase, collected * collector.every, 1, batch, likelihood,
                          prior, state, X, y, k_run, X[:0], y[:0], collect=collector,
                          opt_state0=opt0)
    mean, m2, D = trace["collected"]
    draws = jax.vmap(unravel)(_swag_draws(mean, m2, D, collected, num_samples, k_draw))
    swa_loss = _flat_objective(objective, likelihood, prior, state, n)(mean, X, y)
    out = {"losses": trace["losses"], "swa_loss": swa_loss,
           "lr": jnp.stack([jnp.median(rates), jnp.min(rates), jnp.max(rates)])}
    return draws, out


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
    """The per-point objective (:class:`~bayesreg.training.loop.NegLogJoint`, N = ``n``)
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


_streamed_rates = jax.jit(_rates, static_argnums=(0, 1, 2))


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


@partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _swag_members(objective, phase, collector, config, likelihood, prior, state, log_scale, X,
                  y, keys, lr):
    """Every member's SGD phase, collection and draws in one program: ``vmap`` of
    :func:`_swag_one`."""
    fn = partial(_swag_one, objective, phase, collector, config, likelihood, prior)
    return jax.vmap(fn, in_axes=(0, 0, None, None, 0, 0))(state, log_scale, X, y, keys, lr)
