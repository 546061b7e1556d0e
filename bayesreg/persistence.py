"""Saving and loading a :class:`~bayesreg.Posterior`: arrays in an ``.npz``, the rest as JSON.

No pickle, in either direction: only plain numeric .npy entries are read, and the metadata
is JSON stored as a byte array.

A save (:mod:`bayesreg.archive`) is atomic. A load checks every field against the model
it describes (array shapes, dtypes, finiteness, layer and chain counts, a noise σ whose
square fits the posterior's dtype) and raises ``ValueError("not a bayesreg posterior file:
...")`` for anything else, so a damaged or foreign file fails at ``load``, not later inside
``predict``.

A hostile file is refused before it costs memory. Before any array is read, ``load``
checks the zip directory (only entries a posterior holds, each claiming at most
``MAX_EXPANSION`` times its compressed size, compressed sizes within the file's), every
entry's .npy header (plain numbers, a shape whose bytes are exactly the entry's size), the
metadata (at most ``MAX_META_BYTES``, nested at most ``MAX_DEPTH`` deep), the model's sizes
(no width, degree or knot count above the parameters the file holds, so ``relu_basis(10**9)``
is not built), the parameter shapes the model implies, and the total number of values
against what the model, the draw count and the training rows imply.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import zipfile

import jax
import numpy as np

from bayesreg._scales import OVERFLOW
from bayesreg.approximation import LoadContext, lookup
from bayesreg.archive import DTYPES, FORMAT_VERSION
from bayesreg.likelihoods import likelihood_from_dict
from bayesreg.methods import DRAWS_KIND_BEFORE_FORMAT_1
from bayesreg.models import model_from_dict, param_shapes
from bayesreg.posterior import POSTERIOR_SAMPLES, Posterior
from bayesreg.priors import PARAM_GROUPS, prior_from_dict

# Before the approximation protocol: where the two approximations were stored, and what
# the draws of methods that do not sample a posterior were (now ``draws_kind`` in meta).
LEGACY_PREFIXES = ("gaussian", "linearization")

# What a posterior file may hold (module docstring): the entries Posterior.save writes, now
# and in earlier versions of format 1; nothing else is decompressed.
ENTRY = re.compile(r"(meta|X_train|y_train|params/(weights|biases)_\d+|(theta|hyper|approximation"
                   r"|gaussian|linearization|diagnostics|prior_loc)(/[A-Za-z0-9_.\-]+){1,3})\.npy")
MAX_ENTRIES = 10_000
MAX_EXPANSION = 64  # uncompressed / compressed bytes of one entry (save stores: 1)
MAX_META_BYTES = 1 << 24
MAX_DEPTH = 64  # JSON nesting of the metadata (a nested prior adds 2 levels)
DIAGNOSTICS_ALLOWANCE = 1 << 24  # values of traces (a loss per step) beyond the draws' own
OPEN, CLOSE = np.frombuffer(b"[{", np.uint8), np.frombuffer(b"]}", np.uint8)


def _inspect(zf: zipfile.ZipFile, size: int) -> tuple[dict, dict]:
    """(headers {key: (shape, dtype)}, meta) of an archive, nothing but its metadata and the
    first bytes of each entry decompressed; ValueError for whatever breaks the limits."""
    infos = zf.infolist()
    if len(infos) > MAX_ENTRIES:
        raise ValueError(f"{len(infos)} entries; a posterior has at most {MAX_ENTRIES}")
    headers: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    packed = 0
    for info in infos:
        key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        if not ENTRY.fullmatch(info.filename):
            raise ValueError(f"an entry {info.filename!r} that no bayesreg posterior holds")
        if key in headers:
            raise ValueError(f"the entry {info.filename!r} appears twice")
        packed += info.compress_size
        # the sizes are the archive's own claims: held against the bytes really on disk,
        # they bound what decompressing can produce (Posterior.save stores, ratio 1)
        if packed > size or info.file_size > MAX_EXPANSION * info.compress_size + 4096:
            raise ValueError(f"the entry {info.filename!r} claims {info.file_size} bytes from "
                             f"{info.compress_size} compressed in a {size}-byte file")
        headers[key] = _header(zf, info)
    if "meta" not in headers:
        raise ValueError("no 'meta' entry")
    shape, dtype = headers.pop("meta")
    if len(shape) != 1 or dtype != np.uint8 or shape[0] > MAX_META_BYTES:
        raise ValueError(f"its metadata is {shape} of {dtype}; expected at most "
                         f"{MAX_META_BYTES} bytes of JSON")
    with zf.open("meta.npy") as fh:
        text = np.lib.format.read_array(fh, allow_pickle=False).tobytes()
    return headers, _json(text)


def _header(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from an entry's .npy header, its data unread; the entry's size must be
    exactly the header's plus shape × itemsize."""
    fmt = np.lib.format
    with zf.open(info) as fh:
        version = fmt.read_magic(fh)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"{info.filename} is .npy version {version}; expected 1.0 or 2.0")
        read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, dtype = read(fh)
        offset = fh.tell()
    if dtype.kind not in "fiub" or dtype.fields is not None or dtype.shape != ():
        raise ValueError(f"{info.filename} has dtype {dtype}; expected plain numbers")
    if any(n < 0 for n in shape) or offset + math.prod(shape) * dtype.itemsize != info.file_size:
        raise ValueError(f"{info.filename}'s header claims shape {shape} of {dtype}, "
                         f"{math.prod(shape) * dtype.itemsize} bytes; the entry holds "
                         f"{info.file_size - offset}")
    return tuple(shape), dtype


