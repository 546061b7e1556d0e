r"""The body of the one training loop: an update on one mini-batch, and a scan of it over the
batches of one chunk of rows.

:func:`step` applies one optax update. :class:`Updates` wraps it with what a loop needs
around it — the hyperparameters an evidence hook set, padded batches that must leave the
state as it was, early stopping on held-out rows, a collector fed every ``period`` updates —
and :meth:`Updates.over_batches` scans it over the batches of one chunk. Both drivers run
this body: :func:`bayesreg.training.loop.train_loop` over an epoch of rows held on the device
(the whole array is the chunk, permuted into batches), and
:func:`bayesreg.training.streamed.train_streamed` over each chunk read from disk. They
differ only in where a chunk comes from and where the evidence rounds run (inside the
compiled program, or on the host between chunks).

What a loop carries from one update to the next is a :class:`Carry`.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import optax

from bayesreg.data import devices as _distributed


def bind_hyperparameters(hook, h, likelihood, prior):
    """(likelihood, prior) at the hook's hyperparameters ``h``; as given without a hook.

    Examples
    --------
    >>> import bayesreg as br
    >>> lik, prior = br.GaussianLikelihood(0.5), {"weights": br.Gaussian(1.0)}
    >>> bind_hyperparameters(None, {}, lik, prior) == (lik, prior)
    True
    """
    return hook.bind(h, likelihood, prior) if hook is not None else (likelihood, prior)


def step(objective, tx, likelihood, prior, n, carry, batch, *, hook=None, h=None,
         weights=None, lbfgs=False, real=None):
    """One update on one mini-batch.

    ``carry`` = (state, optimiser state) and ``batch`` = (X_b (B, D), y_b (B,), key); the
    hyperparameters ``h`` of a ``hook`` are bound into (likelihood, prior), the gradient of
    ``objective`` (state, lik, prior, X_b, y_b, key, n, weights) on the batch is fed to the
    optax transform ``tx`` (L-BFGS's line search the objective itself when ``lbfgs``), and
    the update applied. ``real`` (a traced bool, optional) marks a padded batch that must
    leave the carry as it was (a chunk's last batches).

    Returns ((state, optimiser state), loss on the batch).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, optax, bayesreg as br
    >>> from bayesreg.training.objective import NegLogJoint
    >>> model = br.Linear()
    >>> state = {"params": model.init(jax.random.key(0), 1), "theta": {}}
    >>> tx = optax.sgd(0.5)
    >>> X, y = jnp.ones((4, 1)), jnp.ones(4)
    >>> prior = {"weights": br.Flat(), "biases": br.Flat()}
    >>> (new, _), loss = step(NegLogJoint(model), tx, br.GaussianLikelihood(1.0), prior, 4,
    ...                       (state, tx.init(state)), (X, y, jax.random.key(1)))
    >>> float(new["params"]["biases"][0][0])  # b − 0.5 ∂ℓ/∂b = 0 + 0.5 (y − f) at f = 0
    0.5
    """
    state, opt_state = carry
    Xb, yb, k = batch
    lik, pri = bind_hyperparameters(hook, h, likelihood, prior)

    def value_fn(s):
        return objective(s, lik, pri, Xb, yb, k, n, weights)

    if lbfgs:  # the line search needs the objective itself
        loss, grads = optax.value_and_grad_from_state(value_fn)(state, state=opt_state)
        updates, new_opt = tx.update(grads, opt_state, state, value=loss, grad=grads,
                                     value_fn=value_fn)
    else:
        loss, grads = jax.value_and_grad(value_fn)(state)
        updates, new_opt = tx.update(grads, opt_state, state)
    new = (optax.apply_updates(state, updates), new_opt)
    if real is not None:
        new = jax.tree_util.tree_map(lambda a, b: jnp.where(real, a, b), new, carry)
    return new, loss


class Collector(Protocol):
    """What a training loop folds the iterates into (``collect=``): every ``every``
    units the parameters φ, as the loop leaves them, update the collector's state.
    Hashable (a static argument of the compiled loop), e.g. a frozen dataclass. A collector
    with ``whole_state = True`` is offered the whole state instead (φ, θ and the rest of a
    latent state: SGLD's kept draws); one with a ``past_end`` index ignores an update at
    that index (the loop over chunks offers it every state, so that its buffer is written in
    place under ``vmap``).

    Examples
    --------
    >>> import dataclasses, jax, jax.numpy as jnp
    >>> @dataclasses.dataclass(frozen=True)
    ... class RunningMean:
    ...     every: int
    ...     def init(self, params):
    ...         return jax.tree_util.tree_map(jnp.zeros_like, params)
    ...     def update(self, acc, params, i):  # the i-th collected iterate, from 0
    ...         return jax.tree_util.tree_map(lambda a, p: a + (p - a) / (i + 1), acc, params)
    """

    every: int

    def init(self, params) -> Any:
        """The state before any iterate is collected."""

    def update(self, acc, params, i) -> Any:
        """The state after collecting ``params``, the ``i``-th iterate (from 0)."""


def offered(collect, state):
    """What ``collect`` folds in of a loop's ``state``: the whole state, or its parameters."""
    return state if getattr(collect, "whole_state", False) else state["params"]


class EarlyStopping(NamedTuple):
    """Early stopping's state, carried by the training loop: the state with the lowest
    validation loss so far, that loss, the updates since it, the updates run, and the update
    at which the patience ran out (−1 while it has not)."""

    best_state: Any
    best_loss: jax.Array
    since_best: jax.Array
    step: jax.Array
    stopped_at: jax.Array

    @classmethod
    def init(cls, state0, dtype) -> EarlyStopping:
        return cls(state0, jnp.asarray(jnp.inf, dtype), jnp.asarray(0), jnp.asarray(0),
                   jnp.asarray(-1))

    def stopped(self, patience: int | None) -> jax.Array:
        """Whether ``patience`` updates have passed without a better validation loss."""
        return self.since_best >= patience if patience is not None else jnp.array(False)

    def update(self, state, loss, frozen) -> EarlyStopping:
        """After an update to ``state`` with validation ``loss``; a ``frozen`` loop (already
        stopped) only counts the update."""
        better = (loss < self.best_loss) & ~frozen
        return EarlyStopping(
            best_state=jax.tree_util.tree_map(lambda a, b: jnp.where(better, b, a),
                                              self.best_state, state),
            best_loss=jnp.where(better, loss, self.best_loss),
            since_best=jnp.where(better, 0, jnp.where(frozen, self.since_best,
                                                      self.since_best + 1)),
            step=self.step + 1,
            stopped_at=jnp.where(frozen & (self.stopped_at < 0), self.step, self.stopped_at))


class Carry(NamedTuple):
    """What a training loop carries from one update to the next: the state {"params",
    "theta", …}, the optimiser's state, the hook's hyperparameters h (() without a hook),
    early stopping's :class:`EarlyStopping` (() without held-out rows) and the collector's
    state (() without a collector)."""

    state: Any
    opt_state: Any
    h: Any = ()
    track: Any = ()
    acc: Any = ()


class Validation(NamedTuple):
    """Held-out rows an update is scored on, for early stopping: X (V, D), y (V,), the mask
    of their real rows (V,) and the patience (updates without a better score; None: never
    stop, only remember the best)."""

    X: jax.Array
    y: jax.Array
    mask: jax.Array
    patience: int | None


class Updates(NamedTuple):
    """One update of a training loop, with its bookkeeping; built inside the compiled
    program (its arrays may be traced).

    ``objective`` (the negative log joint per point), ``tx`` (the optax transform),
    ``likelihood``, ``prior`` and ``n`` (the training rows, traced or not) are those of
    :func:`step`. ``hook``: the evidence hook whose hyperparameters the carry holds.
    ``weights``: the row weights of a full batch padded to a bucketed size. ``lbfgs``: feed
    the line search. ``validation``: score every update on held-out rows and stop early.
    ``collect`` and ``period``: fold the state after update t into the collector when
    (t + 1) is a multiple of ``period`` (the loop over chunks; the in-memory loop folds
    after rounds of units instead). ``batch_sharding``: spread each gathered batch over the
    devices (:mod:`bayesreg.data.devices`).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, optax, bayesreg as br
    >>> from bayesreg.training.objective import NegLogJoint
    >>> model, tx = br.Linear(), optax.sgd(0.1)
    >>> state = {"params": model.init(jax.random.key(0), 1), "theta": {}}
    >>> X = jnp.linspace(-1, 1, 8)[:, None]
    >>> updates = Updates(NegLogJoint(model), tx, br.GaussianLikelihood(1.0),
    ...                   {"weights": br.Flat(), "biases": br.Flat()}, 8)
    >>> index = jax.random.permutation(jax.random.key(1), 8).reshape(4, 2)  # 4 batches of 2
    >>> carry, (losses, _) = updates.over_batches(Carry(state, tx.init(state)), X, 2 * X[:, 0],
    ...                                           jax.random.split(jax.random.key(2), 4), index)
    >>> losses.shape
    (4,)
    """

    objective: Any
    tx: Any
    likelihood: Any
    prior: Any
    n: Any
    hook: Any = None
    weights: Any = None
    lbfgs: bool = False
    validation: Validation | None = None
    collect: Any = None
    period: int | None = None
    batch_sharding: Any = None

    def __call__(self, carry: Carry, batch, real=None, t=None):
        """``carry`` after one update on ``batch`` = (X_b, y_b, key); a padded batch
        (``real`` False) leaves it as it was. ``t``: the run's update number (for the
        collector). Returns (carry, (loss on the batch, validation loss or 0))."""
        (state, opt_state), loss = step(
            self.objective, self.tx, self.likelihood, self.prior, self.n,
            (carry.state, carry.opt_state), batch, hook=self.hook, h=carry.h,
            weights=self.weights, lbfgs=self.lbfgs, real=real)
        track, v = carry.track, jnp.zeros((), loss.dtype)
        if self.validation is not None:
            frozen = track.stopped(self.validation.patience)
            # once stopped, keep the parameters where they were: the loop runs on, unchanged
            state, opt_state = jax.tree_util.tree_map(
                lambda a, b: jnp.where(frozen, a, b), (carry.state, carry.opt_state),
                (state, opt_state))
            lik = bind_hyperparameters(self.hook, carry.h, self.likelihood, self.prior)[0]
            val = self.validation
            v = self.objective.validation_loss(state, lik, val.X, val.y, val.mask)
            track = track.update(state, v, frozen)
        acc = carry.acc
        if self.period is not None:
            acc = self._fold(acc, state, t, True if real is None else real)
        return Carry(state, opt_state, carry.h, track, acc), (loss, v)

    def _fold(self, acc, state, t, real):
        """The collector's state after update t: the state folded in at the end of a round
        of ``period`` updates, else as it was."""
        collect, period = self.collect, self.period
        due = real & ((t + 1) % period == 0)
        past_end = getattr(collect, "past_end", None)
        if past_end is not None:  # an index it drops: written in place, no select
            return collect.update(acc, offered(collect, state),
                                  jnp.where(due, (t + 1) // period - 1, past_end))
        return jax.lax.cond(due, lambda a: collect.update(a, offered(collect, state),
                                                          (t + 1) // period - 1),
                            lambda a: a, acc)

    def rows(self, X, y, index):
        """The batch of rows ``index`` (B,) of (X, y), spread over the devices with a batch
        sharding."""
        return _distributed.constrain_batch(X[index], y[index], self.batch_sharding)

    def over_batches(self, carry: Carry, X, y, keys, index=None, *, first=0, count=None):
        """``carry`` after L updates, one per batch of a chunk of rows: batch j is the rows
        ``index[j]`` of X (R, D), y (R, …) when ``index`` (L, B) is given (rows held on the
        device, gathered at their update), else X[j], y[j] of X (L, B, D), y (L, B)
        (batches already formed). Update j uses ``keys[j]`` and is the run's update
        ``first`` + j; batches j ≥ ``count`` (traced, optional) are padding and skipped.

        Returns (carry, (losses (L,), validation losses (L,)))."""
        def body(c, xs):
            j, k, rows = xs
            batch = (*rows, k) if index is None else (*self.rows(X, y, rows), k)
            return self(c, batch, real=None if count is None else j < count, t=first + j)

        return jax.lax.scan(body, carry, (jnp.arange(keys.shape[0]), keys,
                                          (X, y) if index is None else index))
