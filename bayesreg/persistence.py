"""Saving and loading a :class:`~bayesreg.Posterior`: arrays in an ``.npz``, the rest as JSON.

No pickle, in either direction: NumPy refuses object arrays when loading by default, and
the metadata is JSON stored as a byte array.

A save (:mod:`bayesreg.archive`) is atomic. A load checks every field against the model
it describes (array shapes, dtypes, finiteness, layer and chain counts) and raises
``ValueError("not a bayesreg posterior file: ...")`` for anything else, so a damaged or
foreign file fails at ``load``, not later inside ``predict``.
"""

from __future__ import annotations

import json
import math
import zipfile

import jax
import jax.numpy as jnp
import numpy as np

from bayesreg.approximation import LoadContext, lookup
from bayesreg.archive import DTYPES, FORMAT_VERSION
from bayesreg.likelihoods import likelihood_from_dict
from bayesreg.methods import DRAWS_KIND_BEFORE_FORMAT_1
from bayesreg.models import model_from_dict
from bayesreg.posterior import POSTERIOR_SAMPLES, Posterior
from bayesreg.priors import PARAM_GROUPS, prior_from_dict

# Before the approximation protocol: where the two approximations were stored, and what
# the draws of methods that do not sample a posterior were (now ``draws_kind`` in meta).
LEGACY_PREFIXES = ("gaussian", "linearization")