def _json(text: bytes) -> dict:
    """The metadata, its nesting checked before the parser recurses into it."""
    try:
        decoded = text.decode()
        # strings cannot nest: with them blanked out, brackets give the depth
        bare = np.frombuffer(re.sub(r'"(?:[^"\\]|\\.)*"', '""', decoded).encode(), np.uint8)
        steps = (np.isin(bare, OPEN).astype(np.int64) - np.isin(bare, CLOSE))
        depth = int(np.max(np.cumsum(steps), initial=0))
        if depth > MAX_DEPTH:
            raise ValueError(f"its metadata nests {depth} deep; at most {MAX_DEPTH}")
        meta = json.loads(decoded)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ValueError(f"its metadata is not JSON: {type(err).__name__}: {err}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        got = meta.get("format") if isinstance(meta, dict) else meta
        raise ValueError(f"format {got!r}; this version reads format {FORMAT_VERSION}")
    return meta


class ModelMismatch(ValueError):
    """The file is whole but ``model=`` is not the model it was saved from (or is missing
    where the file cannot rebuild its model: a FunctionModel's function is not stored)."""


def _check_model(meta: dict, model) -> None:
    """``ModelMismatch`` unless ``model`` fits a FunctionModel file (or None, another file)."""
    d = meta["model"]
    from_function = isinstance(d, dict) and d.get("type") == "FunctionModel"
    if from_function and model is None:
        raise ModelMismatch(
            f"it was saved from a FunctionModel ({d.get('name')}) and a function cannot be "
            "stored: pass the same model, br.load(path, model=fm)")
    if from_function and not callable(getattr(model, "check_structure", None)):
        raise ModelMismatch(f"it was saved from a FunctionModel; model= is a "
                            f"{type(model).__name__}")
    if from_function:
        try:
            model.check_structure(d)
        except ValueError as err:
            raise ModelMismatch(str(err)) from None
    elif model is not None and callable(getattr(model, "check_structure", None)):
        raise ModelMismatch(f"model= is a FunctionModel but the file was saved from "
                            f"{d.get('type') if isinstance(d, dict) else d}")


def _layer_counts(meta: dict) -> dict[str, int]:
    """How many arrays each parameter group holds: n_layers of each for the built-in models,
    any split (one may be empty) for a FunctionModel's leaves."""
    n_layers = meta["n_layers"]
    counts = {"weights": n_layers, "biases": meta.get("n_biases", n_layers)}
    function = isinstance(meta["model"], dict) and meta["model"].get("type") == "FunctionModel"
    least = 0 if function else 1
    for g, c in counts.items():
        if not isinstance(c, int) or isinstance(c, bool) or c < least:
            raise ValueError(f"the number of {g} arrays must be an integer >= {least}; got {c!r}")
    if sum(counts.values()) < 1:
        raise ValueError("the file describes no parameter arrays")
    return counts


def _check_sizes(headers: dict, meta: dict, model):
    """The model, built only once its sizes fit the file, with every parameter entry of the
    shape it implies, and every other entry within what the model, the draw count and the
    training rows imply: all before any array is read."""
    n_layers = meta["n_layers"]
    counts = _layer_counts(meta)
    if sum(counts.values()) > len(headers):
        raise ValueError(f"n_layers={n_layers} but the file holds {len(headers)} arrays")
    names = [f"params/{g}_{i}" for g in PARAM_GROUPS for i in range(counts[g])]
    missing = [k for k in names if k not in headers]
    if missing:
        raise ValueError(f"n_layers={n_layers} but the file has no {missing[0]}")
    if any(len(headers[k][0]) < 1 for k in names):
        raise ValueError("parameter arrays need a leading axis of draws")
    draws = headers[names[0]][0][0]
    per_draw = sum(math.prod(headers[k][0][1:]) for k in names)
    if model is None:
        for size in _model_sizes(meta["model"], n_layers):
            if not size <= per_draw:
                raise ValueError(f"its model ({meta['model']}) needs a size of {size:g}, more "
                                 f"than the {per_draw} parameters per draw the file holds")
        model = model_from_dict(meta["model"])
    (x_shape, _), (y_shape, _) = headers["X_train"], headers["y_train"]
    if len(x_shape) != 2 or len(y_shape) not in (1, 2) or x_shape[0] != y_shape[0]:
        raise ValueError(f"X_train {x_shape} and y_train {y_shape} are not (N, D) and (N,) "
                         "(or (N, T) for T tasks)")
    # outputs from the last bias (a Categorical may take its classes from y, still unread);
    # load checks them against y once it is read. A FunctionModel says it itself.
    n_out = (model.n_outputs(x_shape[1]) if callable(getattr(model, "check_structure", None))
             else headers[f"params/biases_{n_layers - 1}"][0][-1])
    expected = param_shapes(model, x_shape[1], n_out)
    for g in PARAM_GROUPS:
        if len(expected[g]) != counts[g]:
            raise ValueError(f"the model has {len(expected[g])} {g} arrays, the file "
                             f"{counts[g]}")
        for i, e in enumerate(expected[g]):
            if headers[f"params/{g}_{i}"][0] != (draws, *e.shape):
                raise ValueError(f"params {g}_{i} has shape {headers[f'params/{g}_{i}'][0]}; "
                                 f"the model needs {(draws, *e.shape)}")
    # draws and X/y, the parameters' own shapes; likelihood and prior hyperparameters per
    # draw; a covariance over the parameters; traces (a loss per step) within an allowance
    p = per_draw + 1
    implied = (x_shape[0] * (x_shape[1] + 1) + draws * (2 * p + 64) + 2 * p * p + 4 * p
               + 4 * draws * p + DIAGNOSTICS_ALLOWANCE)
    held = sum(math.prod(s) for s, _ in headers.values())
    if held > implied:
        raise ValueError(f"it holds {held} values; its model, {draws} draws and "
                         f"{x_shape[0]} training rows imply at most {implied}")
    return model


def _model_sizes(d: dict, n_layers: int) -> list[float]:
    """The sizes ``model_from_dict(d)`` would allocate or trace (knots, degree, widths)."""
    kind = d["type"]
    if kind == "Polynomial":
        return [float(d["degree"])]
    if kind == "MLP":
        if len(d["hidden"]) != n_layers - 1:
            raise ValueError(f"the MLP has {len(d['hidden']) + 1} layers, the file {n_layers}")
        return [float(h) for h in d["hidden"]]
    if kind == "Basis" and str(d["name"]).startswith("relu_basis("):
        return [float(str(d["name"])[len("relu_basis("):-1].split(",")[0])]
    return []


def _reason(err: Exception) -> str:
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def _open(path):
    """(zip archive, its size in bytes, the file to close or None) or ValueError; a missing
    file stays FileNotFoundError."""
    own = not hasattr(path, "read")  # else an open binary file, as np.load accepted
    if not own:
        fh = path
    else:
        try:
            fh = open(path, "rb")  # closed with the archive
        except FileNotFoundError:
            raise
        except OSError as err:
            raise ValueError(f"not a bayesreg posterior file: {path} ({_reason(err)})") from None
    try:
        start = fh.tell()
        size = fh.seek(0, os.SEEK_END) - start
        fh.seek(start)
        if fh.read(6) == b"\x93NUMPY":
            raise ValueError("a single .npy array, not the .npz archive Posterior.save writes")
        fh.seek(start)
        return zipfile.ZipFile(fh), size, fh if own else None
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zipfile.LargeZipFile) as err:
        if own:
            fh.close()
        reason = str(err) if isinstance(err, ValueError) else (
            f"not an .npz archive: {_reason(err)}")
        raise ValueError(f"not a bayesreg posterior file: {path} ({reason})") from None


