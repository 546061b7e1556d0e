r"""Data larger than memory: array-likes read, checked and sent to the device by chunks.

``br.fit`` accepts, besides in-memory arrays, a NumPy memmap (``np.load(path,
mmap_mode="r")``, ``np.memmap``) or any array-like with ``shape``, ``dtype`` and row slicing
(an ``h5py`` dataset, a ``zarr`` array). Such an X is never materialised as a whole:

- **validation** (numeric dtype, shape, NaN/inf, the scale checks of
  :mod:`bayesreg._scales`) is one pass over chunks of about ``CHUNK_BYTES``; a NaN is
  reported with its row and column;
- **mini-batch MAP** (``br.MAP(batch_size=B)``) streams: every epoch is cut into chunks of
  2ᵏ batches, a background thread reads the next chunk (``PREFETCH`` ahead) while the device
  trains on the current one, and each chunk is one compiled ``lax.scan`` over its batches
  that carries the optimiser state on (:func:`bayesreg.training.streamed.train_streamed`);
- **Exact** streams at any size: one pass over chunks accumulates the QR factor of
  [Φ, y] (:func:`qr_factor`, one :func:`fold` over chunks);
- **an Ensemble with a mini-batch training** streams: one shared chunk stream, the chunk
  program ``vmap``ped over the members, each shuffling the chunk into its own batches
  (bagged, anchored and multi-device ensembles load X as below);
- **mini-batch SGLD** (``br.SGLD(batch_size=B)``) streams as that ensemble does, its chains
  the members of the same streamed loop with the Langevin transform
  (:func:`bayesreg.training.langevin_chains.sample`);
- methods that need every row at once (NUTS, VI, full-batch MAP, the Laplace
  approximation, MC dropout, full-batch SGLD, SWAG) read such an X into memory when it takes at most
  ``MATERIALIZE_LIMIT`` bytes in the working precision, and refuse it with a ``ValueError``
  above (:func:`materialize`).

The targets y (one number a row, 1/D of X) are read into memory, chunk by chunk.

**The data path.** Every streamed computation reads rows through the few functions here, on
any (N, D) row source (a memmap, or :class:`Rows` around another array-like): chunks for the
loops (:func:`epoch_chunks` plans an epoch's chunks, :func:`batch_reader` reads each into
reused buffers as batches, :func:`prefetch` reads ahead), one pass for sums (:func:`fold` on
the host, :func:`padded_chunks` for a compiled program), a random sample of rows
(:func:`sample_rows`) and materialise-or-refuse with the reason (:func:`materialize`).

**What the batches are.** The in-memory loop draws every batch from one permutation of all
N rows; a stream cannot, since random rows of a file are random reads. An epoch of a stream
takes the rows ``[s, s + (N // B)·B)`` modulo N (a random start s, so each row sits out an
epoch with the same probability (N mod B)/N, as in memory), cuts them into N // B blocks of B
contiguous rows (the block that passes row N wraps to row 0), visits the blocks in
a random order, reads them a chunk of about ``CHUNK_BYTES`` at a time, and shuffles the
rows of each chunk into its batches. A batch thus mixes rows from every block of its chunk
(25 blocks with the defaults for 10 float32 features and B = 4096). When one chunk holds the
whole epoch and N is a multiple of B (a small file), the batches are exactly those of the
in-memory loop.

**Resident memory.** Reading through a memory map maps the file's pages into the process,
and they count as resident until unmapped. After each chunk the mapping's pages are handed
back to the page cache (``madvise(MADV_DONTNEED)``; shared, read-only or read-write maps
only — never a copy-on-write ``mode="c"`` map, whose changed pages would be lost), so a fit
keeps a few chunks resident, not the file.
"""

from __future__ import annotations

import dataclasses
import mmap
import queue
import threading
from collections.abc import Callable, Iterable, Iterator

import numpy as np

