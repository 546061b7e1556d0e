r"""Work spread over every device of every process, and the result gathered on each.

One process (one or several local devices) and a cluster of processes joined by
``jax.distributed.initialize(...)`` run the same code: the work that splits into
independent pieces — ensemble members, NUTS chains — has a leading axis that is padded to a
multiple of the global device count and sharded over a 1-D mesh of ``jax.devices()`` (all
processes' devices); everything else is replicated. Every process builds the same full
inputs from the same seed, hands JAX only the rows its own devices hold
(``jax.make_array_from_callback``), the compiled program runs on the whole mesh, and
:func:`gather` brings the sharded results back to NumPy on every process
(``multihost_utils.process_allgather``). The numbers are those of one process: the pieces
are independent and built from the same keys, whatever the process count.

Mini-batch MAP is data parallel instead (:func:`batch_shardings`): the data and the state
are replicated, each batch's rows are spread over the same mesh, the compiled program sums
the per-device parts of the gradient, and each process reads the result from its own
replica (:func:`local`).
"""

from __future__ import annotations

import jax
import numpy as np
from jax.experimental import multihost_utils

AXIS = "members"


def multiprocess() -> bool:
    """True after ``jax.distributed.initialize`` joined more than one process."""
    return jax.process_count() > 1


def padded_count(count: int) -> int:
    """``count`` rounded up to a multiple of the global device count."""
    d = jax.device_count()
    return -(-count // d) * d


def mesh() -> jax.sharding.Mesh:
    """A 1-D mesh named ``"members"`` over every device of every process."""
    return jax.sharding.Mesh(np.array(jax.devices()), (AXIS,))


def _is_key(x) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _host(x):
    """A leaf as a NumPy array; a typed PRNG key array as (its key data, its implementation),
    since NumPy cannot hold keys."""
    if _is_key(x):
        return np.asarray(jax.random.key_data(x)), jax.random.key_impl(x)
    return np.asarray(x), None


def _device(data, impl):
    return data if impl is None else jax.random.wrap_key_data(data, impl=impl)


def pad_leading(tree, count: int):
    """Each leaf with its leading axis padded to ``count`` by repeating its last row (the
    copies are independent pieces whose results :func:`gather` callers drop)."""
    def pad(x):
        x, impl = _host(x)
        extra = count - x.shape[0]
        x = x if extra == 0 else np.concatenate([x, np.repeat(x[-1:], extra, 0)])
        return _device(x, impl) if impl is not None else x
    return jax.tree_util.tree_map(pad, tree)


def _global(x, sharding):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return x  # already a global array
    x, impl = _host(x)
    out = jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])
    return _device(out, impl)


def shard_leading(tree, m: jax.sharding.Mesh):
    """Each leaf sharded along its leading axis over ``m``: on one process a plain
    ``device_put``; on several, each process supplies the rows of its own devices."""
    spread = jax.sharding.NamedSharding(m, jax.sharding.PartitionSpec(AXIS))
    if not multiprocess():
        return jax.device_put(tree, spread)
    return jax.tree_util.tree_map(lambda x: _global(x, spread), tree)


def replicate(tree, m: jax.sharding.Mesh, *, everywhere: bool = False):
    """Each array leaf replicated on every device of ``m`` (a global array, as a program
    compiled for the whole cluster needs); Python scalars and non-array leaves as they are.
    On one process the tree is returned unchanged, unless ``everywhere`` (an array the
    caller committed to one device would clash with a program sharded over all of them)."""
    whole = jax.sharding.NamedSharding(m, jax.sharding.PartitionSpec())
    if not multiprocess():
        if not everywhere:
            return tree
        return jax.tree_util.tree_map(
            lambda x: jax.device_put(x, whole) if isinstance(x, np.ndarray | jax.Array) else x,
            tree)
    return jax.tree_util.tree_map(
        lambda x: _global(x, whole) if isinstance(x, np.ndarray | jax.Array) else x, tree)