def load(path, *, model=None):
    """Read a posterior written by :meth:`Posterior.save` to the same ``path``.

    ``model`` is needed only for a ``Basis`` model or a :class:`~bayesreg.FunctionModel`
    (a function cannot be stored). A FunctionModel file is checked against ``model``'s
    parameter structure (every leaf's path, shape and group) and refused with a
    ``ValueError`` when it differs or when ``model`` is missing.

    Examples
    --------
    >>> import numpy as np, tempfile, os, bayesreg as br
    >>> post = br.fit(br.Linear(), np.arange(5.0), [0.1, 0.9, 2.2, 2.9, 4.1], method=br.Exact())
    >>> path = os.path.join(tempfile.mkdtemp(), "post.npz"); post.save(path)
    >>> np.allclose(br.load(path).predict(np.ones(1)).mean, post.predict(np.ones(1)).mean)
    True
    """
    zf, size, fh = _open(path)
    try:
        with zf, contextlib.nullcontext() if fh is None else fh:
            headers, meta = _inspect(zf, size)
            _check_model(meta, model)
            model = _check_sizes(headers, meta, model)
            arrays = {}
            for key in headers:  # every size now checked: read them
                with zf.open(f"{key}.npy") as fh:
                    arrays[key] = np.lib.format.read_array(fh, allow_pickle=False)
        return _build(arrays, meta, model, path)
    except ModelMismatch as err:  # a whole file, the wrong (or no) model
        raise ModelMismatch(f"{path}: {err}") from None
    except ValueError as err:
        if str(err).startswith("not a bayesreg posterior file"):
            raise
        raise ValueError(f"not a bayesreg posterior file: {path} ({err})") from None
    except (KeyError, TypeError, AttributeError, IndexError) as err:
        raise ValueError(f"not a bayesreg posterior file: {path} (a field is missing or of "
                         f"the wrong type: {type(err).__name__} {err})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as err:  # damaged past the headers
        raise ValueError(f"not a bayesreg posterior file: {path} ({_reason(err)})") from None


def _build(arrays: dict, meta: dict, model, path):
    n_layers, chains, dtype = meta["n_layers"], meta["num_chains"], meta.get("dtype", "float32")
    counts = _layer_counts(meta)
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}; got {dtype!r}")
    likelihood = likelihood_from_dict(meta["likelihood"])
    X = _numeric(arrays, "X_train", 2)
    y = (_task_targets(arrays["y_train"]) if arrays["y_train"].ndim == 2
         else _numeric(arrays, "y_train", 1))
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X_train has {X.shape[0]} rows but y_train {y.shape[0]}")
    params = {g: [_numeric(arrays, f"params/{g}_{i}") for i in range(counts[g])]
              for g in PARAM_GROUPS}
    extra = [k for k in arrays if k.startswith("params/")
             and k.split("/", 1)[1] not in {f"{g}_{i}" for g in PARAM_GROUPS
                                            for i in range(counts[g])}]
    if extra:
        raise ValueError(f"n_layers={n_layers} but the file holds more layers ({extra[0]})")
    draws = jax.tree_util.tree_leaves(params)[0].shape[0]
    if not isinstance(chains, int) or chains < 1 or draws % chains:
        raise ValueError(f"num_chains={chains!r} does not divide the {draws} draws")
    # the shapes the model gives these data, with a leading axis of S draws
    n_out = likelihood.n_outputs(y)
    expected = param_shapes(model, X.shape[1], n_out)
    for g in PARAM_GROUPS:
        if len(expected[g]) != counts[g]:
            raise ValueError(f"the model has {len(expected[g])} {g} arrays, the file "
                             f"{counts[g]}")
        for i, (a, e) in enumerate(zip(params[g], expected[g], strict=True)):
            if a.shape != (draws, *e.shape):
                raise ValueError(f"params {g}_{i} has shape {a.shape}; the model needs "
                                 f"{(draws, *e.shape)}")
    theta = {k.split("/", 1)[1]: _numeric(arrays, k) for k in arrays if k.startswith("theta/")}
    hyper = {k.split("/", 1)[1]: _numeric(arrays, k) for k in arrays if k.startswith("hyper/")}
    for name, a in {**theta, **hyper}.items():
        if a.shape[:1] != (draws,):
            raise ValueError(f"{name} has shape {a.shape}; expected ({draws}, ...)")
    _check_noise(likelihood, theta, draws, dtype)
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
    offset = meta.get("offset", 0.0)  # files before centring: 0
    if isinstance(offset, list) and np.ndim(y) == 2 and len(offset) == y.shape[1] and all(
            isinstance(v, int | float) and math.isfinite(v) for v in offset):
        offset = np.asarray(offset, np.float64)  # one per task
    elif not isinstance(offset, int | float) or not math.isfinite(offset):
        raise ValueError(f"{path}: the target offset is not a finite number (or one per "
                         f"task of y_train): {offset!r}")
    scale = meta.get("scale", 1.0)  # files before standard units: 1
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not (
            math.isfinite(scale) and scale > 0):
        raise ValueError(f"{path}: the target scale is not a positive finite number: {scale!r}")
    return Posterior(
        model=model, likelihood=likelihood, prior=prior, method=str(meta["method"]),
        params=params, theta=theta, X_train=X, y_train=y, diagnostics=diagnostics,
        log_evidence=math.nan if ev is None else float(ev), num_chains=chains,
        config=meta["config"], hyper=hyper, dtype=dtype, approximation=approximation,
        point=meta.get("point", meta["config"].get("reduce", "mean")),
        draws_kind=meta.get("draws_kind", DRAWS_KIND_BEFORE_FORMAT_1.get(meta["method"],
                                                                POSTERIOR_SAMPLES)),
        offset=offset if isinstance(offset, np.ndarray) else float(offset), scale=float(scale))


