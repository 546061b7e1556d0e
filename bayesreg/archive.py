"""Writing a posterior to disk: plain arrays in an ``.npz``, the rest as JSON, atomically.

No pickle: the metadata is JSON stored as a byte array. A save writes the archive to a
temporary file in the target's directory, flushes and fsyncs it, then moves it over the
target with ``os.replace``, so a kill or a full disk mid-save leaves the previous file whole.
Reading it back, with every field checked, is :mod:`bayesreg.persistence`.

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
import tempfile

import jax
import numpy as np

from bayesreg._pytree import leaf_names
from bayesreg.priors import PARAM_GROUPS

FORMAT_VERSION = 1
DTYPES = ("float32", "float64")


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
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(prefix=".bayesreg-", suffix=".tmp",
                               dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
