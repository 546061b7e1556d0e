r"""The training engine's loop over data read by chunks (:mod:`bayesreg.data.stream`): a
memory-mapped or otherwise lazy X too large to load.

:func:`train_streamed` drives the updates of :func:`bayesreg.training.loop.train_loop`
(:class:`~bayesreg.training.update.Updates`, the same body, carry and keys) over chunks of
batches: a Python loop whose every chunk is one compiled scan (:func:`_train_chunk`, or
:func:`_train_chunk_members` for an ensemble sharing one stream) carrying the
:class:`~bayesreg.training.update.Carry` on, the next chunk read by a
background thread meanwhile; the evidence update reads the data once per round
(:func:`_streamed_hook_update`).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from bayesreg._random import numpy_rng
from bayesreg.data import stream as _stream
from bayesreg.problem import log_likelihood
from bayesreg.training.loop import hyper_trace, round_starts
from bayesreg.training.update import Carry, Updates, offered


def chunk_plan(batch: int, row_bytes: int, per_epoch: int) -> tuple[int, int]:
    """(chunks per epoch k, batches per chunk L) of a stream: the fewest chunks whose rows
    take at most ``_stream.CHUNK_BYTES`` each (one chunk may exceed it when a single batch
    does). The epoch's batches are dealt out as evenly as possible, L = ⌈per_epoch / k⌉ per
    chunk and one less in some, so one compiled program serves every chunk."""
    most = max(1, _stream.CHUNK_BYTES // max(1, batch * row_bytes))
    k = -(-per_epoch // most)
    return k, -(-per_epoch // k)


def _chunk_scan(objective, method, total, hook, collect, period, likelihood, prior, carry, X,
                y, step_keys, first, count, n, index=None):
    """One chunk of a stream: the loop's :class:`~bayesreg.training.update.Updates` (without
    validation rows) over its batches, the :class:`~bayesreg.training.update.Carry` carried
    in and out. X (L, B, D) and y (L, B) hold L batches, already shuffled, of which the
    first ``count`` are real (the rest padding, skipped); with ``index`` (L, B) X (R, D) and
    y (R,) hold the chunk's rows and batch j is rows index[j]. Update j uses
    ``step_keys[j]`` (:func:`_step_keys`: the in-memory loop's keys) and is the run's update
    ``first`` + j. ``n`` and ``first`` are traced, so one program serves every N whose
    chunks have the same shape. With ``collect`` the state after update t is folded in as
    the collector's iterate i when t + 1 = (i + 1)·``period``."""
    updates = Updates(objective, method.transform(total), likelihood, prior, n, hook=hook,
                      collect=collect, period=period)
    carry, (losses, _) = updates.over_batches(carry, X, y, step_keys, index, first=first,
                                              count=count)
    return carry, losses


_train_chunk = partial(jax.jit, static_argnums=(0, 1, 2, 3, 4, 5))(_chunk_scan)  # keeps the doc


@partial(jax.jit, static_argnums=(1, 3))
def _step_keys(epoch_key, per_epoch: int, offset, length: int):
    """The keys of updates offset … offset + length − 1 of an epoch, as the in-memory loop
    draws them: split(split(epoch_key)[1], per_epoch)[offset + j] (the last for padding
    past the epoch's end); (M, length) for M members' keys (M,). Apart from the chunk
    program, so that the chunk program does not depend on per_epoch."""
    def one(key):
        keys = jax.random.split(jax.random.split(key)[1], per_epoch)
        return keys[jnp.minimum(offset + jnp.arange(length), per_epoch - 1)]

    return one(epoch_key) if epoch_key.ndim == 0 else jax.vmap(one)(epoch_key)


@partial(jax.jit, static_argnums=(0, 1, 2, 3, 4, 5, 6), static_argnames=("prior_axis",))
def _train_chunk_members(objective, method, total, hook, collect, period, one_chunk,
                         likelihood, prior, carry, X, y, epoch_keys, step_keys, offset, first,
                         count, n, *, prior_axis=None):
    """One chunk of a stream for M ensemble members: :func:`_chunk_scan` ``vmap``ped over
    the members' carries, this epoch's keys (M,) and the chunk's update keys (M, L). X
    (L, B, D) and y (L, B) hold the chunk's rows in file order, shared by every member; each
    member shuffles them into its own batches on the device: by the in-memory loop's
    permutation (split(epoch key)[0]) when the epoch is ``one_chunk``, else by a
    permutation of the chunk's ``count``·B real rows drawn from its key and the chunk's
    ``offset`` in the epoch (padding stays last, skipped). Each update gathers its batch
    from the shared chunk, so the members hold M permutations, not M copies of the chunk.
    ``prior_axis`` = 0: each member has its own prior (a leading member axis on its
    arrays)."""
    rows = X.shape[0] * X.shape[1]

    def member(carry, epoch_key, step_keys, prior):
        k_perm = jax.random.split(epoch_key)[0]
        if one_chunk:
            perm = jax.random.permutation(k_perm, rows)
        else:
            u = jax.random.uniform(jax.random.fold_in(k_perm, offset), (rows,))
            perm = jnp.argsort(jnp.where(jnp.arange(rows) < count * X.shape[1], u, 2.0))
        return _chunk_scan(objective, method, total, hook, collect, period, likelihood, prior,
                           carry, X.reshape(rows, -1), y.reshape(rows), step_keys, first,
                           count, n, perm.reshape(y.shape))

    return jax.vmap(member, in_axes=(0, 0, 0, prior_axis))(carry, epoch_keys, step_keys,
                                                            prior)


@partial(jax.jit, static_argnums=(0, 1))
def _sum_sq_residuals(model, members: bool, params, X, y, m):
    """Σ (y − f(x))² over the first m rows of X; per member (a leading axis of params)."""
    def rss(p):
        return jnp.sum(jnp.where(jnp.arange(X.shape[0]) < m, y - model.apply(p, X)[:, 0], 0.0)
                       ** 2)
    return jax.vmap(rss)(params) if members else rss(params)


@partial(jax.jit, static_argnums=(0, 1, 2))
def _hook_step(hook, model, members: bool, likelihood, prior, h, params, X, y, key, y_std,
               rss, n):
    def update(h, p, k, r):
        return hook.update(h, model, likelihood, prior, p, X, y, k, y_std, totals=(r, n))
    return jax.vmap(update)(h, params, key, rss) if members else update(h, params, key, rss)


def _streamed_hook_update(hook, model, likelihood, prior, h, params, X, y, key, y_std, dtype,
                          members=None):
    """The evidence update on a stream: RSS by one pass over chunks (when σ is learned), the
    Gauss–Newton matrix on ``hook.max_rows`` random rows read at once. With ``members`` = M
    (an ensemble), h, params and key have a leading member axis: one pass gives every
    member's RSS, and every member's update uses the same random rows (drawn from key[0])."""
    several = members is not None
    rss = jnp.zeros((members,) if several else (), dtype)
    if hook.learn_noise:
        for Xc, yc, m in _stream.padded_chunks(X, y, dtype):
            rss = (rss + _sum_sq_residuals(model, several, params, Xc, yc, m)
                   ).block_until_ready()
    Xs, ys = _stream.sample_rows(X, y, hook.max_rows, numpy_rng(key[0] if several else key),
                                 dtype)
    return _hook_step(hook, model, several, likelihood, prior, h, params, Xs, ys, key, y_std,
                      rss, jnp.asarray(X.shape[0], dtype))


def train_streamed(objective, method, epochs, per_epoch, batch, likelihood, prior, state0, X,
                   y, key, *, hook=None, members=None, collect=None, opt_state0=None,
                   prior_axis=None, updates=None, collect_period=None):
    """The mini-batch loop of :func:`train_loop` over an X read by chunks
    (:mod:`bayesreg.data.stream`): a Python loop over chunks of batches, each one compiled scan
    (:func:`_train_chunk`, one program per shape), the next chunk read by a background
    thread meanwhile. Returns (final state, trace) as the in-memory loop does (no
    validation rows).

    An epoch takes the rows [s, s + per_epoch·B) modulo N (s random), visits its
    per_epoch blocks of B contiguous rows in a random order, reads them k chunks at a time
    (:func:`chunk_plan`) and shuffles each chunk's rows into its batches. Keys are used as
    in the in-memory loop, so an epoch of one chunk (N = per_epoch·B rows that fit in
    ``_stream.CHUNK_BYTES``) draws exactly the in-memory batches.

    ``members`` = M trains an ensemble on one shared stream: state0 and key have a leading
    member axis, every chunk is read once, in file order, and :func:`_train_chunk_members`
    (the chunk program ``vmap``ped over members) shuffles it into each member's own batches
    from its own key; the state and trace come back with a leading member axis.

    ``prior_axis`` = 0 gives each member its own prior (MultiSWAG's learned scales).
    ``collect`` (:class:`~bayesreg.training.update.Collector`) folds the parameters in, inside
    the compiled chunk, after every ``collect_period`` updates (default: every
    ``collect.every`` epochs, ``collect.every``·per_epoch updates; SGLD's thinning counts
    updates) (``trace["collected"]``); ``opt_state0`` replaces ``tx.init(state0)`` (with a
    leading member axis for an ensemble), as in :func:`~bayesreg.training.loop.train_loop`.
    ``updates`` stops the run after that many updates (default: epochs·per_epoch), the last
    chunk cut short: the transform's schedules see ``updates`` as the total."""
    n, d = X.shape
    dtype = jnp.asarray(0.0).dtype  # the working precision
    total = epochs * per_epoch if updates is None else updates
    tx = method.transform(total)
    n_chunks, steps = chunk_plan(batch, d * dtype.itemsize, per_epoch)
    n_rows = jnp.asarray(n, dtype)
    split = jax.random.split if members is None else jax.vmap(jax.random.split, (0, None))
    keys = split(key, epochs)  # (epochs,), or (M, epochs) for an ensemble
    # the host's draws (start rows, block order): one stream, shared by the members
    seeds = np.asarray(jax.random.key_data(keys if members is None else keys[0])).reshape(
        epochs, -1)
    per_member = (lambda f: f) if members is None else jax.vmap
    y = np.asarray(y)
    if hook is not None:
        y_sd = _stream.std(y)
        y_std = jnp.asarray(y_sd if y_sd > 0 else 1.0, dtype)
        h = per_member(lambda p: hook.init(p, y_std, dtype))(state0["params"])
        every = -(-epochs // hook.rounds)
        hyper_keys = per_member(lambda k: jax.random.split(jax.random.fold_in(k, epochs),
                                                           hook.rounds))(key)
    else:
        h, every = (), epochs
    period, acc = None, ()
    if collect is not None:
        if hook is not None or (collect_period is None and epochs % collect.every):
            raise ValueError("a streamed loop collects every collect.every epochs, which must "
                             f"divide the {epochs} epochs, and takes no hyperparameter hook")
        period = collect.every * per_epoch if collect_period is None else collect_period
        acc = per_member(collect.init)(offered(collect, state0))
    carry = Carry(state0, per_member(tx.init)(state0) if opt_state0 is None else opt_state0,
                  h, (), acc)
    losses, history, gamma = [], [], jnp.asarray(jnp.nan, dtype)
    refused = 0  # evidence updates refused (not finite), per member
    def epoch_chunks(e):
        """(epoch, first update, updates, runs of rows, row order) of each chunk of epoch
        e. The order shuffles the chunk's rows on the host: by the in-memory loop's
        permutation when one chunk holds the epoch; None for an ensemble (each member
        shuffles on the device)."""
        rng = np.random.default_rng([*seeds[e].tolist(), 5])
        for pos, count, runs in _stream.epoch_chunks(rng, n, batch, per_epoch, n_chunks):
            if members is not None:
                order = None
            elif n_chunks == 1:
                order = np.asarray(jax.random.permutation(jax.random.split(keys[e])[0],
                                                          per_epoch * batch))
            else:
                order = np.random.default_rng([*seeds[e].tolist(), 7, pos]).permutation(
                    count * batch)
            yield e, pos, count, runs, order

    read = _stream.batch_reader(X, y, steps, batch, dtype)

    def reader(e, pos, count, runs, order):
        return lambda: (read(runs, order), (e, pos, count))

    for r, first in enumerate(range(0, epochs, every)):
        if hook is not None:
            if r > 0:  # before every round but the burn-in: the hyperparameters move
                h, info = _streamed_hook_update(hook, objective.model, likelihood, prior,
                                                h, carry.state["params"], X, y,
                                                hyper_keys[..., r], y_std, dtype, members)
                gamma = info.gamma
                refused = refused + ~np.isfinite(np.asarray(gamma))
                carry = carry._replace(h=h)
            history.append(h)
        plan = []  # the round's chunks, the last cut short where the updates run out
        for e in range(first, min(first + every, epochs)):
            for e_, pos, count, runs, order in epoch_chunks(e):
                count = min(count, total - e * per_epoch - pos)
                if count > 0:
                    plan.append(reader(e_, pos, count, runs, order))
        for (Xc, yc), (e, pos, count) in _stream.prefetch(plan):
            first = e * per_epoch + pos  # the run's update at the chunk's start
            if members is None:
                carry, loss = _train_chunk(objective, method, total, hook, collect, period,
                                           likelihood, prior, carry, Xc, yc,
                                           _step_keys(keys[e], per_epoch, pos, steps), first,
                                           count, n_rows)
            else:
                step_keys = _step_keys(keys[:, e], per_epoch, pos, steps)
                carry, loss = _train_chunk_members(
                    objective, method, total, hook, collect, period, n_chunks == 1,
                    likelihood, prior, carry, Xc, yc, keys[:, e], step_keys, pos, first,
                    count, n_rows, prior_axis=prior_axis)
            # dispatch is asynchronous: wait for this chunk (the reading thread prepares the
            # next meanwhile) before its buffer can be refilled
            losses.append((loss.block_until_ready(), count))
    state, h, acc = carry.state, carry.h, carry.acc
    trace = {"losses": np.concatenate([np.asarray(loss)[..., :count] for loss, count in losses],
                                      axis=-1)}
    if hook is not None:
        axis = 0 if members is None else 1  # rounds after the member axis, as when vmapped
        if members is not None and epochs <= every:  # no update ran: γ per member
            gamma = jnp.full((members,), jnp.nan, dtype)
        state, extra = hyper_trace(hook, state, h, gamma, np.asarray(refused),
                                   jax.tree_util.tree_map(lambda *a: jnp.stack(a, axis=axis),
                                                          *history))
        trace.update(extra)
        trace["round_starts"] = round_starts(epochs, every, per_epoch)
    if collect is not None:
        trace["collected"] = acc
    return state, trace


@partial(jax.jit, static_argnames=("model",))
def _chunk_log_likelihood(model, likelihood, states, X, y, m):
    """Σ over the first ``m`` rows of X of log p(yᵢ | xᵢ, state), for each of the states
    (a leading axis)."""
    real = jnp.arange(X.shape[0]) < m
    return jax.lax.map(lambda s: jnp.sum(jnp.where(
        real, log_likelihood(model, likelihood, s, X, y), 0.0)), states)


def sum_log_likelihood_streamed(model, likelihood, states, X, y) -> np.ndarray:
    """Σᵢ log p(yᵢ | xᵢ, state) over an X read by chunks, for each of the ``states`` (a
    pytree {"params", "theta"} with a leading axis): one pass, summed in float64 on the
    host.

    Examples
    --------
    >>> import jax, numpy as np, bayesreg as br
    >>> model = br.Linear()
    >>> state = {"params": model.init(jax.random.key(0), 2), "theta": {}}  # f = 0
    >>> states = jax.tree_util.tree_map(lambda a: a[None], state)  # one state
    >>> ll = sum_log_likelihood_streamed(model, br.GaussianLikelihood(1.0), states,
    ...                                  np.zeros((5, 2)), np.zeros(5))
    >>> round(float(ll[0]), 4)  # 5 · log N(0; 0, 1)
    -4.5947
    """
    count = jax.tree_util.tree_leaves(states)[0].shape[0]
    total = np.zeros(count, np.float64)
    for Xc, yc, m in _stream.padded_chunks(X, y, jnp.asarray(0.0).dtype):
        total += np.asarray(_chunk_log_likelihood(model, likelihood, states, Xc, yc, m))
    return total
