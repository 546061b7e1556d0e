r"""The way into the training loop: where the rows are and how they are laid out.

A trainer says what to minimise and how (objective, transform, plan, hook); this module
decides the rest, once for every caller:

- **where the rows are.** An X read by chunks (:mod:`bayesreg.data.stream`) goes to the loop
  over chunks (:func:`bayesreg.training.streamed.train_streamed`, one compiled program a
  chunk, the evidence updates on the host between rounds); an X in memory goes whole to the
  compiled loop (:func:`bayesreg.training.loop.train_loop`, one program with the evidence
  rounds inside), its rows padded to a bucketed count for full-batch training
  (:func:`~bayesreg.training.loop.bucketed`) so that fits on many training sizes share a few
  programs. Both run the same updates (:class:`~bayesreg.training.update.Updates`), collectors,
  keys and trace;
- **whether an earlier process traced them** (the command line keeps the loops' traced
  programs, :func:`bayesreg.cache.traced_call`);
- **how they are laid out over the devices** (:mod:`bayesreg.data.devices`): one network's
  mini-batches are spread over the devices (data parallel), M networks' member axis is
  (:func:`shard_members`); every process gets the whole result back.

:func:`run_one` trains one network, :func:`run_members` M networks in one program (an
ensemble's members, MultiSWAG's pretrainings, each from its own state and key, on the same
rows or their own): SGLD's chains and SWAG's SGD phase are such members too.
"""

from __future__ import annotations

import dataclasses

import jax

from bayesreg.cache import traced_call
from bayesreg.data import devices as _distributed
from bayesreg.data import stream as _stream
from bayesreg.data.buckets import to_device
from bayesreg.training.loop import bucketed, train_compiled, train_members
from bayesreg.training.streamed import train_streamed


def run_one(objective, method, plan, likelihood, prior, state0, X, y, key, X_val=None,
            y_val=None, *, hook=None):
    """(final state, trace) of one network trained by ``method`` (a resolved
    :class:`~bayesreg.training.trainer.Trainer`) on ``plan`` = (epochs, batches per epoch,
    batch size) from ``state0``: the compiled loop for X in memory (validation rows
    ``X_val``, ``y_val`` watched when given), the streamed loop for X read by chunks (which
    holds no validation rows out).

    Examples
    --------
    >>> import jax, numpy as np, bayesreg as br
    >>> from bayesreg.data.stream import Rows
    >>> model, method = br.Linear(), br.MAP(batch_size=4, epochs=100, lr=0.1)
    >>> X = np.linspace(-1, 1, 16, dtype=np.float32)[:, None]
    >>> start = {"params": model.init(jax.random.key(0), 1), "theta": {}}
    >>> args = (method.objective(model), method, method.plan(16), br.GaussianLikelihood(1.0),
    ...         {"weights": br.Flat(), "biases": br.Flat()}, start)
    >>> in_memory, _ = run_one(*args, X, 3 * X[:, 0], jax.random.key(1))
    >>> by_chunks, trace = run_one(*args, Rows(X), 3 * X[:, 0], jax.random.key(1))  # lazy X
    >>> [round(float(s["params"]["weights"][0][0, 0]), 4) for s in (in_memory, by_chunks)]
    [3.0, 3.0]
    >>> trace["losses"].shape  # 100 epochs of 16 // 4 batches
    (400,)
    """
    epochs, per_epoch, batch = plan
    if _stream.is_lazy(X):  # read by chunks (br.fit checked the method can stream)
        if X_val is not None and X_val.shape[0]:
            raise ValueError("a streamed X cannot hold out validation rows")
        return train_streamed(objective, method, epochs, per_epoch, batch, likelihood, prior,
                              state0, X, y, key, hook=hook)
    X_val = X[:0] if X_val is None else X_val
    y_val = y[:0] if y_val is None else y_val
    X, y, mask, X_val, y_val, val_mask, batch = bucketed(X, y, X_val, y_val, per_epoch, batch)
    # mini-batches (mask None) over several devices: data parallel
    (*args, mask, val_mask), sharding = _distributed.data_parallel(
        batch if mask is None else None,
        (likelihood, prior, state0, to_device(X), to_device(y), key, to_device(X_val),
         to_device(y_val), mask, val_mask))
    if sharding is not None:  # JAX runs no ordered callback (the progress report's) on
        method = dataclasses.replace(method, progress_bar=False)  # several devices
    out = traced_call(train_compiled, 5, ("hook", "batch_sharding"), objective, method, epochs,
                      per_epoch, batch, *args, hook=hook, mask=mask, val_mask=val_mask,
                      batch_sharding=sharding)
    return out if sharding is None else _distributed.local(out)


