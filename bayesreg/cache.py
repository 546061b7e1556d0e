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

Examples
--------
>>> import os, tempfile
>>> where = enable_compilation_cache(os.path.join(tempfile.mkdtemp(), "jax"))
>>> os.path.basename(where)
'jax'
"""

from __future__ import annotations

import os
import shutil

import jax

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


def enable_compilation_cache(path: str | os.PathLike | None = None) -> str | None:
    """Keep compiled programs in ``path`` (default :func:`default_cache_dir`) and reuse them
    in later processes; returns the folder, or None when switched off. Call it before the
    first fit: programs compiled earlier in the process are not written."""
    where = default_cache_dir() if path is None else os.fspath(path)
    if where is None:
        return None
    os.makedirs(where, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", where)
    # JAX stores only programs that took ≥ 1 s to compile by default; ours take 0.05-2 s
    # each and a compare compiles dozens, so store them all
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return where


def clear_compilation_cache(path: str | os.PathLike | None = None) -> None:
    """Delete the cache folder (default :func:`default_cache_dir`), if it exists."""
    where = default_cache_dir() if path is None else os.fspath(path)
    if where is not None and os.path.isdir(where):
        shutil.rmtree(where)
