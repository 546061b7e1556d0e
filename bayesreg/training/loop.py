r"""The training engine: one compiled loop for every method that optimises (MAP, ensemble
members, MC dropout, the Laplace approximation's mode, VI's starting point).

``train_loop(objective, method, epochs, per_epoch, batch, likelihood, prior, state0, X, y,
key, X_val, y_val, *, hook=None, mask=None, val_mask=None, collect=None, opt_state0=None,
batch_sharding=None)`` is pure. What it minimises is passed in: ``objective`` (a hashable
:class:`~bayesreg.training.objective.NegLogJoint`, the negative log joint per point or the
latent density); the update is an optax transform from ``method`` (L-BFGS included, its
line search fed the objective), started from ``opt_state0`` when the caller computed one;
early stopping is an :class:`~bayesreg.training.update.EarlyStopping` state in the carry; an
optional ``hook`` (:class:`~bayesreg.training.evidence.EvidenceHook`) updates hyperparameters
between rounds of updates, or a ``collect``
(:class:`~bayesreg.training.update.Collector`) folds the iterates after each round into
running statistics (SWAG's moments). The update and its bookkeeping are
:class:`~bayesreg.training.update.Updates`, the body the loop over chunks runs too: an epoch
of mini-batches here is :meth:`~bayesreg.training.update.Updates.over_batches` over one chunk,
the rows held on the device.
``train_compiled`` is it under ``jit``; ``train_members`` is its ``vmap`` over members
(initial states, keys, and bagged data or anchored priors). A method's own jitted program
may call ``train_loop`` inside it (SWAG computes its rates, trains and draws in one
program). With ``batch_sharding`` each mini-batch is spread over the devices (data
parallel, :mod:`bayesreg.data.devices`).

Every loop is ``lax.scan`` — a scan over rounds of a scan over units with a hook — so there is
no Python loop per step and no ``cond`` (cheap under ``vmap``). Full-batch data are padded to
a geometric bucket of rows and masked (:func:`padded`), so fits on many training sizes share
O(log N) compiled programs. The same updates over data read by chunks are driven by
:mod:`bayesreg.training.streamed`.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from bayesreg import _progress
from bayesreg.data.buckets import bucket, pad_rows, to_device
from bayesreg.training import convergence
from bayesreg.training.evidence import target_scale
from bayesreg.training.objective import row_weights
from bayesreg.training.update import Carry, EarlyStopping, Updates, Validation, offered


def bucketed(X, y, X_val, y_val, per_epoch: int, batch: int):
    """The training and validation rows padded for the compiled loop (:func:`padded`), with
    the batch size of a full-batch plan set to the padded row count. A plan of one batch a
    unit smaller than the rows (MAP with N/2 < B < N, SGLD's steps) is a mini-batch plan."""
    X, y, mask = padded(X, y, per_epoch == 1 and batch >= X.shape[-2])
    X_val, y_val, val_mask = padded(X_val, y_val, True)
    if mask is not None:
        batch = int(X.shape[-2])
    return X, y, mask, X_val, y_val, val_mask, batch


def padded(X, y, full_batch: bool):
    """(X, y, mask) with the rows padded to a bucketed count (:mod:`bayesreg.data.buckets`; mask 0
    on the copies) for full-batch training, so that fits on many training sizes compile
    O(log N) programs; mini-batch plans depend on N anyway, so their data is kept (mask
    None). An empty validation set stays empty."""
    n = X.shape[-2]
    if not full_batch or n == 0:
        return X, y, None
    mask = to_device((np.arange(bucket(n)) < n).astype(X.dtype))
    return pad_rows(X, -2), pad_rows(y, X.ndim - 2), mask  # y's rows: (N,), (N, T), (M, N)


def train_loop(objective, method, epochs, per_epoch, batch, likelihood, prior, state0, X, y,
               key, X_val, y_val, *, hook=None, mask=None, val_mask=None, collect=None,
               opt_state0=None, batch_sharding=None):
    """The whole training loop; pure, so that ensembles can ``vmap`` it over members.

    The loop runs ``epochs`` units (one update each with the full batch, one pass over the
    shuffled mini-batches otherwise; one batch of rows drawn with replacement when
    ``per_epoch`` is 1 and ``method.resample``: SGLD's steps). With a ``hook``
    (:class:`~bayesreg.training.evidence.EvidenceHook`) the units are split into a burn-in
    and rounds: before each round the hook updates the hyperparameters h (σ, prior scales),
    which the objective then holds fixed, so the loop is a scan over rounds of a scan over
    units — no ``cond``, so it stays cheap under ``vmap``.

    ``mask`` (full batch only) and ``val_mask`` mark the real rows (1) of data padded to a
    bucketed size (0 for padding): the objective averages over real rows only, so fits on
    many training sizes share a few compiled programs.

    With ``collect`` (a :class:`~bayesreg.training.update.Collector`) the units are split
    into rounds of ``collect.every`` and the parameters after each round are folded into the
    collector's state (``trace["collected"]``); the iterates are those of the loop without it.
    ``opt_state0`` replaces ``tx.init(state0)``: an optimiser state computed in the
    program (SWAG's per-parameter rates).

    ``batch_sharding`` = (sharding of a batch's X rows, of its y) spreads each mini-batch
    over the devices (data parallel): every device evaluates the objective on its share of
    the rows, and the mean over the batch, so the gradient, is reduced across devices by
    the compiled program. The numbers are those of one device up to the order of the sums.

    Returns (final state, trace): ``trace["losses"]`` holds the objective at every update.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, bayesreg as br
    >>> model, method = br.Linear(), br.MAP(optimizer="sgd", lr=0.5, steps=200)
    >>> X, y = jnp.linspace(-1, 1, 8)[:, None], 2 * jnp.linspace(-1, 1, 8)
    >>> state0 = {"params": model.init(jax.random.key(0), 1), "theta": {}}
    >>> prior = {"weights": br.Flat(), "biases": br.Flat()}
    >>> state, trace = train_loop(method.objective(model), method, 200, 1, 8,
    ...                           br.GaussianLikelihood(1.0), prior, state0, X, y,
    ...                           jax.random.key(1), X[:0], y[:0])
    >>> round(float(state["params"]["weights"][0][0, 0]), 3), trace["losses"].shape
    (2.0, (200,))
    """
    if collect is not None and hook is not None:
        raise ValueError("the training loop takes a hyperparameter hook or a collector, not both")
    if collect is not None and epochs % collect.every:
        raise ValueError(f"the collector's rounds of {collect.every} units must divide the "
                         f"{epochs} units of the loop")
    full = per_epoch == 1 and (mask is not None or batch == X.shape[0])
    mask = jnp.ones(X.shape[0], X.dtype) if mask is None else mask
    val_mask = jnp.ones(X_val.shape[0], X.dtype) if val_mask is None else val_mask
    n = X.shape[0] if not full else jnp.sum(mask)
    tx = method.transform(epochs * per_epoch)
    watch = X_val.shape[0] > 0
    resample = getattr(method, "resample", False) and per_epoch == 1
    # the scale of the targets (1 for a constant target): σ's start and floor
    y_std = target_scale(y, mask).astype(X.dtype) if hook else None
    updates = Updates(objective, tx, likelihood, prior, n, hook=hook,
                      weights=row_weights(mask) if full else None,
                      lbfgs=method.optimizer == "lbfgs",
                      validation=Validation(X_val, y_val, val_mask, method.early_stopping)
                      if watch else None, batch_sharding=batch_sharding)

    if full:  # full batch: a unit is one update

        def unit(carry, k):
            return updates(carry, (X, y, k))
    elif resample:  # one batch, rows drawn with replacement: O(batch) work, any n

        def unit(carry, k):
            perm_key, step_key = jax.random.split(k)
            return updates(carry, (*updates.rows(X, y, jax.random.randint(perm_key, (batch,), 0,
                                                                          n)), step_key))
    else:  # a unit is one epoch: the rows, held on the device, are its one chunk

        def unit(carry, k):
            perm_key, step_key = jax.random.split(k)
            index = jax.random.permutation(perm_key, n)[: per_epoch * batch]
            return updates.over_batches(carry, X, y, jax.random.split(step_key, per_epoch),
                                        index.reshape(per_epoch, batch))

    carry0 = Carry(state0, tx.init(state0) if opt_state0 is None else opt_state0,
                   hook.init(state0["params"], y_std, X.dtype) if hook is not None else (),
                   EarlyStopping.init(state0, X.dtype) if watch else (),
                   collect.init(offered(collect, state0)) if collect is not None else ())
    own = getattr(method, "progress_desc", None)  # SWAG's phase names itself
    desc = own or f"MAP ({method.optimizer if isinstance(method.optimizer, str) else 'custom'})"
    report = dict(enabled=method.progress_bar, desc=desc,
                  named=own is None)  # a method training through MAP's settings: its own name
    keys = jax.random.split(key, epochs)
    extra = {}
    if collect is not None:
        # rounds of ``every`` units, the parameters folded into the collector after each:
        # the same keys, so the same iterates, as the loop without it
        rounds = epochs // collect.every

        def collect_round(carry, xs):
            i, ks = xs
            carry, outs = jax.lax.scan(unit, carry, ks)
            return carry._replace(acc=collect.update(carry.acc, offered(collect, carry.state),
                                                     i)), outs

        carry, (losses, vals) = _progress.scan(
            collect_round, carry0,
            (jnp.arange(rounds), keys.reshape(rounds, collect.every, *keys.shape[1:])),
            length=rounds, stride=collect.every, total=epochs, **report)
        extra["collected"] = carry.acc
    elif hook is None:
        carry, (losses, vals) = _progress.scan(unit, carry0, keys, length=epochs, **report)
    else:
        carry, (losses, vals), extra = _hook_rounds(hook, updates, unit, epochs, per_epoch,
                                                    carry0, keys, key, X, y, y_std, mask,
                                                    report)
    state = carry.state
    losses, vals = losses.reshape(-1), vals.reshape(-1)
    trace = {"losses": losses, **extra}
    if watch:
        trace.update(val_losses=vals, best_update=jnp.argmin(vals) + 1,
                     stopped_update=carry.track.stopped_at)
        if method.restore_best:
            state = dict(carry.track.best_state, theta=state["theta"])
    return state, trace


def _hook_rounds(hook, updates, unit, epochs, per_epoch, carry0, keys, key, X, y, y_std, mask,
                 report):
    """The loop's units in rounds: before each round but the first (the burn-in) the evidence
    ``hook`` updates the hyperparameters h, which the objective then holds fixed; at the
    end, Gauss–Newton steps to the mode when the objective allows. The last round is padded
    to full length with masked units, so the unit body is compiled once.

    Returns (carry, (losses, validation losses), trace entries)."""
    objective, likelihood, prior = updates.objective, updates.likelihood, updates.prior
    watch = updates.validation is not None  # held-out rows: early stopping may freeze h
    rounds, every = hook.rounds, -(-epochs // hook.rounds)
    valid = jnp.arange(rounds * every) < epochs
    pad = rounds * every - epochs
    keys = jnp.concatenate([keys, jax.random.split(jax.random.fold_in(key, 1), pad)])[
        : rounds * every] if pad else keys
    hyper_keys = jax.random.split(jax.random.fold_in(key, epochs), rounds)
    steps = convergence.polish_steps(objective, watch)  # a Newton step at the end

    def masked(carry, xs):
        k, ok = xs
        new, out = unit(carry, k)
        return jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), new, carry), out

    def round_(carry, xs):
        r, k_h, ks, oks = xs
        h_new, info = hook.update(carry.h, objective.model, likelihood, prior,
                                  carry.state["params"], X, y, k_h, y_std, mask,
                                  newton=steps > 0)
        keep = r == 0  # the burn-in round; and once early stopping froze the weights
        if watch:
            keep = keep | carry.track.stopped(updates.validation.patience)
        carry = carry._replace(h=jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b),
                                                        carry.h, h_new))
        if updates.lbfgs:  # the objective changed: L-BFGS's memory and cached value are stale
            carry = carry._replace(opt_state=jax.tree_util.tree_map(
                lambda a, b: jnp.where(keep, a, b), carry.opt_state,
                updates.tx.init(carry.state)))
        carry, outs = jax.lax.scan(masked, carry, (ks, oks))
        return carry, (outs, info.gamma, info.decrement, carry.h)

    xs = (jnp.arange(rounds), hyper_keys, keys.reshape(rounds, every, *keys.shape[1:]),
          valid.reshape(rounds, every))
    carry, ((losses, vals), gammas, decs, history) = _progress.scan(
        round_, carry0, xs, length=rounds, stride=every, total=epochs, **report)
    per = losses.shape[2:] if losses.ndim > 2 else ()
    losses = losses.reshape(-1, *per)[:epochs]
    vals = vals.reshape(-1, *per)[:epochs]
    # updates the hook refused (not finite; round 0's is the burn-in, unused)
    state, extra = hyper_trace(hook, carry.state, carry.h, gammas[-1],
                               jnp.sum(~jnp.isfinite(gammas[1:])), history)
    if steps:  # Gauss–Newton steps to the mode, and how far it was before each update
        state, (final, gains) = convergence.polished(
            hook, steps, carry.h, objective.model, likelihood, prior, state, X, y,
            jax.random.fold_in(key, epochs + 1), y_std, mask)
        extra.update(newton_decrement=final, polish_gains=gains,
                     newton_decrement_history=jnp.concatenate([decs[1:], final[None]]))
    # the objective changes with h: a loss compares with the start of its own round
    extra["round_starts"] = round_starts(epochs, every, per_epoch)
    return carry._replace(state=state), (losses, vals), extra