CHUNK_BYTES = 4 << 20  # host bytes of X per chunk read (training and validation passes)
PREFETCH = 1  # chunks read ahead (ready and waiting) by the background thread
MATERIALIZE_LIMIT = 256 << 20  # bytes (working precision) of a streamed X that a method
# needing all rows at once may read into memory; above, a ValueError

_IN_MEMORY_MODULES = ("numpy", "jax", "jaxlib", "pandas", "torch", "builtins", "polars")


def is_lazy(a) -> bool:
    """Whether ``a`` is read by chunks: a NumPy memmap, or an array-like other than NumPy,
    JAX, pandas or torch arrays that has ``shape``, a NumPy ``dtype`` and ``__getitem__``."""
    if isinstance(a, np.memmap):
        return True
    if isinstance(a, np.ndarray | list | tuple):
        return False
    if type(a).__module__.split(".")[0] in _IN_MEMORY_MODULES:
        return False
    if not all(hasattr(a, k) for k in ("shape", "dtype", "__getitem__")):
        return False
    try:
        np.dtype(a.dtype)
        return len(a.shape) in (1, 2)
    except TypeError:
        return False


class Rows:
    """A read-only (N, D) view of an array-like of shape (N, D) or (N,) that is read by row
    slices (``h5py``, ``zarr``, ...). ``np.asarray`` reads it whole."""

    def __init__(self, source):
        self.source = source
        shape = tuple(int(s) for s in source.shape)
        self.shape = shape if len(shape) == 2 else (shape[0], 1)
        self.dtype = np.dtype(source.dtype)
        self.ndim = 2

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index):
        if isinstance(index, slice):
            start, stop, step = index.indices(self.shape[0])
            if step != 1:
                return np.asarray(self)[index]
            return np.asarray(self.source[start:stop]).reshape(-1, self.shape[1])
        return np.asarray(self)[index]

    def __array__(self, dtype=None, copy=None):
        del copy
        out = np.empty(self.shape, dtype or self.dtype)
        for a, b in spans(self.shape[0], max(1, CHUNK_BYTES // max(1, self.row_bytes))):
            out[a:b] = self[a:b]
        return out

    @property
    def row_bytes(self) -> int:
        return self.shape[1] * self.dtype.itemsize

    @property
    def nbytes(self) -> int:
        return self.shape[0] * self.row_bytes

    def __repr__(self) -> str:
        return f"Rows({type(self.source).__name__}, shape={self.shape}, dtype={self.dtype})"


def as_rows(a):
    """``a`` as (N, D) rows read by slices: a memmap stays a memmap (a 1-D one gains a
    column as a view), any other array-like is wrapped in :class:`Rows`."""
    if isinstance(a, np.memmap):
        return a[:, None] if a.ndim == 1 else a
    return Rows(a)


def spans(n: int, rows: int) -> list[tuple[int, int]]:
    """[(start, stop)) row ranges of at most ``rows`` rows covering 0..n."""
    rows = max(1, int(rows))
    return [(a, min(a + rows, n)) for a in range(0, n, rows)]


def chunk_rows(X, itemsize: int = 8) -> int:
    """Rows per validation chunk: about ``CHUNK_BYTES`` of X at ``itemsize`` bytes a value."""
    return max(1, CHUNK_BYTES // max(1, X.shape[1] * itemsize))


def fold(X, y, step: Callable, init, dtype=np.float64, rows: int | None = None):
    """One pass over chunks of rows: ``state = step(state, X_chunk, y_chunk)`` for each chunk
    of about ``CHUNK_BYTES`` (``rows`` rows if given), X read as ``dtype``; the last state.

    Examples
    --------
    >>> X, y = np.arange(10.0).reshape(5, 2), np.ones(5)
    >>> fold(X, y, lambda sizes, xc, yc: [*sizes, len(yc)], [], rows=2)
    [2, 2, 1]
    """
    rows = chunk_rows(X, np.dtype(dtype).itemsize) if rows is None else rows
    state = init
    for a, b in spans(X.shape[0], rows):
        state = step(state, read(X, [(a, b)], dtype), y[a:b])
    return state


def qr_factor(X, y, features: Callable) -> np.ndarray:
    """The triangular factor R ((P+1) × (P+1), float64) of [features(X), y] by one
    :func:`fold` over chunks (a tall-skinny QR): each chunk's rows are stacked under the
    factor so far and factorised again, so only one chunk of features is ever in memory.
    RᵀR = [Φ, y]ᵀ[Φ, y] (zero rows pad R where there are fewer rows than P + 1).

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(50, 2)); y = X @ [1.0, 2.0]
    >>> R = qr_factor(X, y, lambda x: x)
    >>> M = np.column_stack([X, y])
    >>> bool(np.allclose(R.T @ R, M.T @ M))
    True
    """

    def step(factor, X_chunk, y_chunk):
        block = np.concatenate([features(X_chunk), np.asarray(y_chunk, np.float64)[:, None]],
                               axis=1)
        if factor is not None:
            block = np.concatenate([factor, block], axis=0)
        return np.linalg.qr(block, mode="r")  # (min(rows, P + 1), P + 1)

    factor = fold(X, y, step, None, np.float64)
    p1 = factor.shape[1]
    if factor.shape[0] < p1:  # fewer rows than P + 1: R has as many rows as [Φ, y]
        factor = np.concatenate([factor, np.zeros((p1 - factor.shape[0], p1))], axis=0)
    return factor[:p1]


def _mapping(a):
    """The ``mmap`` under a memmap whose pages may be released, or None."""
    if not isinstance(a, np.memmap) or getattr(a, "mode", "c") not in ("r", "r+", "w+"):
        return None  # "c" (copy-on-write): releasing would drop the user's changes
    mm = getattr(a, "_mmap", None)
    base = a
    while mm is None and base is not None:
        if isinstance(base, mmap.mmap):
            mm = base
        base = getattr(base, "base", None)
    return mm if isinstance(mm, mmap.mmap) and hasattr(mm, "madvise") else None


def release(a) -> None:
    """Unmap the pages of ``a``'s memory map from this process (they stay in the page cache
    and are read back on the next access), so that reading a file does not grow the
    resident set. A no-op for anything but a shared memmap."""
    mm = _mapping(a)
    if mm is None or not hasattr(mmap, "MADV_DONTNEED"):
        return
    try:
        mm.madvise(mmap.MADV_DONTNEED)
    except (OSError, ValueError):  # a closed map, or a platform that refuses
        pass


def read(X, runs: Iterable[tuple[int, int]], dtype, out: np.ndarray | None = None):
    """The rows of the [start, stop) ``runs`` of X, in that order, as a fresh (rows, D) array
    of ``dtype`` (one copy, cast on the way), or written into the first rows of ``out``;
    X's mapped pages are released after."""
    runs = list(runs)
    if out is None:
        out = np.empty((sum(b - a for a, b in runs), X.shape[1]), dtype)
    pos = 0
    for a, b in runs:
        out[pos:pos + b - a] = X[a:b]
        pos += b - a
    release(X)
    return out


def read_padded(X, y, runs, dtype, host_X: np.ndarray, host_y: np.ndarray) -> int:
    """The rows of the ``runs`` of X and y written, in file order, into the first rows of
    ``host_X`` (rows, D) and ``host_y`` (rows,), the rest zeroed; returns the rows read."""
    read(X, runs, dtype, out=host_X)
    p = 0
    for a, b in runs:
        host_y[p:p + b - a] = y[a:b]
        p += b - a
    host_X[p:], host_y[p:] = 0, 0
    return p


def take(X, rows: np.ndarray, dtype) -> np.ndarray:
    """The rows ``rows`` (sorted) of X as a fresh array of ``dtype``; pages released after."""
    if isinstance(X, np.ndarray):
        out = np.asarray(X[rows], dtype)
    else:
        out = np.empty((len(rows), X.shape[1]), dtype)
        for i, r in enumerate(rows):
            out[i] = X[int(r):int(r) + 1][0]
    release(X)
    return out


def runs_of(starts: np.ndarray, length: int, n: int | None = None) -> list[tuple[int, int]]:
    """Blocks [s, s + length) at sorted ``starts`` merged into contiguous runs; with ``n``,
    a block that passes row n wraps around to row 0 (rows are taken modulo n)."""
    runs: list[list[int]] = []
    for s in starts.tolist():
        parts = ([(s, s + length)] if n is None or s + length <= n
                 else [(s, n), (0, s + length - n)])
        for a, b in parts:
            if runs and runs[-1][1] == a:
                runs[-1][1] = b
            else:
                runs.append([a, b])
    return [(a, b) for a, b in runs]


def epoch_chunks(rng: np.random.Generator, n: int, batch: int, per_epoch: int,
                 n_chunks: int) -> Iterator[tuple[int, int, list[tuple[int, int]]]]:
    """(first batch, batches, runs of rows) of each of the ``n_chunks`` chunks of one epoch
    of a stream (the module docstring's batches): the rows [s, s + per_epoch·B) modulo N
    from a start s drawn from ``rng``, cut into per_epoch blocks of B rows, visited in an
    order drawn from ``rng`` and dealt out to the chunks as evenly as possible (one chunk: the
    rows from s on, in that order). The loops' chunk planner, shared by every streamed loop.

    Examples
    --------
    >>> [c[:2] for c in epoch_chunks(np.random.default_rng(0), 100, 10, 10, 3)]
    [(0, 4), (4, 3), (7, 3)]
    >>> list(epoch_chunks(np.random.default_rng(0), 100, 10, 10, 1))
    [(0, 10, [(0, 100)])]
    """
    start = int(rng.integers(0, n)) if n > per_epoch * batch else 0
    order = rng.permutation(per_epoch)
    if n_chunks == 1:
        yield 0, per_epoch, runs_of(np.array([start]), per_epoch * batch, n)
        return
    base, rest = divmod(per_epoch, n_chunks)
    pos = 0
    for c in range(n_chunks):
        count = base + (c < rest)
        starts = np.sort((start + np.sort(order[pos:pos + count]) * batch) % n)
        yield pos, count, runs_of(starts, batch, n)
        pos += count


def batch_reader(X, y, length: int, batch: int, dtype) -> Callable:
    """``read(runs, order=None)`` -> (X_c (length, batch, D), y_c (length, batch)): the rows
    of ``runs`` of X and y as a chunk of ``length`` batches, in file order or, with
    ``order``, shuffled by it on the host; the rest zero (padding). The chunks are written
    into a ring of ``PREFETCH`` + 2 buffers, reused, so resident memory does not grow with
    the chunks read: a buffer is refilled only after the chunk it held was used (one in use,
    ``PREFETCH`` waiting, one being filled), so call it in order, from one thread.

    Examples
    --------
    >>> read = batch_reader(np.arange(10.0)[:, None], np.arange(10.0), 2, 2, np.float32)
    >>> Xc, yc = read([(6, 9)])
    >>> yc.tolist()
    [[6.0, 7.0], [8.0, 0.0]]
    """
    d = X.shape[1]
    ring = [(np.zeros((length, batch, d), dtype), np.zeros((length, batch), dtype))
            for _ in range(PREFETCH + 2)]
    raw: list[np.ndarray] = []  # the unshuffled rows, allocated at the first shuffle
    filled = iter(range(1 << 62))

    def read(runs, order=None):
        out_X, out_y = ring[next(filled) % len(ring)]
        host_X, host_y = out_X.reshape(-1, d), out_y.reshape(-1)
        if order is None:
            read_padded(X, y, runs, dtype, host_X, host_y)
            return out_X, out_y
        if not raw:
            raw.extend([np.zeros_like(host_X), np.zeros_like(host_y)])
        m = read_padded(X, y, runs, dtype, *raw)
        np.take(raw[0][:m], order, axis=0, out=host_X[:m])
        np.take(raw[1][:m], order, out=host_y[:m])
        host_X[m:], host_y[m:] = 0, 0
        return out_X, out_y

    return read


def padded_chunks(X, y, dtype, rows: int | None = None
                  ) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
    """One pass over the rows of X and y for sums over every row: (X_c (rows, D), y_c
    (rows,), m) for each chunk of ``rows`` rows (about ``CHUNK_BYTES``), the last padded
    with zeros after its m real rows so that one compiled program serves every chunk, read
    ahead by a background thread (:func:`prefetch`) into buffers that are reused: use a
    chunk before asking for the next.

    Examples
    --------
    >>> [(yc.tolist(), m) for _, yc, m in padded_chunks(np.ones((3, 1)), np.arange(3.0),
    ...                                                  np.float32, rows=2)]
    [([0.0, 1.0], 2), ([2.0, 0.0], 1)]
    """
    n = X.shape[0]
    rows = min(n, chunk_rows(X, np.dtype(dtype).itemsize)) if rows is None else rows
    read = batch_reader(X, y, 1, rows, dtype)

    def chunk(a, b):
        return lambda: (*(c[0] for c in read([(a, b)])), b - a)

    return prefetch(chunk(a, b) for a, b in spans(n, rows))


def sample_rows(X, y, m: int, rng: np.random.Generator, dtype):
    """(X_s, y_s): ``min(m, N)`` distinct rows drawn at random by ``rng``, in file order,
    read at once (for a curvature or a learning rate on a subsample).

    Examples
    --------
    >>> Xs, ys = sample_rows(np.arange(10.0)[:, None], np.arange(10.0), 3,
    ...                      np.random.default_rng(0), np.float32)
    >>> Xs.shape, bool((Xs[:, 0] == ys).all())
    ((3, 1), True)
    """
    pick = np.sort(rng.choice(X.shape[0], min(m, X.shape[0]), replace=False))
    return take(X, pick, dtype), np.asarray(y[pick], dtype)


def prefetch(thunks: Iterable[Callable], depth: int = PREFETCH) -> Iterator:
    """``f()`` for each f of ``thunks``, in order, computed up to ``depth`` ahead by a
    background thread (reading and copying release the GIL, so reads overlap compute).
    An exception in a thunk is raised here; leaving the loop early stops the thread."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work():
        try:
            for f in thunks:
                if stop.is_set() or not put(("item", f())):
                    return
            put(("done", None))
        except BaseException as err:  # handed to the consumer
            put(("error", err))

    thread = threading.Thread(target=work, name="bayesreg-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, item = q.get()
            if kind == "done":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


# -- validation by chunks ---------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ColumnStats:
    """What the scale checks need of X, accumulated over chunks (float64)."""

    n: int
    max_abs: float
    std: np.ndarray  # (D,), population std of each column


def _check_kind(a, name: str) -> None:
    kind = np.dtype(a.dtype).kind
    if kind not in "biuf":
        raise ValueError(f"{name} must be numeric (real numbers or booleans); got a "
                         f"{type(a).__name__} of dtype {a.dtype}")


def _first_bad(c: np.ndarray, start: int, name: str) -> ValueError:
    bad = ~np.isfinite(c)
    i = int(np.argmax(bad.any(axis=1)))
    j = int(np.argmax(bad[i]))
    return ValueError(
        f"{name} contains NaN or infinite values: row {start + i}, column {j} is {c[i, j]}; "
        "expected finite numbers (checked chunk by chunk; rows after it were not read)")


def check_X_stream(X, name: str = "X") -> tuple[object, ColumnStats]:
    """(X as :func:`as_rows`, its :class:`ColumnStats`) after one pass over chunks: a numeric
    dtype, shape (N, D) or (N,) with N ≥ 1, every value finite (else a ``ValueError`` naming
    the first bad row and column)."""
    _check_kind(X, name)
    shape = tuple(X.shape)
    if len(shape) not in (1, 2):
        raise ValueError(f"{name} must have shape (N, D) or (N,); got shape {shape}")
    if shape[0] == 0:
        raise ValueError(f"{name} must have at least one row; got shape {shape}")
    rows = as_rows(X)
    n, d = rows.shape
    shift = None
    s1, s2, big = np.zeros(d), np.zeros(d), 0.0
    for a, b in spans(n, chunk_rows(rows)):
        c = read(rows, [(a, b)], np.float64)
        if not np.all(np.isfinite(c)):
            raise _first_bad(c, a, name)
        big = max(big, float(np.max(np.abs(c))))
        if shift is None:
            shift = c[0].copy()
        c -= shift  # shifted sums: no cancellation for columns far from 0
        s1 += c.sum(axis=0)
        s2 += np.einsum("ij,ij->j", c, c)
    mean = s1 / n
    std = np.sqrt(np.maximum(s2 / n - mean**2, 0.0))
    return rows, ColumnStats(n=n, max_abs=big, std=std)


def check_y_stream(y, n: int, name: str = "y", targets: Callable | None = None) -> np.ndarray:
    """y (an array-like of shape (N,) or (N, 1)) read into memory by chunks, in float64 if
    it is float64 and float32 otherwise; NaN or inf is a ``ValueError`` naming the row.
    ``targets`` (a likelihood's ``check_targets``) checks and converts each chunk."""
    _check_kind(y, name)
    shape = tuple(y.shape)
    if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
        raise ValueError(f"{name} must have shape (N,) or (N, 1); got shape {shape}")
    if shape[0] != n:
        raise ValueError(f"{name} has {shape[0]} rows but X has {n}; expected shape ({n},)")
    rows = as_rows(y)
    dtype = np.float64 if np.dtype(y.dtype) == np.float64 else np.float32
    out = None
    for a, b in spans(n, chunk_rows(rows)):
        c = read(rows, [(a, b)], dtype)[:, 0]
        if not np.all(np.isfinite(c)):
            raise _first_bad(c[:, None], a, name)
        c = targets(c) if targets is not None else c
        if out is None:
            out = np.empty(n, c.dtype)
        out[a:b] = c
    return out


def std(y: np.ndarray) -> float:
    """Population std of an in-memory vector, by chunks in float64 (no full-size temporary)."""
    n = len(y)
    step = max(1, CHUNK_BYTES // 8)
    mean = sum(float(np.sum(y[a:b], dtype=np.float64)) for a, b in spans(n, step)) / n
    ss = sum(float(np.sum((np.asarray(y[a:b], np.float64) - mean) ** 2))
             for a, b in spans(n, step))
    return float(np.sqrt(ss / n))


def nbytes(X, dtype) -> int:
    """Bytes X takes in memory in ``dtype``."""
    return int(X.shape[0]) * int(X.shape[1]) * np.dtype(dtype).itemsize


def materialize(X, dtype, why: str) -> np.ndarray:
    """X read into memory (by chunks, one copy) when it takes at most ``MATERIALIZE_LIMIT``
    bytes in ``dtype``; otherwise a ``ValueError`` that says ``why`` and what streams."""
    size = nbytes(X, dtype)
    if size > MATERIALIZE_LIMIT:
        raise ValueError(
            f"{why}, but X is a {type(X).__name__} of shape {tuple(X.shape)}: "
            f"{size / 2**20:.0f} MiB in {np.dtype(dtype).name}, above the "
            f"{MATERIALIZE_LIMIT / 2**20:.0f} MiB that bayesreg reads into memory from an "
            "array it otherwise streams (bayesreg.data.stream.MATERIALIZE_LIMIT). Mini-batch "
            "MAP streams any size: br.MAP(batch_size=...), without validation or "
            "early_stopping; so do br.SGLD(batch_size=...) and br.Exact for "
            "linear-in-parameters models. Or fit on a "
            "subsample, or pass np.asarray(X) yourself.")
    return read(X, [(0, X.shape[0])], dtype)
