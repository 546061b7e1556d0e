"""Writing a posterior to disk: plain arrays in an ``.npz``, the rest as JSON, atomically.

No pickle: the metadata is JSON stored as a byte array. A save writes the archive to a
temporary file ``.bayesreg-*.tmp`` in the target's directory, flushes and fsyncs it, gives
it the target's permission mode (or, for a new file, what ``open`` would: 0666 less the
umask), then moves it over the target with ``os.replace`` and fsyncs the directory, so a
kill or a full disk mid-save leaves the previous file whole. A ``path`` that is a symbolic
link is written through: its final target is replaced and the link stays. An exception
removes the temporary file; a process killed outright (SIGKILL, power loss) cannot, so every
save first removes the ``.bayesreg-*.tmp`` files of its user in its directory older than
``STALE_AFTER`` seconds. Reading it back, with every field checked, is
:mod:`bayesreg.persistence`.

Examples
--------
>>> import os, tempfile, numpy as np, bayesreg as br
>>> post = br.fit(br.Linear(), np.arange(5.0), [0.1, 0.9, 2.2, 2.9, 4.1], method=br.Exact())
>>> path = os.path.join(tempfile.mkdtemp(), "post.npz")
>>> save(post, path)
>>> sorted(np.load(path).files)[:2]
['X_train', 'approximation/chol_cov']
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import tempfile
import time

import jax
import numpy as np

from bayesreg._pytree import leaf_names
from bayesreg.priors import PARAM_GROUPS

FORMAT_VERSION = 1
DTYPES = ("float32", "float64")
TMP_PREFIX, TMP_SUFFIX = ".bayesreg-", ".tmp"
# a temporary file untouched this long is no save in progress (one writes continuously)
STALE_AFTER = 15 * 60


def save(post, path) -> None:
    """Write ``post`` to ``path`` (exactly that name) as an ``.npz`` archive, atomically."""
    arrays: dict[str, np.ndarray] = {"X_train": post.X_train, "y_train": post.y_train}
    for name, leaf in zip(leaf_names(post.params), jax.tree_util.tree_leaves(post.params),
                          strict=True):
        arrays[f"params/{name}"] = np.asarray(leaf)
    for name, leaf in post.theta.items():
        arrays[f"theta/{name}"] = np.asarray(leaf)
    for name, leaf in post.hyper.items():
        arrays[f"hyper/{name}"] = np.asarray(leaf)
    approximation = None
    if post.approximation is not None:
        approximation = type(post.approximation).name
        for name, a in post.approximation.arrays().items():
            arrays[f"approximation/{name}"] = np.asarray(a)
    diag_json = {}
    for k, v in post.diagnostics.items():
        if isinstance(v, np.ndarray):
            arrays[f"diagnostics/{k}"] = v
        elif isinstance(v, dict):  # one level of named arrays (prior_scales, l2_strength)
            for sub, a in v.items():
                arrays[f"diagnostics/{k}/{sub}"] = np.asarray(a)
        else:
            diag_json[k] = v.item() if isinstance(v, np.generic) else v
    prior_json = {}
    for group in PARAM_GROUPS:
        prior = post.prior[group]
        prior_json[group] = prior.to_dict()
        loc = getattr(prior, "loc", None)
        if isinstance(loc, list | tuple):
            for i, a in enumerate(loc):
                arrays[f"prior_loc/{group}/{i}"] = np.asarray(a)
    meta = {
        "format": FORMAT_VERSION, "model": post.model.to_dict(),
        "likelihood": post.likelihood.to_dict(), "prior": prior_json, "method": post.method,
        "n_layers": len(post.params["weights"]), "diagnostics": diag_json,
        "log_evidence": None if math.isnan(post.log_evidence) else post.log_evidence,
        "num_chains": post.num_chains, "config": post.config, "dtype": post.dtype,
        "approximation": approximation, "point": post.point, "draws_kind": post.draws_kind,
        "offset": np.asarray(post.offset, np.float64).tolist(),  # a float, or one per task
        "scale": float(post.scale),  # the target's standard units (bayesreg._units)
    }
    if len(post.params["biases"]) != meta["n_layers"]:  # a FunctionModel's groups may differ
        meta["n_biases"] = len(post.params["biases"])
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    target = os.path.realpath(os.fspath(path))  # through symbolic links to the file
    folder = os.path.dirname(target)
    remove_stale(folder)
    mode = _mode(target)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=TMP_SUFFIX, dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    with contextlib.suppress(OSError):  # the rename itself survives a power loss
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def remove_stale(folder: str, age: float = STALE_AFTER) -> list[str]:
    """Remove the temporary files a killed save left in ``folder``; return their names.

    Only regular files named ``.bayesreg-*.tmp``, owned by this user and unmodified for
    ``age`` seconds, are removed; anything else, and any error, is left alone.

    Examples
    --------
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> for name in (".bayesreg-old.tmp", ".bayesreg-new.tmp", "old.tmp"):
    ...     open(os.path.join(folder, name), "w").close()
    >>> os.utime(os.path.join(folder, ".bayesreg-old.tmp"), (0, 0))
    >>> os.utime(os.path.join(folder, "old.tmp"), (0, 0))
    >>> remove_stale(folder), sorted(os.listdir(folder))
    (['.bayesreg-old.tmp'], ['.bayesreg-new.tmp', 'old.tmp'])
    """
    removed = []
    uid = os.getuid() if hasattr(os, "getuid") else None
    now = time.time()
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            if not (entry.name.startswith(TMP_PREFIX) and entry.name.endswith(TMP_SUFFIX)):
                continue
            with contextlib.suppress(OSError):
                st = entry.stat(follow_symlinks=False)
                if (stat.S_ISREG(st.st_mode) and uid in (None, st.st_uid)
                        and now - st.st_mtime > age):
                    os.remove(entry.path)
                    removed.append(entry.name)
    return removed


def _mode(target: str) -> int:
    """The permission bits the saved file gets: the target's own, else 0666 less the umask."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    try:  # Linux reports it without changing it (os.umask would, for every thread)
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