def _read(path) -> tuple[dict, dict]:
    """(arrays, meta) of an archive, or ValueError naming what is wrong with the file."""
    try:
        data = np.load(path, allow_pickle=False)  # object arrays are refused
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise ValueError(f"not a bayesreg posterior file: {path} ({_reason(err)})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"not a bayesreg posterior file: {path} (a single .npy array, not "
                         "the .npz archive Posterior.save writes)")
    try:
        with data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as err:
        raise ValueError(f"not a bayesreg posterior file: {path} ({_reason(err)})") from None
    if "meta" not in arrays:
        raise ValueError(f"not a bayesreg posterior file: {path} (no 'meta' entry)")
    try:
        meta = json.loads(arrays.pop("meta").tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"not a bayesreg posterior file: {path} (its metadata is not JSON: "
                         f"{err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        got = meta.get("format") if isinstance(meta, dict) else meta
        raise ValueError(f"not a bayesreg posterior file: {path} (format {got!r}; this "
                         f"version reads format {FORMAT_VERSION})")
    return arrays, meta


def _reason(err: Exception) -> str:
    if "allow_pickle" in str(err):
        return "not an .npz archive"
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def load(path, *, model=None):
    """Read a posterior written by :meth:`Posterior.save` to the same ``path``.

    ``model`` is needed only for a ``Basis`` model (a function cannot be stored).

    Examples
    --------
    >>> import numpy as np, tempfile, os, bayesreg as br
    >>> post = br.fit(br.Linear(), np.arange(5.0), [0.1, 0.9, 2.2, 2.9, 4.1], method=br.Exact())
    >>> path = os.path.join(tempfile.mkdtemp(), "post.npz"); post.save(path)
    >>> np.allclose(br.load(path).predict(np.ones(1)).mean, post.predict(np.ones(1)).mean)
    True
    """
    arrays, meta = _read(path)
    try:
        return _build(arrays, meta, model, path)
    except ValueError as err:
        if str(err).startswith("not a bayesreg posterior file"):
            raise
        raise ValueError(f"not a bayesreg posterior file: {path} ({err})") from None
    except (KeyError, TypeError, AttributeError, IndexError) as err:
        raise ValueError(f"not a bayesreg posterior file: {path} (a field is missing or of "
                         f"the wrong type: {type(err).__name__} {err})") from None


def _build(arrays: dict, meta: dict, model, path):
    n_layers, chains, dtype = meta["n_layers"], meta["num_chains"], meta.get("dtype", "float32")
    if not isinstance(n_layers, int) or n_layers < 1:
        raise ValueError(f"n_layers must be an integer >= 1; got {n_layers!r}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}; got {dtype!r}")
    model = model if model is not None else model_from_dict(meta["model"])
    likelihood = likelihood_from_dict(meta["likelihood"])
    X, y = _numeric(arrays, "X_train", 2), _numeric(arrays, "y_train", 1)
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X_train has {X.shape[0]} rows but y_train {y.shape[0]}")
    params = {g: [_numeric(arrays, f"params/{g}_{i}") for i in range(n_layers)]
              for g in PARAM_GROUPS}
    extra = [k for k in arrays if k.startswith("params/")
             and k.split("/", 1)[1] not in {f"{g}_{i}" for g in PARAM_GROUPS
                                            for i in range(n_layers)}]
    if extra:
        raise ValueError(f"n_layers={n_layers} but the file holds more layers ({extra[0]})")
    draws = params["weights"][0].shape[0]
    if not isinstance(chains, int) or chains < 1 or draws % chains:
        raise ValueError(f"num_chains={chains!r} does not divide the {draws} draws")
    # the shapes the model gives these data, with a leading axis of S draws
    n_out = likelihood.n_outputs(y)
    expected = jax.eval_shape(lambda: model.init(jax.random.key(0), X.shape[1], n_out,
                                                 dtype=jnp.float32))
    for g in PARAM_GROUPS:
        if len(expected[g]) != n_layers:
            raise ValueError(f"the model has {len(expected[g])} layers, the file {n_layers}")
        for i, (a, e) in enumerate(zip(params[g], expected[g], strict=True)):
            if a.shape != (draws, *e.shape):
                raise ValueError(f"params {g}_{i} has shape {a.shape}; the model needs "
                                 f"{(draws, *e.shape)}")
    theta = {k.split("/", 1)[1]: _numeric(arrays, k) for k in arrays if k.startswith("theta/")}
    hyper = {k.split("/", 1)[1]: _numeric(arrays, k) for k in arrays if k.startswith("hyper/")}
    for name, a in {**theta, **hyper}.items():
        if a.shape[:1] != (draws,):
            raise ValueError(f"{name} has shape {a.shape}; expected ({draws}, ...)")
    prior = {}
    for group, d in meta["prior"].items():
        d = dict(d)
        if d.get("loc") == "pytree":
            d["loc"] = [arrays[f"prior_loc/{group}/{i}"]
                        for i in range(sum(k.startswith(f"prior_loc/{group}/") for k in arrays))]
        prior[group] = prior_from_dict(d)
    n_params = sum(int(np.prod(e.shape)) for g in PARAM_GROUPS for e in expected[g])
    name, stored = _approximation_arrays(arrays, meta)
    approximation = None
    if name is not None:
        stored = {k: _numeric(stored, k) for k in stored}
        approximation = lookup(name).from_arrays(stored, LoadContext(model, params, n_params))
    diagnostics = dict(meta["diagnostics"])
    for k, v in arrays.items():
        if not k.startswith("diagnostics/"):
            continue
        parts = k.split("/")[1:]
        if len(parts) == 1:
            diagnostics[parts[0]] = v
        else:  # a dict of named arrays
            diagnostics.setdefault(parts[0], {})[parts[1]] = v
    ev = meta["log_evidence"]
    return Posterior(
        model=model, likelihood=likelihood, prior=prior, method=str(meta["method"]),
        params=params, theta=theta, X_train=X, y_train=y, diagnostics=diagnostics,
        log_evidence=math.nan if ev is None else float(ev), num_chains=chains,
        config=meta["config"], hyper=hyper, dtype=dtype, approximation=approximation,
        point=meta.get("point", meta["config"].get("reduce", "mean")),
        draws_kind=meta.get("draws_kind", DRAWS_KIND_BEFORE_FORMAT_1.get(meta["method"],
                                                                POSTERIOR_SAMPLES)))


def _approximation_arrays(arrays: dict, meta: dict) -> tuple[str | None, dict]:
    """(registered name, its arrays without the prefix) of the file's approximation.

    Files of this format written before the approximation protocol stored an exact
    Gaussian under ``gaussian/`` and a linearisation under ``linearization/``; they load
    as the approximations registered under those names."""
    name = meta.get("approximation")
    if name is not None:
        prefix = "approximation/"
    else:
        legacy = [n for n in LEGACY_PREFIXES if any(k.startswith(f"{n}/") for k in arrays)]
        if not legacy:
            return None, {}
        name, prefix = legacy[0], f"{legacy[0]}/"
    if not isinstance(name, str):
        raise ValueError(f"approximation must be a name; got {name!r}")
    return name, {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def _numeric(arrays: dict, key: str, ndim: int | None = None) -> np.ndarray:
    """``arrays[key]``, checked to be a finite float (or integer label) array."""
    a = arrays[key]
    if a.dtype.kind not in "fiu":
        raise ValueError(f"{key} has dtype {a.dtype}; expected numbers")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{key} has {a.ndim} dimensions; expected {ndim}")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise ValueError(f"{key} holds NaN or inf")
    return a
