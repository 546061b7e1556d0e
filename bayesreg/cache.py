"""JAX's persistent compilation cache, for the command line and, when asked, for a script.

Every new Python process compiles each training loop and sampler again; on a 442-row table
a first ``bayesreg compare`` spends most of its time compiling. JAX can keep the compiled
programs on disk and reuse them in the next process. The command line does that by default;
a script turns it on with :func:`enable_compilation_cache`.

Where: ``$BAYESREG_COMPILATION_CACHE`` if set, else ``$XDG_CACHE_HOME/bayesreg/jax`` (by
default ``~/.cache/bayesreg/jax``). ``BAYESREG_COMPILATION_CACHE=off`` switches the command
line's cache off. To clear it, delete that folder (:func:`clear_compilation_cache`). A
program is stored whatever its compile time, and an entry is read back only by the same JAX
version, backend and compile options (JAX's own key), so a stale entry is never used. JAX
stores no program with host callbacks: a training loop that reports progress is compiled in
every process, one compiled while reports are silenced (``--quiet``, ``BAYESREG_PROGRESS=0``)
holds none and is read back.

The command line keeps one thing more: the training loops as JAX traced and lowered them
(``jax.export``, under ``traced/`` in the same folder). JAX traces a program again in every
process, cache or not: 1.3 s of a second ``bayesreg compare``. A program is read back
only for the same settings (the pickled static arguments), the same input structure, shapes
and dtypes, the same bayesreg source files and the same versions of JAX and the libraries
traced through (:func:`traced_call`); anything else traces as before. Scripts do not use it:
a user's own function pickles by name, so an edited body would read a stale program.

Examples
--------
>>> import os, tempfile
>>> where = enable_compilation_cache(os.path.join(tempfile.mkdtemp(), "jax"))
>>> os.path.basename(where)
'jax'
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import os
import pickle
import re
import shutil
import tempfile
import warnings

import jax
from jax import export

ENV = "BAYESREG_COMPILATION_CACHE"
OFF = ("off", "0", "false", "no", "")


def default_cache_dir() -> str | None:
    """The cache folder: ``$BAYESREG_COMPILATION_CACHE``, else under ``$XDG_CACHE_HOME``
    (``~/.cache``); None when the variable says "off"."""
    where = os.environ.get(ENV)
    if where is not None:
        return None if where.strip().lower() in OFF else os.path.expanduser(where)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "bayesreg", "jax")


_TRACED: str | None = None  # the folder of traced programs, when kept (the command line)
_PROGRAMS: dict = {}  # path -> the program read or exported in this process (None: not kept)
# what a traced training loop depends on beyond bayesreg's own source
_TRACED_THROUGH = ("jax", "jaxlib", "optax", "numpyro", "numpy", "ml_dtypes")
_FOLDER = re.compile("[0-9a-f]{32}")  # a fingerprint's folder


def enable_compilation_cache(path: str | os.PathLike | None = None) -> str | None:
    """Keep compiled programs in ``path`` (default :func:`default_cache_dir`) and reuse them
    in later processes; returns the folder, or None when switched off or when the folder
    cannot be made (a warning says which). Call it before the first fit: programs compiled
    earlier in the process are not written."""
    where = default_cache_dir() if path is None else os.fspath(path)
    if where is None:
        return None
    try:
        os.makedirs(where, exist_ok=True)
    except OSError as err:  # a file in the way, a folder that cannot be written
        warnings.warn(f"no compilation cache: {err}. Fix it: set {ENV} to a writable "
                      f"folder, or to 'off'", UserWarning, stacklevel=2)
        return None
    jax.config.update("jax_compilation_cache_dir", where)
    # JAX stores only programs that took ≥ 1 s to compile by default; ours take 0.05-2 s
    # each and a compare compiles dozens, so store them all
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return where


def clear_compilation_cache(path: str | os.PathLike | None = None) -> None:
    """Delete the cache folder (default :func:`default_cache_dir`), if it exists, with the
    traced programs in it."""
    where = default_cache_dir() if path is None else os.fspath(path)
    if where is not None and os.path.isdir(where):
        shutil.rmtree(where)
    _PROGRAMS.clear()


@contextlib.contextmanager
def traced_programs(where: str | os.PathLike | None):
    """Within the block, the training loops' traced programs are kept under ``where``/traced
    and read back (:func:`traced_call`): the command line's setting, for the command's
    run only. ``where`` None (the cache switched off), or a folder that cannot be made:
    nothing is kept."""
    global _TRACED
    before = _TRACED
    if where is not None and _fingerprint() is not None:
        # one folder per fingerprint; the folders of other source files or versions go
        # (only folders named as this module names them: nothing else there is touched)
        folder = os.path.join(os.fspath(where), "traced")
        try:
            os.makedirs(os.path.join(folder, _fingerprint()), exist_ok=True)
            for old in os.listdir(folder):
                if old != _fingerprint() and _FOLDER.fullmatch(old):
                    shutil.rmtree(os.path.join(folder, old), ignore_errors=True)
            _TRACED = os.path.join(folder, _fingerprint())
        except OSError:  # not writable, or a file in the way: traced in place
            pass
    try:
        yield
    finally:
        _TRACED = before


def traced_call(jitted, n_static: int, static_names, *args, **kwargs):
    """``jitted(*args, **kwargs)``, by the program an earlier process traced and lowered when
    the traced programs are kept (inside :func:`traced_programs`, on one device); else by
    ``jitted`` itself.

    ``jitted``'s first ``n_static`` positional arguments and its keyword arguments named in
    ``static_names`` are static. The program is keyed by ``jitted``'s module and name (a
    lambda or nested function has none that says which: traced in place), by the static
    arguments (pickled), by the structure (with the module of every node type), shapes and
    dtypes of the other arguments, by every JAX configuration flag as it stands at the call
    (precision, x64, the PRNG, …), and sits in the folder of :func:`_fingerprint`
    (bayesreg's source, the libraries' versions); it is stored by ``jax.export`` as a
    function of the flattened arguments. Settings that do
    not pickle (a lambda), a program ``jax.export`` refuses (host callbacks), outputs it
    cannot serialise, ``jax.disable_jit`` or JAX's checks fall back to ``jitted``, and a
    program that cannot be written is used in this process only. The numbers are
    ``jitted``'s: the same program.

    Examples
    --------
    >>> import os, tempfile, jax, jax.numpy as jnp
    >>> def scale(k, x):
    ...     return k * x
    >>> scaled = jax.jit(scale, static_argnums=0)
    >>> where = tempfile.mkdtemp()
    >>> with traced_programs(where):
    ...     float(traced_call(scaled, 1, (), 3, jnp.ones(())))
    3.0
    >>> [len(files) for _, _, files in os.walk(os.path.join(where, "traced"))][-1]  # for later
    1
    """
    if (_TRACED is None or jax.device_count() > 1 or jax.config.jax_disable_jit
            or jax.config.jax_enable_checks):
        return jitted(*args, **kwargs)
    statics = args[:n_static]
    static_kw = {k: kwargs[k] for k in static_names if k in kwargs}
    dynamic_kw = {k: v for k, v in kwargs.items() if k not in static_kw}
    leaves, treedef = jax.tree_util.tree_flatten((args[n_static:], dynamic_kw))
    key = _key(jitted, statics, static_kw, treedef, leaves)
    program = None
    if key is not None:
        path = os.path.join(_TRACED, key)
        if path not in _PROGRAMS:
            _PROGRAMS[path] = _read_or_export(path, jitted, statics, static_kw, treedef, leaves)
        program = _PROGRAMS[path]
    return jitted(*args, **kwargs) if program is None else program(*leaves)


def _key(jitted, statics, static_kw, treedef, leaves) -> str | None:
    """The stored program's name for this call; None where it must be traced in place: under
    a transformation (traced inputs), or for a function or setting that has no name that
    says which (a lambda, a nested function, a setting that does not pickle)."""
    if any(isinstance(x, jax.core.Tracer) for x in leaves):
        return None
    name = f"{getattr(jitted, '__module__', None)}.{getattr(jitted, '__qualname__', '<?>')}"
    if "<" in name:
        return None
    try:
        settings = pickle.dumps((name, statics, sorted(static_kw.items())), protocol=5)
    except Exception:  # pickle raises more than PicklingError (TypeError, AttributeError)
        return None
    avals = [(tuple(getattr(x, "shape", ())), str(getattr(x, "dtype", type(x).__name__)),
              getattr(getattr(x, "aval", None), "weak_type", None)) for x in leaves]
    return hashlib.sha256(b"|".join([settings, repr(_structure(treedef)).encode(),
                                     repr(avals).encode(), _flags().encode()])).hexdigest()


def _structure(treedef):
    """A pytree structure with the module and name of every node type and its auxiliary
    data (``str(treedef)`` names a type without its module)."""
    data = treedef.node_data()
    if data is None:
        return "*"
    kind, aux = data
    return (f"{kind.__module__}.{kind.__qualname__}", repr(aux),
            [_structure(child) for child in treedef.children()])


def _flags() -> str:
    """Every JAX configuration flag as it stands now, in this thread (a context manager's
    precision or x64 included)."""
    values = []
    for name in sorted(jax.config.values):
        try:
            values.append(f"{name}={getattr(jax.config, name)!r}")
        except AttributeError:  # a flag JAX reads only from its table
            values.append(f"{name}={jax.config.values[name]!r}")
    return ";".join(values)


def _read_or_export(path, jitted, statics, static_kw, treedef, leaves):
    """The traced program stored at ``path``, or ``jitted`` at these settings exported and
    stored there (written to a temporary file, then renamed: a reader never sees half a
    file); None when it cannot be exported or serialised."""
    try:
        with open(path, "rb") as f:
            exported = export.deserialize(bytearray(f.read()))
    except Exception:  # absent, or written by what the key does not see: export it again
        def flat(*xs):
            args, kwargs = jax.tree_util.tree_unflatten(treedef, xs)
            return jitted(*statics, *args, **static_kw, **kwargs)

        try:
            exported = export.export(jax.jit(flat))(*leaves)
            data = exported.serialize()
        except Exception:  # host callbacks, or an output that does not serialise
            return None
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".writing-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError:  # a full disk, a read-only folder: used in this process only
            if tmp is not None and os.path.exists(tmp):
                os.remove(tmp)
    return jax.jit(exported.call)


@functools.cache
def _fingerprint() -> str | None:
    """What a traced program depends on beyond its settings, inputs and JAX's flags:
    bayesreg's source files, the versions of bayesreg and of the libraries traced through,
    the backend and the device kind; None (nothing kept) when no source file is found (an
    install without ``.py`` files, a zip)."""
    digest = hashlib.sha256()
    root = os.path.dirname(os.path.abspath(__file__))
    sources = 0
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                sources += 1
                with open(os.path.join(folder, name), "rb") as f:
                    digest.update(os.path.relpath(os.path.join(folder, name), root).encode()
                                  + f.read())
    if not sources:
        return None
    for package in ("bayesreg", *_TRACED_THROUGH):
        try:
            digest.update(f"{package}={importlib.metadata.version(package)}".encode())
        except importlib.metadata.PackageNotFoundError:
            digest.update(f"{package}=none".encode())
    digest.update(f"{jax.default_backend()} {jax.devices()[0].device_kind}".encode())
    return digest.hexdigest()[:32]