def _check_noise(likelihood, theta: dict, draws: int, dtype: str) -> None:
    """A noise σ that is positive and whose square fits ``dtype`` (e^100 predicts std = inf)."""
    if getattr(likelihood, "kind", None) != "regression" or likelihood.heteroscedastic or (
            likelihood.learned_noise and "log_noise" not in theta):
        return
    with np.errstate(over="ignore"):
        sigma = likelihood.noise_draws(theta, draws)
    bad = ~((sigma > 0) & (sigma <= OVERFLOW[dtype]))
    if np.any(bad):
        where = ("theta/log_noise holds " + f"{float(theta['log_noise'][bad][0]):.4g}, so σ = "
                 if likelihood.learned_noise else "the likelihood's noise is σ = ")
        raise ValueError(f"{where}{float(sigma[bad][0]):.4g}: a noise outside (0, "
                         f"{OVERFLOW[dtype]:.0e}] would make σ² overflow {dtype} and the "
                         "predictive std inf")


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


def _task_targets(y) -> np.ndarray:
    """y_train (N, T) of T tasks: floats, NaN where a label is missing, no inf, every task
    with a label."""
    if y.dtype.kind != "f" or y.shape[1] < 2 or np.any(np.isinf(y)) or np.any(
            np.all(np.isnan(y), axis=0)):
        raise ValueError(f"y_train of shape {y.shape} ({y.dtype}) is not the targets of T >= 2 "
                         "tasks (finite floats, NaN for a missing label, each task labelled)")
    return y


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