def round_starts(epochs: int, every: int, per_epoch: int) -> np.ndarray:
    """The update at which each round of ``every`` units (of ``per_epoch`` updates) starts,
    for the rounds that run at least one of the ``epochs`` units: between two evidence updates
    the objective is fixed, so each round's loss is checked on its own."""
    return np.arange(0, epochs, every) * per_epoch


def hyper_trace(hook, state, h, gamma, refused, history):
    """(state, trace entries) at the end of a loop with an evidence ``hook``, in memory or
    streamed: the last hyperparameters h, the effective number of parameters γ of the last
    update, the updates refused (not finite) and h before each round; the noise the
    evidence chose is the state's (the posterior's) noise."""
    if hook.learn_noise:
        state = dict(state, theta={"log_noise": h["log_noise"]})
    return state, {"hyper": h, "effective_parameters": gamma, "hyper_history": history,
                   "evidence_refused": refused}


_STATIC = (0, 1, 2, 3, 4)
train_compiled = jax.jit(train_loop, static_argnums=_STATIC,
                         static_argnames=("hook", "collect", "batch_sharding"))


@partial(jax.jit, static_argnums=(*_STATIC, 5), static_argnames=("hook", "collect"))
def train_members(objective, method, epochs, per_epoch, batch, axes, likelihood, prior,
                  state0, X, y, key, X_val, y_val, *, hook=None, mask=None, val_mask=None,
                  collect=None, opt_state0=None):
    """M members in one program: ``vmap`` of the training loop over initial states, keys
    and optimiser states (``opt_state0``, when given), and over data (bagging) or prior
    (anchoring) when ``axes`` = (data axis, prior axis)."""
    data_axis, prior_axis = axes

    def fn(likelihood, prior, state0, X, y, key, X_val, y_val, opt_state0):
        return train_loop(objective, method, epochs, per_epoch, batch, likelihood, prior,
                          state0, X, y, key, X_val, y_val, hook=hook, mask=mask,
                          val_mask=val_mask, collect=collect, opt_state0=opt_state0)

    return jax.vmap(fn, in_axes=(None, prior_axis, 0, data_axis, data_axis, 0, None, None, 0))(
        likelihood, prior, state0, X, y, key, X_val, y_val, opt_state0)
