r"""The training engine: one compiled loop for every method that optimises (MAP, ensemble
members, MC dropout, the Laplace approximation's mode, VI's starting point).

``_train_impl(model, method, epochs, per_epoch, batch, latent, likelihood, prior, state0, X, y,
key, X_val, y_val, *, hook=None, mask=None, val_mask=None)`` is pure: the objective
(negative log joint per point, or the latent density with ``latent=True``), an optax
transform from ``method`` (L-BFGS included, with its line search fed the objective), early
stopping as state in the carry, and an optional ``hook`` (:class:`EvidenceHook`) that updates
hyperparameters between rounds of updates. ``_train`` is it under ``jit``; ``_train_members``
is its ``vmap`` over members (initial states, keys, and bagged data or anchored priors).

Every loop is ``lax.scan`` — a scan over rounds of a scan over units with a hook — so there is
no Python loop per step and no ``cond`` (cheap under ``vmap``). Full-batch data are padded to
a geometric bucket of rows and masked (:func:`padded`), so fits on many training sizes share
O(log N) compiled programs.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from bayesreg import _progress
from bayesreg._buckets import bucket, pad_rows
from bayesreg.inference._latent import latent_log_prior
from bayesreg.inference._problem import log_likelihood
from bayesreg.priors import log_prior


def bucketed(X, y, X_val, y_val, per_epoch: int, batch: int):
    """The training and validation rows padded for the compiled loop (:func:`padded`), with
    the batch size of a full-batch plan set to the padded row count."""
    X, y, mask = padded(X, y, per_epoch == 1)
    X_val, y_val, val_mask = padded(X_val, y_val, True)
    if mask is not None:
        batch = int(X.shape[-2])
    return X, y, mask, X_val, y_val, val_mask, batch


def padded(X, y, full_batch: bool):
    """(X, y, mask) with the rows padded to a bucketed count (:mod:`bayesreg._buckets`; mask 0
    on the copies) for full-batch training, so that fits on many training sizes compile
    O(log N) programs; mini-batch plans depend on N anyway, so their data is kept (mask
    None). An empty validation set stays empty."""
    n = X.shape[-2]
    if not full_batch or n == 0:
        return X, y, None
    mask = jnp.asarray(np.arange(bucket(n)) < n, jnp.asarray(X).dtype)
    return pad_rows(X, -2), pad_rows(y, -1), mask


def _perturb(tree, key, scale):
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    keys = jax.random.split(key, max(1, len(leaves)))
    return jax.tree_util.tree_unflatten(treedef, [
        x + scale * jax.random.normal(k, x.shape, x.dtype) for x, k in zip(leaves, keys,
                                                                          strict=False)])


def _train_impl(model, method, epochs, per_epoch, batch, latent, likelihood, prior, state0, X,
                y, key, X_val, y_val, *, hook=None, mask=None, val_mask=None):
    """The whole training loop; pure, so that ensembles can ``vmap`` it over members.

    The loop runs ``epochs`` units (one update each with the full batch, one pass over the
    shuffled mini-batches otherwise). With a ``hook`` (:class:`EvidenceHook`) the units are
    split into a burn-in and rounds: before each round the hook updates the hyperparameters
    h (σ, prior scales), which the objective then holds fixed, so the loop is a scan over
    rounds of a scan over units — no ``cond``, so it stays cheap under ``vmap``.

    ``mask`` (full batch only) and ``val_mask`` mark the real rows (1) of data padded to a
    bucketed size (0 for padding): the objective averages over real rows only, so fits on
    many training sizes share a few compiled programs.
    """
    full = per_epoch == 1 and (mask is not None or batch == X.shape[0])
    mask = jnp.ones(X.shape[0], X.dtype) if mask is None else mask
    val_mask = jnp.ones(X_val.shape[0], X.dtype) if val_mask is None else val_mask
    n = X.shape[0] if not full else jnp.sum(mask)
    total = epochs * per_epoch
    tx = method.transform(total)
    noise = dict(method.noise or {})
    watch = X_val.shape[0] > 0
    patience = method.early_stopping
    lbfgs = method.optimizer == "lbfgs"
    # the scale of the targets (1 for a constant target): σ's start and floor
    if hook:
        y_mean = jnp.sum(mask * y) / jnp.sum(mask)
        y_sd = jnp.sqrt(jnp.sum(mask * (y - y_mean) ** 2) / jnp.sum(mask))
        y_std = jnp.where(y_sd > 0, y_sd, 1.0).astype(X.dtype)
    else:
        y_std = None

    def bound(h):
        return hook.bind(h, likelihood, prior) if hook is not None else (likelihood, prior)

    def objective(state, h, Xb, yb, k):
        lik, pri = bound(h)
        k_drop, k_in, k_w, k_lab = jax.random.split(k, 4)
        if noise.get("inputs"):
            Xb = Xb + noise["inputs"] * jax.random.normal(k_in, Xb.shape, Xb.dtype)
        if noise.get("labels"):
            yb = yb + noise["labels"] * jax.random.normal(k_lab, yb.shape, yb.dtype)
        used = state
        if noise.get("weights"):  # the loss at jittered weights, its gradient w.r.t. the clean
            used = dict(state, params=dict(state["params"], weights=_perturb(
                state["params"]["weights"], k_w, noise["weights"])))
        ll = log_likelihood(model, lik, used, Xb, yb, key=k_drop)
        if full:  # padded rows weigh nothing
            ll = ll * mask * (mask.shape[0] / n)
        lp = (latent_log_prior(lik, pri, state) if latent
              else log_prior(pri, state["params"]))
        return -(jnp.mean(ll) + lp / n)

    def val_loss(state, h):
        lik, _ = bound(h)
        ll = log_likelihood(model, lik, state, X_val, y_val)
        return -jnp.sum(ll * val_mask) / jnp.sum(val_mask)

    def update(carry, xs):
        state, opt_state, track, h = carry
        Xb, yb, k = xs
        if lbfgs:  # the line search needs the objective itself

            def value_fn(s):
                return objective(s, h, Xb, yb, k)

            loss, grads = optax.value_and_grad_from_state(value_fn)(state, state=opt_state)
            updates, new_opt = tx.update(grads, opt_state, state, value=loss, grad=grads,
                                         value_fn=value_fn)
        else:
            loss, grads = jax.value_and_grad(objective)(state, h, Xb, yb, k)
            updates, new_opt = tx.update(grads, opt_state, state)
        new_state = optax.apply_updates(state, updates)
        if not watch:
            return (new_state, new_opt, track, h), (loss, jnp.zeros((), loss.dtype))
        best_state, best, since, step, stopped_at = track
        frozen = since >= patience if patience is not None else jnp.array(False)
        # once stopped, keep the parameters where they were: the loop runs on, unchanged
        new_state = jax.tree_util.tree_map(lambda a, b: jnp.where(frozen, a, b), state,
                                           new_state)
        new_opt = jax.tree_util.tree_map(lambda a, b: jnp.where(frozen, a, b), opt_state,
                                         new_opt)
        v = val_loss(new_state, h)
        better = (v < best) & ~frozen
        best_state = jax.tree_util.tree_map(lambda a, b: jnp.where(better, b, a), best_state,
                                            new_state)
        track = (best_state, jnp.where(better, v, best),
                 jnp.where(better, 0, jnp.where(frozen, since, since + 1)), step + 1,
                 jnp.where(frozen & (stopped_at < 0), step, stopped_at))
        return (new_state, new_opt, track, h), (loss, v)

    if full:  # full batch: a unit is one update

        def unit(carry, k):
            return update(carry, (X, y, k))
    else:  # a unit is one epoch of shuffled mini-batches

        def unit(carry, k):
            perm_key, step_key = jax.random.split(k)
            idx = jax.random.permutation(perm_key, n)[: per_epoch * batch]
            idx = idx.reshape(per_epoch, batch)
            step_keys = jax.random.split(step_key, per_epoch)
            return jax.lax.scan(lambda c, xs: update(c, (X[xs[0]], y[xs[0]], xs[1])), carry,
                                (idx, step_keys))

    track0 = (state0, jnp.asarray(jnp.inf, X.dtype), jnp.asarray(0), jnp.asarray(0),
              jnp.asarray(-1)) if watch else ()
    h0 = hook.init(state0["params"], y_std, X.dtype) if hook is not None else {}
    carry0 = (state0, tx.init(state0), track0, h0)
    desc = f"MAP ({method.optimizer if isinstance(method.optimizer, str) else 'custom'})"
    keys = jax.random.split(key, epochs)
    if hook is None:
        (state, _, track, h), (losses, vals) = _progress.scan(
            unit, carry0, keys, length=epochs, enabled=method.progress_bar, desc=desc)
        extra = {}
    else:
        # rounds of ``every`` units; before each round but the first (the burn-in) the hook
        # updates h. The last round is padded to full length with masked units, so the unit
        # body is compiled once.
        rounds, every = hook.rounds, -(-epochs // hook.rounds)
        valid = jnp.arange(rounds * every) < epochs
        pad = rounds * every - epochs
        keys = jnp.concatenate([keys, jax.random.split(jax.random.fold_in(key, 1), pad)])[
            : rounds * every] if pad else keys
        hyper_keys = jax.random.split(jax.random.fold_in(key, epochs), rounds)

        def masked(carry, xs):
            k, ok = xs
            new, out = unit(carry, k)
            new = jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), new, carry)
            return new, out

        def round_(carry, xs):
            r, k_h, ks, oks = xs
            state, opt_state, track, h = carry
            h_new, gamma = hook.update(h, model, likelihood, prior, state["params"], X, y,
                                       k_h, y_std, mask)
            keep = r == 0  # the burn-in round; and once early stopping froze the weights
            if watch and patience is not None:
                keep = keep | (track[2] >= patience)
            h = jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b), h, h_new)
            if lbfgs:  # the objective changed: L-BFGS's memory and cached value are stale
                opt_state = jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b),
                                                   opt_state, tx.init(state))
            carry, outs = jax.lax.scan(masked, (state, opt_state, track, h), (ks, oks))
            return carry, (outs, gamma, h)

        xs = (jnp.arange(rounds), hyper_keys, keys.reshape(rounds, every, *keys.shape[1:]),
              valid.reshape(rounds, every))
        (state, _, track, h), ((losses, vals), gammas, history) = _progress.scan(
            round_, carry0, xs, length=rounds, enabled=method.progress_bar, desc=desc,
            stride=every, total=epochs)
        per = losses.shape[2:] if losses.ndim > 2 else ()
        losses = losses.reshape(-1, *per)[:epochs]
        vals = vals.reshape(-1, *per)[:epochs]
        extra = {"hyper": h, "effective_parameters": gammas[-1], "hyper_history": history}
        if hook.learn_noise:  # the noise the evidence chose is the posterior's noise
            state = dict(state, theta={"log_noise": h["log_noise"]})
    losses, vals = losses.reshape(-1), vals.reshape(-1)
    trace = {"losses": losses, **extra}
    if watch:
        best_state, _, _, _, stopped_at = track
        trace.update(val_losses=vals, best_update=jnp.argmin(vals) + 1,
                     stopped_update=stopped_at)
        if method.restore_best:
            state = dict(best_state, theta=state["theta"])
    return state, trace


_STATIC = (0, 1, 2, 3, 4, 5)
_train = jax.jit(_train_impl, static_argnums=_STATIC, static_argnames=("hook",))


@partial(jax.jit, static_argnums=(*_STATIC, 6), static_argnames=("hook",))
def _train_members(model, method, epochs, per_epoch, batch, latent, axes, likelihood, prior,
                   state0, X, y, key, X_val, y_val, *, hook=None, mask=None, val_mask=None):
    """M members in one program: ``vmap`` of the training loop over initial states and keys,
    and over data (bagging) or prior (anchoring) when ``axes`` = (data axis, prior axis)."""
    data_axis, prior_axis = axes
    fn = partial(_train_impl, model, method, epochs, per_epoch, batch, latent, hook=hook,
                 mask=mask, val_mask=val_mask)
    return jax.vmap(fn, in_axes=(None, prior_axis, 0, data_axis, data_axis, 0, None, None))(
        likelihood, prior, state0, X, y, key, X_val, y_val)
