"""Progress of long fits: a bar on a terminal, a line every few seconds in a pipe or a log.

Every method with a long loop (MAP and what trains through it — ensembles, MC dropout,
Laplace —, VI and NUTS) reports its progress here through host callbacks from inside the
compiled loop. What a report shows is decided on the host, from wall time:

* ``progress_bar=None`` (the default, "auto"): nothing during the first ``DELAY`` (2) seconds
  of a loop, so short work stays silent; after that a tqdm bar when stderr is a terminal,
  and otherwise one plain line every ``INTERVAL`` (5) seconds and one when the loop ends,
  e.g. ``MAP (adam): 4000/8000 (50%), 3.1 s, ~3 s left``.
* ``progress_bar=True``: the same, from the first step on.
* ``progress_bar=False``: no callbacks are compiled into the loop at all.

The environment variable ``BAYESREG_PROGRESS=0`` (or the CLI's ``--quiet``, which sets
:func:`silenced`) silences every report of the process; ``BAYESREG_PROGRESS=1`` shows every
loop from its start.

``scan`` runs the loop in chunks of at least ``MIN_UNITS`` (1000) units of work, at most
``TICKS`` (100) chunks, and calls back (ordered) between two chunks, never inside the per-step
loop: a callback in every step had made a 3000-update MAP fit ~50% slower on CPU. NUTS and VI
tick from their kernel step (:func:`tick`, about ``TICKS`` times per run). A vmapped loop (an
ensemble's members) counts chunks with an unbatched counter, so it reports once, not once per
member.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np

DELAY = 2.0  # seconds of wall time before an automatic report shows anything
INTERVAL = 5.0  # seconds between plain lines when stderr is not a terminal
TICKS = 100  # host callbacks per loop, at most
MIN_UNITS = 1000  # units of work (MAP updates or epochs) between two callbacks, at least

_LOCK = threading.RLock()
_SILENCED = 0
_CACHEABLE = 0


_ON, _OFF = ("1", "true", "on", "yes"), ("0", "false", "off", "no")


def _env() -> str:
    return os.environ.get("BAYESREG_PROGRESS", "").strip().lower()


def is_silenced() -> bool:
    """True under :func:`silenced` or with ``BAYESREG_PROGRESS=0``."""
    return _SILENCED > 0 or _env() in _OFF


def in_loop(progress_bar: bool | None) -> bool | None:
    """The ``progress_bar`` a training loop compiles with (:meth:`bayesreg.MAP.resolved`,
    SWAG's phase): False, no callbacks, while silenced or under :func:`cacheable_loops`
    (unless ``BAYESREG_PROGRESS=1``), since JAX writes no program with host callbacks to its
    persistent cache (:mod:`bayesreg.cache`); else the setting as given.

    Examples
    --------
    >>> with cacheable_loops():
    ...     in_loop(True)
    False
    """
    wanted = not is_silenced() and (_CACHEABLE == 0 or _env() in _ON)
    return progress_bar if wanted else False


@contextlib.contextmanager
def cacheable_loops():
    """The training loops compiled in this block hold no progress callbacks, so the
    persistent compilation cache keeps them (the command line's default: its training fits
    report by their "fitting" lines instead). Samplers keep their reports."""
    global _CACHEABLE
    with _LOCK:
        _CACHEABLE += 1
    try:
        yield
    finally:
        with _LOCK:
            _CACHEABLE -= 1


@contextlib.contextmanager
def silenced():
    """No progress report of any fit in this process while the block runs (``--quiet``)."""
    global _SILENCED
    with _LOCK:
        _SILENCED += 1
    try:
        yield
    finally:
        with _LOCK:
            _SILENCED -= 1


def _mode(enabled: bool | None) -> bool | None:
    """True: report from the start; None: after DELAY seconds; False: never."""
    if enabled is False:
        return False
    if _env() in _ON:
        return True
    return None if enabled is None else True


class Reporter:
    """Progress of one loop of ``total`` units, updated with :meth:`update` from any thread.

    ``note(done)`` may add a word on where the loop is (e.g. NUTS's chain and phase).
    """

    def __init__(self, desc: str, total: int, *, enabled: bool | None = None, unit: str = "",
                 note=None, stream=None):
        self.desc, self.total, self.unit, self.note = desc, max(int(total), 1), unit, note
        self.mode = _mode(enabled)
        self.stream = sys.stderr if stream is None else stream
        try:
            self.tty = bool(self.stream.isatty())
        except (AttributeError, ValueError):
            self.tty = False
        self.start = time.perf_counter()
        self.done = 0
        self.first = None  # (time, count) of the first report of work done: the rate's origin
        self.bar = None
        self.shown = False
        self.last_line = None
        self.closed = False

    def update(self, done: int) -> None:
        try:
            with _LOCK:
                self._update(int(done))
        except Exception:  # a report must never break a fit
            pass

    def _update(self, done: int) -> None:
        if self.closed or self.mode is False or is_silenced():
            return
        done = min(max(done, self.done), self.total)
        self.done = done
        now = time.perf_counter()
        elapsed = now - self.start
        finished = done >= self.total
        if done > 0 and self.first is None:
            self.first = (now, done)
        if not self.shown:
            if self.mode is None and elapsed < DELAY:
                return  # short work stays silent
            self.shown = True
        note = ("starting: compiling" if done == 0 else
                self.note(done) if self.note is not None else "")
        if self.tty:
            if self.bar is None:
                from tqdm.auto import tqdm  # only on a terminal; tqdm.auto probes for Jupyter

                self.bar = tqdm(total=self.total, initial=done, desc=self.desc,
                                unit=self.unit or "it", file=self.stream, leave=True)
            else:
                self.bar.update(done - self.bar.n)
            if note:
                self.bar.set_postfix_str(note, refresh=False)
            if finished:
                self.close()
            return
        if finished or self.last_line is None or now - self.last_line >= INTERVAL:
            self.last_line = now
            unit = f" {self.unit}" if self.unit else ""
            text = (f"{self.desc}: {done}/{self.total}{unit} ({100 * done / self.total:.0f}%), "
                    f"{elapsed:.1f} s")
            t0, d0 = self.first or (now, done)
            if not finished and done > d0 and now > t0:
                text += f", ~{(self.total - done) * (now - t0) / (done - d0):.0f} s left"
            if note:
                text += f" [{note}]"
            print(text, file=self.stream, flush=True)
            if finished:
                self.closed = True

    def close(self) -> None:
        with _LOCK:
            self.closed = True
            if self.bar is not None:
                self.bar.close()
                self.bar = None


# --- reports from inside a compiled loop -------------------------------------------------

_ACTIVE: list[Reporter] = []  # the reporter of the NumPyro run in progress (see ``tick``)


_NAMES: list[str] = []  # the methods now training through the shared loop, innermost last


@contextlib.contextmanager
def named(name: str):
    """Report the shared training loop's progress under ``name`` while the block runs (an
    ensemble's members said "MAP (adam)"). Read by the host when a report arrives, so the
    compiled loop is the same whatever the name.

    Examples
    --------
    >>> with named("Ensemble (5 members)"):
    ...     loop_name("MAP (adam)")
    'Ensemble (5 members)'
    >>> loop_name("MAP (adam)")
    'MAP (adam)'
    """
    with _LOCK:
        _NAMES.append(name)
    try:
        yield
    finally:
        with _LOCK:
            _NAMES.remove(name)


def loop_name(default: str) -> str:
    """The name the shared loop reports under: the innermost :func:`named`, else ``default``."""
    with _LOCK:
        return _NAMES[-1] if _NAMES else default


@contextlib.contextmanager
def active(reporter: Reporter):
    """Make ``reporter`` the target of :func:`tick` while the block runs (NUTS, VI: their
    runs hold ``bayesreg.latent.NUMPYRO_LOCK``, so one is active at a time)."""
    with _LOCK:
        _ACTIVE.append(reporter)
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(reporter, stop), daemon=True)
    if reporter.mode is not False:
        beat.start()
    try:
        yield reporter
    finally:
        stop.set()
        with _LOCK:
            if reporter in _ACTIVE:
                _ACTIVE.remove(reporter)
        reporter.close()
        if beat.is_alive():
            beat.join()


def _heartbeat(reporter: Reporter, stop: threading.Event) -> None:
    """Re-report the count now and then, so a long compilation or a slow stretch between two
    ticks still shows (``0/3000 (0%), 4.0 s [starting: compiling]``)."""
    wait = DELAY
    while not stop.wait(max(wait, 0.05)):
        Reporter.update(reporter, reporter.done)
        last = reporter.last_line
        wait = INTERVAL if last is None else last + INTERVAL - time.perf_counter()


def _to_active(done) -> None:
    with _LOCK:
        reporter = _ACTIVE[-1] if _ACTIVE else None
    if reporter is not None:
        reporter.update(int(np.max(np.asarray(done))))


def tick(i, total: int):
    """Inside traced code: send the count ``i`` (1 … total) to the active reporter about
    ``TICKS`` times over ``total`` and at ``total``. Returns nothing; costs one ``cond``."""
    every = max(1, int(total) // TICKS)
    i = jnp.max(i)  # vectorized chains carry one count per chain, all equal

    def call():
        jax.debug.callback(_to_active, i)

    jax.lax.cond((i % every == 0) | (i >= total), call, lambda: None)


_SCANS: dict[str, Reporter] = {}  # one per ``desc``: the loop of that name now running


def _scan_report(desc: str, total: int, mode: bool | None, done, named: bool = False) -> None:
    done = int(np.max(np.asarray(done)))  # vmapped or sharded loops may call back once per member
    desc = loop_name(desc) if named else desc
    with _LOCK:
        rep = _SCANS.get(desc)
        if rep is None or done == 0 or rep.closed:
            if done != 0 and rep is not None and rep.closed:
                return  # a late call back of a loop already finished
            if rep is not None:
                rep.close()
            rep = _SCANS[desc] = Reporter(desc, total, enabled=mode)
    rep.update(done)
    if done >= total:
        rep.close()


def scan(body, init, xs, *, length: int, enabled: bool | None = False, desc: str = "fit",
         stride: int = 1, total: int | None = None, named: bool = False):
    """``lax.scan(body, init, xs)`` that reports its progress (see the module docstring).

    ``enabled``: True (report from the start), None (auto: after ``DELAY`` seconds) or False
    (a plain ``lax.scan``, no callbacks). When each step of the scan runs ``stride`` units of
    work (rounds of updates), the report counts units up to ``total`` (default
    ``length × stride``). ``named``: ``desc`` is a default that an active :func:`named`
    replaces.
    """
    mode = _mode(enabled)
    if mode is False:
        return jax.lax.scan(body, init, xs, length=length)
    total = length * stride if total is None else total
    # a call back costs ~0.1-0.3 ms on a busy CPU: at most TICKS of them, and at least
    # MIN_UNITS units of work between two (3 in a 3000-update MAP fit, under 1% of its time)
    every = min(length, max(1, max(total // TICKS, MIN_UNITS) // max(stride, 1)))
    chunks, rest = divmod(length, every)

    def report(done):
            jax.debug.callback(
            lambda d: _scan_report(desc, total, mode,
                                   min(int(np.max(np.asarray(d))) * stride, total), named), done,
            ordered=True)

    # ``chunks`` chunks of ``every`` steps and a call back after each: the inner loop is the
    # plain scan (a callback inside the hot loop slowed XLA's CPU loop by ~50%). Every call
    # back sits inside a loop: one outside could reach the host before those inside.
    def chunk(carry, x):
        c, inner = carry
        jax.lax.cond(c == 0, lambda: report(c), lambda: None)
        inner, out = jax.lax.scan(body, inner, x, length=every)
        report((c + 1) * every)
        return (c + 1, inner), out

    def split(a, lo, hi, shape):
        return a[lo:hi].reshape(*shape, *a.shape[1:])

    head = None if xs is None else jax.tree_util.tree_map(
        lambda a: split(a, 0, chunks * every, (chunks, every)), xs)
    (_, final), outs = jax.lax.scan(chunk, (0, init), head, length=chunks)
    outs = jax.tree_util.tree_map(lambda a: a.reshape(chunks * every, *a.shape[2:]), outs)
    if rest:
        def last(carry, x):
            j, inner = carry
            inner, out = body(inner, x)
            jax.lax.cond(j == rest - 1, lambda: report(j + 1 + chunks * every), lambda: None)
            return (j + 1, inner), out

        tail = None if xs is None else jax.tree_util.tree_map(
            lambda a: split(a, chunks * every, length, (rest,)), xs)
        (_, final), more = jax.lax.scan(last, (0, final), tail, length=rest)
        outs = jax.tree_util.tree_map(lambda a, b: jax.numpy.concatenate([a, b]), outs, more)
    return final, outs
