r"""Deep ensembles, bagging and anchored ensembles, trained together in one program.

M members start from different initialisations (and, with ``bagging``, see different
bootstrap resamples of the rows) and are trained by ``jax.vmap`` of the same compiled loop
that :class:`bayesreg.MAP` runs: one program for all members, not M. The members are the
posterior draws: the predictive is the equally weighted mixture over them, each with its
own noise when the noise is learned (a point estimate per member).

``anchored=True`` (Pearce et al. 2020, "randomised MAP sampling"): member m minimises

    −Σᵢ log N(yᵢ + σεᵢₘ | f(xᵢ), σ²) + ‖φ − φ_anc,m‖² / (2s²),   φ_anc,m ~ N(loc, s²)

— each member is regularised towards its own anchor drawn from the prior, and, with a fixed
noise σ, fits its own jittered targets. For a linear-Gaussian model the members are then
exact posterior draws: φ_m = A⁻¹(Φᵀ(y + σε)/σ² + Λ₀φ_anc) has mean m and covariance
A⁻¹(ΦᵀΦ/σ² + Λ₀)A⁻¹ = A⁻¹. Anchoring needs a Gaussian prior.

``reduce="median"`` makes the point prediction the median over members (the lecture's
median ensemble); intervals and densities still use the mixture.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from bayesreg._validation import check_int
from bayesreg.data import devices as _distributed
from bayesreg.data import stream as _stream
from bayesreg.data.buckets import to_device
from bayesreg.fitted import Fitted
from bayesreg.latent import check_hierarchical
from bayesreg.priors import PARAM_GROUPS, Flat, Gaussian
from bayesreg.problem import Problem
from bayesreg.training.loop import bucketed, train_members
from bayesreg.training.results import check_trace, learned_hyperparameters
from bayesreg.training.streamed import train_streamed
from bayesreg.training.trainer import Trainer, check_training

REDUCE = ("mean", "median")


def shard_members(members: int, inputs, axes):
    """Spread the member axis over every JAX device, of this process and of every other
    process after ``jax.distributed.initialize`` (:mod:`bayesreg.data.devices`).

    The inputs with a member axis (initial states, keys, and data or prior when bagged or
    anchored) are padded to a multiple of the device count (copies of the last member, whose
    results the caller drops) and placed with a ``NamedSharding`` over a 1-D mesh named
    "members"; the compiled ``vmap`` is then partitioned by XLA so each device trains its
    share. Across processes each process supplies the rows of its own devices and the other
    inputs are replicated. With one device the inputs are returned as they are.
    """
    if jax.device_count() < 2:
        return inputs
    mesh = _distributed.mesh()
    count = _distributed.padded_count(members)
    state0, keys, X, y, prior = inputs
    data_axis, prior_axis = axes

    def spread(tree):
        return _distributed.shard_leading(_distributed.pad_leading(tree, count), mesh)

    state0, keys = spread((state0, keys))
    X, y = spread((X, y)) if data_axis == 0 else _distributed.replicate((X, y), mesh)
    prior = spread(prior) if prior_axis == 0 else _distributed.replicate(prior, mesh)
    return state0, keys, X, y, prior


@dataclasses.dataclass(frozen=True)
class Ensemble:
    """M independently initialised MAP fits, vmapped, as posterior draws.

    With several JAX devices (GPUs, or CPU devices from
    ``XLA_FLAGS=--xla_force_host_platform_device_count=N``) the members are sharded across
    them, and across processes after ``jax.distributed.initialize`` (:func:`shard_members`).
    An X read by chunks (a memmap) is streamed when the members train on mini-batches
    (``training=br.MAP(batch_size=B)``, no validation or early stopping), without bagging or
    anchoring, on one device: every chunk is read once and all members train on it in one
    ``vmap``ped program, each shuffling it into its own batches
    (:func:`bayesreg.training.streamed.train_streamed`). Otherwise such an X is read into
    memory up to ``bayesreg.data.stream.MATERIALIZE_LIMIT`` and refused above (docs: "Data
    larger than memory").

    Parameters
    ----------
    members : int
        Ensemble size M.
    bagging : bool
        Resample the rows with replacement for each member (the lecture's bagging).
    anchored : bool
        Regularise each member towards its own draw from the (Gaussian) prior and, with a
        fixed noise, jitter its targets: approximately Bayesian ensembling.
    reduce : {"mean", "median"}
        Point prediction ``pred.point``: mean or median over members.
    training : MAP or Trainer
        Optimiser settings shared by all members.

    Examples
    --------
    >>> import bayesreg as br
    >>> X, y = br.datasets.gap_example(n=40)
    >>> post = br.fit(br.MLP((16,)), X, y, method=br.Ensemble(members=4,
    ...               training=br.MAP(steps=300)))
    >>> post.num_draws
    4
    """

    members: int = 10
    bagging: bool = False
    anchored: bool = False
    reduce: str = "mean"
    training: Trainer = dataclasses.field(default_factory=Trainer)

    def __post_init__(self):
        check_int("members", self.members)
        if self.reduce not in REDUCE:
            raise ValueError(f"reduce must be one of {REDUCE}; got {self.reduce!r}")
        check_training(self.training)

    def to_dict(self) -> dict:
        return {"members": self.members, "bagging": self.bagging, "anchored": self.anchored,
                "reduce": self.reduce, "training": self.training.to_dict()}

    def member_inputs(self, problem: Problem):
        """Per-member (initial states, keys, X, y, prior) and the vmap axes, as used by
        the compiled program (public so that a member can be re-run on its own)."""
        M = self.members
        init_key, train_key, bag_key, anchor_key, jitter_key = jax.random.split(problem.key, 5)
        state0 = jax.vmap(problem.init_state)(jax.random.split(init_key, M))
        keys = jax.random.split(train_key, M)
        X, y = to_device(problem.X), to_device(problem.y)
        data_axis = prior_axis = None
        if self.bagging:
            idx = jax.random.randint(bag_key, (M, problem.n), 0, problem.n)
            X, y, data_axis = X[idx], y[idx], 0
        prior = problem.prior
        if self.anchored:
            prior = self._anchors(problem, state0["params"], anchor_key)
            prior_axis = 0
            lik = problem.likelihood
            if getattr(lik, "kind", "") == "regression" and not lik.learned_noise \
                    and not lik.heteroscedastic:
                y = (y if data_axis == 0 else jnp.broadcast_to(y, (M, *y.shape)))
                y = y + lik.noise * jax.random.normal(jitter_key, y.shape, y.dtype)
                if data_axis is None:
                    X = jnp.broadcast_to(X, (M, *X.shape))
                data_axis = 0
        return state0, keys, X, y, prior, (data_axis, prior_axis)

    def _anchors(self, problem: Problem, params0, key):
        stacked = {}
        for g, k in zip(PARAM_GROUPS, jax.random.split(key, 2), strict=True):
            prior = problem.prior[g]
            if isinstance(prior, Flat):  # no leaves: nothing to stack, nothing to anchor
                stacked[g] = prior
                continue
            if not isinstance(prior, Gaussian) or isinstance(prior.loc, dict | list | tuple):
                raise ValueError(f"anchored ensembles need a Gaussian prior with a scalar loc; "
                                 f"the {g} prior is {prior!r}")
            leaves, treedef = jax.tree_util.tree_flatten(params0[g])
            ks = jax.random.split(k, max(1, len(leaves)))
            anchors = [prior.loc + prior.scale * jax.random.normal(kk, a.shape, a.dtype)
                       for a, kk in zip(leaves, ks, strict=False)]
            stacked[g] = prior.replace_unchecked(
                scale=jnp.full((self.members,), prior.scale, jnp.float32),
                loc=jax.tree_util.tree_unflatten(treedef, anchors))
        return stacked

    def supports(self, model, likelihood) -> bool:
        """Whether this method can fit ``model`` under ``likelihood`` (what its members' training
        supports)."""
        return self.training.supports(model, likelihood)

    # -- streaming (bayesreg.data.stream) ----------------------------------------------------
    def _why_not_streamed(self, n: int, likelihood) -> str | None:
        """None when the members stream an X read by chunks; else why they cannot."""
        why = self.training._why_not_streamed(n, likelihood)
        if why is None and self.bagging:
            why = "bagging resamples rows at random for each member"
        if why is None and self.anchored:
            why = "anchored members each fit their own jittered copy of y (not streamed yet)"
        if why is None and jax.device_count() > 1:
            why = ("members spread over several devices do not share a stream yet (one "
                   "device streams)")
        return None if why is None else f"Ensemble needs every row in memory here: {why}"

    def _streams(self, n: int, likelihood) -> bool:
        """Whether the members stream an X read by chunks instead of loading it."""
        return self._why_not_streamed(n, likelihood) is None

    def fit(self, problem: Problem) -> Fitted:
        check_hierarchical(problem.prior, "Ensemble")
        if _stream.is_lazy(problem.X):  # read by chunks (br.fit checked it can stream)
            why = self._why_not_streamed(problem.n, problem.likelihood)
            if why is not None:
                raise ValueError(why)
            M = self.members
            init_key, train_key = jax.random.split(problem.key, 5)[:2]  # as member_inputs
            state0 = jax.vmap(problem.init_state)(jax.random.split(init_key, M))
            method = self.training.resolved(problem.model)
            epochs, per_epoch, batch = method.plan(problem.n)
            state, trace = train_streamed(
                method.objective(problem.model), method, epochs, per_epoch, batch,
                problem.likelihood, problem.prior, state0, problem.X, problem.y,
                jax.random.split(train_key, M),
                hook=self.training.evidence_hook(problem), members=M)
            return self._posterior(problem, problem, method, state, trace)
        train, X_val, y_val = self.training.split(problem)
        state0, keys, X, y, prior, axes = self.member_inputs(train)
        method = self.training.resolved(problem.model)
        if jax.device_count() > 1:  # JAX runs no ordered callback (the progress report's)
            method = dataclasses.replace(method, progress_bar=False)  # on several devices
        epochs, per_epoch, batch = method.plan(train.n)
        X, y, mask, X_val, y_val, val_mask, batch = bucketed(X, y, X_val, y_val, per_epoch,
                                                             batch)
        state0, keys, X, y, prior = shard_members(self.members, (state0, keys, X, y, prior),
                                                  axes)
        # anchors are draws from the given prior: an anchored ensemble keeps it
        hook = self.training.evidence_hook(
            dataclasses.replace(train, learn_prior=train.learn_prior and not self.anchored))
        rest = (train.likelihood, to_device(X_val), to_device(y_val), mask, val_mask)
        if jax.device_count() > 1:
            rest = _distributed.replicate(rest, _distributed.mesh())
        likelihood, X_val, y_val, mask, val_mask = rest
        state, trace = train_members(
            method.objective(problem.model), method, epochs, per_epoch, batch, axes,
            likelihood, prior, state0, X, y, keys, X_val, y_val, hook=hook, mask=mask,
            val_mask=val_mask)
        # every process gets every member (an all-gather across processes), padding dropped
        state, trace = jax.tree_util.tree_map(lambda a: a[:self.members],
                                              _distributed.gather((state, trace)))
        return self._posterior(problem, train, method, state, trace)

    def _posterior(self, problem: Problem, train: Problem, method, state, trace):
        trace = check_trace(trace, method.lr, problem)
        used_prior, trace = learned_hyperparameters(problem, trace, state)
        return Fitted(
            model=problem.model, likelihood=problem.likelihood, prior=used_prior,
            name="Ensemble", params=jax.tree_util.tree_map(np.asarray, state["params"]),
            theta=jax.tree_util.tree_map(np.asarray, state["theta"]), X_train=train.X,
            y_train=train.y, diagnostics=trace, config=self.to_dict(), point=self.reduce,
            draws_kind="independently trained ensemble members, not posterior samples",
        )