def batch_shardings(m: jax.sharding.Mesh):
    """(sharding of a batch's X (B, D) rows, of its y (B,)) over ``m``: data-parallel
    mini-batches, each device holding B/D rows.

    Examples
    --------
    >>> import jax
    >>> from bayesreg.data import devices as _distributed
    >>> rows, targets = _distributed.batch_shardings(_distributed.mesh())
    >>> tuple(rows.spec), tuple(targets.spec)
    (('members', None), ('members',))
    """
    spec = jax.sharding.PartitionSpec
    return (jax.sharding.NamedSharding(m, spec(AXIS, None)),
            jax.sharding.NamedSharding(m, spec(AXIS)))


def data_parallel(batch: int | None, tree):
    """(``tree`` replicated on every device, :func:`batch_shardings`) when mini-batches of
    ``batch`` rows can be spread over more than one device (of one process or several);
    (``tree``, None) otherwise — full batch (``batch`` None), one device, or fewer rows a
    batch than devices.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesreg.data import devices as _distributed
    >>> tree, shardings = _distributed.data_parallel(16, {"X": np.zeros((4, 2))})
    >>> shardings is None  # one CPU device: nothing to spread
    True
    """
    if batch is None or not 1 < jax.device_count() <= batch:
        return tree, None
    m = mesh()
    return replicate(tree, m, everywhere=True), batch_shardings(m)


def constrain_batch(Xb, yb, shardings):
    """A mini-batch's rows spread over the devices by ``shardings`` (from
    :func:`data_parallel`), inside a compiled program; unchanged when it is None."""
    if shardings is None:
        return Xb, yb
    return (jax.lax.with_sharding_constraint(Xb, shardings[0]),
            jax.lax.with_sharding_constraint(yb, shardings[1]))


def local(tree):
    """The result of a data-parallel fit as host arrays: a replicated array (every device
    holds the whole value) is read from this process's own copy, without communication, so
    that later work runs on one device and not on all of them; an array that is not
    replicated is all-gathered (:func:`gather`, a collective). Arrays on one device are
    returned as they are.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from bayesreg.data import devices as _distributed
    >>> _distributed.local({"w": jnp.ones(2)})["w"].tolist()
    [1.0, 1.0]
    """
    def one(x):
        if not isinstance(x, jax.Array) or len(x.sharding.device_set) == 1:
            return x
        if not x.sharding.is_fully_replicated:
            return gather(x)
        key = _is_key(x)
        impl = jax.random.key_impl(x) if key else None
        data = jax.random.key_data(x) if key else x
        return _device(np.asarray(data.addressable_shards[0].data), impl)
    return jax.tree_util.tree_map(one, tree)


def gather(tree):
    """Every leaf as a NumPy array holding its whole value, on every process (a PRNG key
    array as a process-local key array). Arrays spread
    over other processes' devices are all-gathered (a collective: every process must call
    this, in the same order); the others are copied to the host."""
    def one(x):
        key = _is_key(x)
        impl = jax.random.key_impl(x) if key else None
        data = jax.random.key_data(x) if key else x
        if isinstance(data, jax.Array) and not data.is_fully_addressable:
            data = multihost_utils.process_allgather(data, tiled=True)
        return _device(np.asarray(data), impl)
    return jax.tree_util.tree_map(one, tree)


def chain_share(num_chains: int) -> np.ndarray:
    """The chains this process runs when ``num_chains`` independent chains are split over
    the processes: ⌈C/P⌉ consecutive indices each, the last process's padded with copies of
    the last chain (dropped by :func:`gather_chains`)."""
    per = -(-num_chains // jax.process_count())
    first = jax.process_index() * per
    return np.minimum(np.arange(first, first + per), num_chains - 1)


def gather_chains(tree, num_chains: int):
    """Each process's (its chains, ...) arrays stacked in process order into the whole
    (num_chains, ...) arrays, on every process (a collective, like :func:`gather`)."""
    local = jax.tree_util.tree_map(np.asarray, tree)
    stacked = multihost_utils.process_allgather(local, tiled=True)
    return jax.tree_util.tree_map(lambda a: np.asarray(a)[:num_chains], stacked)