def run_members(objective, method, plan, axes, likelihood, prior, state0, X, y, keys, X_val,
                y_val, *, hook=None, collect=None, opt_state0=None, updates=None,
                collect_period=None):
    """(final states, trace) of M networks trained as one program, M = ``len(keys)``, with a
    leading member axis on every array: ``state0`` and ``keys`` have one, and so do X and y
    when ``axes`` = (data axis, prior axis) says 0 for the data (bagging) and the prior's
    arrays when it says 0 for the prior (anchoring, learned scales). In memory the compiled
    loop ``vmap``\\ ped over the members, the member axis spread over the devices; read by
    chunks, every member on one shared stream (each chunk read once, shuffled into each
    member's own batches; the same rows for all, each member's prior its own where the prior
    axis is 0). ``X_val``, ``y_val``: the validation rows every member watches (none:
    ``X[:0]``, ``y[:0]`` of unbagged rows).
    ``collect`` (:class:`~bayesreg.training.update.Collector`) folds each member's iterates
    in (``trace["collected"]``), ``opt_state0`` (a leading member axis) replaces the
    transform's ``init``. Read by chunks only: ``updates`` stops the run short of the plan's
    epochs, and ``collect_period`` counts the collector's rounds in updates
    (:func:`~bayesreg.training.streamed.train_streamed`).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, bayesreg as br
    >>> model, method = br.Linear(), br.MAP(optimizer="sgd", lr=0.5, steps=100)
    >>> X, y = jnp.linspace(-1, 1, 8)[:, None], 2 * jnp.linspace(-1, 1, 8)
    >>> states0 = jax.vmap(lambda k: {"params": model.init(k, 1), "theta": {}})(
    ...     jax.random.split(jax.random.key(0), 3))
    >>> prior = {"weights": br.Flat(), "biases": br.Flat()}
    >>> states, trace = run_members(method.objective(model), method, method.plan(8),
    ...                             (None, None), br.GaussianLikelihood(1.0), prior, states0,
    ...                             X, y, jax.random.split(jax.random.key(1), 3), X[:0], y[:0])
    >>> states["params"]["weights"][0].shape, trace["losses"].shape
    ((3, 1, 1), (3, 100))
    """
    epochs, per_epoch, batch = plan
    count = keys.shape[0]
    if _stream.is_lazy(X):
        if axes[0] is not None or X_val.shape[0]:
            raise ValueError("members on a streamed X share its rows (no bagging) and hold "
                             "no validation rows out")
        return train_streamed(objective, method, epochs, per_epoch, batch, likelihood, prior,
                              state0, X, y, keys, hook=hook, members=count, collect=collect,
                              opt_state0=opt_state0, prior_axis=axes[1], updates=updates,
                              collect_period=collect_period)
    if updates is not None or collect_period is not None:
        raise ValueError("updates and collect_period are the streamed loop's; in memory the "
                         "plan's epochs and the collector's rounds say them")
    several = jax.device_count() > 1
    if several:  # JAX runs no ordered callback (the progress report's) on several devices
        method = dataclasses.replace(method, progress_bar=False)
    X, y, mask, X_val, y_val, val_mask, batch = bucketed(X, y, X_val, y_val, per_epoch, batch)
    X, y = to_device(X), to_device(y)
    # the optimiser states (when given) have the member axis the initial states have
    (state0, opt_state0), keys, X, y, prior = shard_members(
        count, ((state0, opt_state0), keys, X, y, prior), axes)
    rest = (likelihood, to_device(X_val), to_device(y_val), mask, val_mask)
    if several:
        rest = _distributed.replicate(rest, _distributed.mesh())
    likelihood, X_val, y_val, mask, val_mask = rest
    state, trace = traced_call(train_members, 6, ("hook", "collect"), objective, method,
                               epochs, per_epoch, batch, axes, likelihood, prior, state0, X, y,
                               keys, X_val, y_val, hook=hook, mask=mask, val_mask=val_mask,
                               collect=collect, opt_state0=opt_state0)
    # every process gets every member (an all-gather across processes), padding dropped
    return jax.tree_util.tree_map(lambda a: a[:count], _distributed.gather((state, trace)))


def shard_members(members: int, inputs, axes):
    """Spread the member axis over every JAX device, of this process and of every other
    process after ``jax.distributed.initialize`` (:mod:`bayesreg.data.devices`).

    The inputs with a member axis (initial states, keys, and data or prior when bagged or
    anchored) are padded to a multiple of the device count (copies of the last member, whose
    results the caller drops) and placed with a ``NamedSharding`` over a 1-D mesh named
    "members"; the compiled ``vmap`` is then partitioned by XLA so each device trains its
    share. Across processes each process supplies the rows of its own devices and the other
    inputs are replicated. With one device the inputs are returned as they are.

    Examples
    --------
    >>> import jax, numpy as np
    >>> inputs = ({"a": np.zeros((4, 2))}, np.zeros(4), np.zeros((3, 1)), np.zeros(3), {})
    >>> jax.device_count() > 1 or shard_members(4, inputs, (None, None)) is inputs
    True
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
