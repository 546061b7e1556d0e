"""``br.fit``: one entry point for every method."""

from __future__ import annotations

import contextlib

import jax
import numpy as np

from bayesreg import _progress
from bayesreg._random import key_from_seed
from bayesreg._scales import check_scales
from bayesreg._units import scaled_prior, target_scale
from bayesreg._validation import check_bool, check_columns, check_dense, check_X, check_y
from bayesreg.data import stream as _stream
from bayesreg.fitted import to_posterior
from bayesreg.likelihoods import GaussianLikelihood, is_multitask
from bayesreg.methods.map import MAP
from bayesreg.models import param_shapes
from bayesreg.priors import Gaussian, as_prior_spec, check_prior_shapes
from bayesreg.problem import Problem


def fit(model, X, y, method=None, prior=None, likelihood=None, seed: int = 0,
        dtype: str = "float32", center: bool = True, standardize: bool = False):
    """Fit ``model`` to (X, y) with ``method`` under ``prior`` and ``likelihood``.

    Parameters
    ----------
    model : Linear, Polynomial, Basis or MLP
    X : array (N, D) or (N,), or an array-like read by chunks
        Inputs; a 1-D X is one feature. A NumPy memmap (``np.load(path, mmap_mode="r")``)
        or any array-like with ``shape``, ``dtype`` and row slicing (h5py, zarr) is not
        read whole: it is validated chunk by chunk, mini-batch MAP
        (``br.MAP(batch_size=...)``) and an ``Ensemble`` of such members stream it with
        prefetching, ``Exact`` factorises it chunk by chunk, and methods that need
        every row at once read it into memory up to 256 MiB and refuse it above
        (:mod:`bayesreg.data.stream`; the docs' "Data larger than memory" page). The posterior
        keeps a reference to it as ``X_train``, not a copy.
    y : array (N,) or (N, 1), or (N, T) for T tasks
        Targets (class labels for Bernoulli / Categorical). A memmap y is read into
        memory chunk by chunk (one number a row). Y (N, T) with T >= 2 (Gaussian likelihood,
        X in memory) fits one network with T outputs, one σ per task (:doc:`multitask`);
        missing labels are the masked entries of a ``np.ma.masked_array(Y, mask)`` and
        count nothing in the likelihood (NaN stays an error).
    method : MAP, Exact, ... , default ``br.MAP()``
    prior : Prior or {"weights": Prior, "biases": Prior}, default ``br.Gaussian(1.0)``
    likelihood : default ``br.GaussianLikelihood()`` (noise learned)
    seed : int
        Seeds every random choice (initialisation, batches, draws): same seed, same numbers.
        Any integer >= 0; seeds of 2³² and above use every bit
        (:func:`bayesreg._random.key_from_seed`), so ``seed=2**64`` is a seed of its own.
    dtype : {"float32", "float64"}
        Working precision. "float64" runs the fit (and later predictions of the posterior)
        with JAX's 64-bit mode enabled for those calls only; "float32" runs the fit with it
        disabled, even where the user switched it on globally. The numbers change by
        rounding, nothing else.
    center : bool
        Regression only: fit y − ȳ and add ȳ back to every prediction (``post.offset``: a
        float, or the (T,) means of each task's observed labels for Y (N, T)), so
        the prior on the output bias is about the offset from the targets' mean and a raw
        target's intercept is not shrunk towards 0 — as scikit-learn's ``Ridge`` leaves its
        intercept unpenalised (with centred X columns MAP under a Gaussian prior equals
        ``Ridge(alpha=λ)`` exactly). ``False``: the prior on the output bias is centred at 0
        in the units of y, as written.
    standardize : bool
        Fit the centred target in standard units, (y − ȳ)/s with s its standard deviation
        (``post.scale``), and map every result back to the units of y
        (:mod:`bayesreg._units`): the same posterior, on numbers of order one. It needs
        ``center=True``, a homoscedastic Gaussian likelihood, a built-in model and a
        zero-centred Gaussian or Flat prior (or the prior left out). Optimiser settings
        (``lr``, SGLD's ``step_size``) are then those of the standardised problem. With the
        defaults, a network on a target whose std is far from 1 (100, or 0.01) trains to a
        constant: ``br.fit`` warns when the learned prior scales hit their clip.

    Returns
    -------
    Posterior

    Examples
    --------
    >>> import numpy as np, bayesreg as br
    >>> X = np.linspace(0, 1, 15); y = np.exp(np.sin(2 * np.pi * X))
    >>> post = br.fit(br.Polynomial(3), X, y, method=br.Exact(), prior=br.Gaussian(10.0))
    >>> post.predict(X).mean.shape
    (15,)
    """
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64'; got {dtype!r}")
    # the working precision decides JAX's 64-bit mode for the fit, whatever the global flag:
    # a float32 fit under jax_enable_x64 would otherwise mix float64 data and constants with
    # float32 parameters (L-BFGS: "cond branches must have equal output types")
    with jax.enable_x64(dtype == "float64"):
        return _fit(model, X, y, method, prior, likelihood, seed, dtype, center, standardize)


def _fit(model, X, y, method, prior, likelihood, seed, dtype, center=True, standardize=False):
    method = MAP() if method is None else method
    for name, value in (("method", method), ("model", model), ("likelihood", likelihood)):
        if isinstance(value, type):  # br.MAP instead of br.MAP()
            raise TypeError(f"{name} must be an instance, e.g. {name}=br.{value.__name__}(); got "
                            f"the class br.{value.__name__}")
    if not all(callable(getattr(method, a, None))
               for a in ("fit", "supports", "to_dict", "why_not_streamed")):
        raise TypeError(f"method must be a bayesreg method such as br.MAP() or br.Exact(); "
                        f"got {type(method).__name__}")
    if not (hasattr(model, "init") and hasattr(model, "apply")):
        raise TypeError(f"model must be a bayesreg model such as br.Linear() or br.MLP(); "
                        f"got {type(model).__name__}")
    if isinstance(prior, str):
        raise TypeError(f"prior must be a bayesreg prior such as br.Gaussian(1.0), br.Laplace(1.0) "
                        f"or br.Flat(), not a string; got {prior!r}")
    spec = as_prior_spec(Gaussian(1.0) if prior is None else prior)
    likelihood = GaussianLikelihood() if likelihood is None else likelihood
    if not all(hasattr(likelihood, a) for a in ("check_targets", "resolved", "log_prob")):
        raise TypeError(
            "likelihood must be a bayesreg likelihood such as br.GaussianLikelihood(), "
            "br.GaussianLikelihood(noise=0.1), br.Bernoulli() or br.Categorical(); got "
            f"{likelihood!r} ({type(likelihood).__name__})")
    # float64 inputs stay float64 on the host (Exact's algebra uses them); JAX computations
    # take them in the working dtype
    check_dense(X, "X")
    check_dense(y, "y")
    if is_multitask(y) or np.ma.isMaskedArray(y):
        x_stats = None
        X = check_X(X, "X")
        y = _check_tasks(y, X, likelihood, method)
    elif _stream.is_lazy(X):  # a memmap or other array-like: checked, and maybe kept, lazily
        check_columns(X.shape, "X")
        X, x_stats = _stream.check_X_stream(X, "X")
        y = (_stream.check_y_stream(y, X.shape[0], targets=likelihood.check_targets)
             if _stream.is_lazy(y) else likelihood.check_targets(check_y(y, X.shape[0])))
    else:
        x_stats = None
        X = check_X(X, "X")
        y = likelihood.check_targets(check_y(y, X.shape[0]))
    if dtype == "float64":
        X = X.astype(np.float64) if x_stats is None else X
        y = y.astype(np.float64) if y.dtype.kind == "f" else y
    check_scales(X, y, dtype, x_stats)
    if x_stats is not None:
        X = _streamed_or_loaded(X, method, likelihood, dtype)
    likelihood = likelihood.resolved(y)
    key = key_from_seed(seed)
    check_bool("center", center)
    check_bool("standardize", standardize)
    offset = float(np.mean(y, dtype=np.float64)) if center and likelihood.kind == "regression" \
        else 0.0
    if y.ndim == 2:  # T tasks: the mean of each task's observed labels (NaN: missing)
        offset = np.nanmean(y, axis=0, dtype=np.float64) if center else np.zeros(y.shape[1])
    if np.any(offset):
        y = (y.astype(np.float64) - offset).astype(y.dtype if y.dtype.kind == "f" else np.float64)
    shapes = param_shapes(model, X.shape[1], likelihood.n_outputs(y), dtype)
    # every method sees the prior's arrays against the parameters they centre or scale (MAP
    # used to broadcast a (3,) loc over (3, 1) weights to 9 differences, silently)
    check_prior_shapes(spec, shapes)
    # the centred target in standard units, every result mapped back (bayesreg._units)
    layers = len(shapes["weights"]) if isinstance(shapes, dict) and "weights" in shapes else 0
    scale = 1.0
    if standardize:
        scale, why_not = target_scale(y, model, likelihood, spec, layers, center)
        if why_not:
            raise ValueError(f"standardize=True cannot fit this target in standard units: "
                             f"{why_not}")
    fit_likelihood, fit_spec = likelihood, spec
    if scale != 1.0:
        y = (y / scale).astype(y.dtype)
        fit_likelihood = likelihood.rescaled(1.0 / scale)
        fit_spec = scaled_prior(spec, 1.0 / scale, layers)
    problem = Problem(model=model, likelihood=fit_likelihood, prior=fit_spec, X=X, y=y,
                      key=key, dtype=dtype, learn_prior=prior is None, offset=offset,
                      scale=scale)
    # the shared loop reports progress under the method's name ("Ensemble: 1200/3000 …"),
    # MAP's own fits as "MAP (adam)"
    with contextlib.nullcontext() if isinstance(method, MAP) else _progress.named(
            type(method).__name__):
        return to_posterior(method.fit(problem), problem, method, likelihood=likelihood,
                            prior=spec)


def _check_tasks(y, X, likelihood, method) -> np.ndarray:
    """Targets Y (N, T) of T tasks as a float array with NaN at the missing (masked) labels;
    ``ValueError`` for anything a multi-task fit cannot take."""
    masked = np.ma.isMaskedArray(y)
    data, missing = (np.ma.getdata(y), np.ma.getmaskarray(y)) if masked else (y, None)
    shape = np.shape(data)
    if len(shape) != 2 or shape[1] < 2:
        raise ValueError(f"y as a masked array must have shape (N, T) with T >= 2 tasks (missing "
                         f"labels of a single target: drop those rows); got shape {shape}")
    if not isinstance(likelihood, GaussianLikelihood) or likelihood.heteroscedastic:
        raise ValueError(f"y of shape {shape} holds {shape[1]} regression tasks, which need "
                         f"likelihood=br.GaussianLikelihood(...); got {likelihood!r}")
    if not (getattr(method, "supports_tasks", None) and method.supports_tasks()):
        raise ValueError(
            f"{type(method).__name__} does not fit several tasks (y of shape {shape}); "
            "br.MAP, br.Ensemble, br.LaplaceApprox, br.VI and br.NUTS do, or fit "
            "each task's column on its own")
    if _stream.is_lazy(data):
        data = np.asarray(data)
    Y = check_X(np.where(missing, 0.0, data) if masked else data, "y").astype(
        np.float64 if np.asarray(data).dtype == np.float64 else np.float32)
    if Y.shape[0] != X.shape[0]:
        raise ValueError(f"y has {Y.shape[0]} rows but X has {X.shape[0]}; expected shape "
                         f"({X.shape[0]}, {Y.shape[1]})")
    if masked:
        Y[missing] = np.nan
        empty = np.flatnonzero(missing.all(axis=0))
        if empty.size:
            raise ValueError(f"y's tasks {empty.tolist()} have no label (every entry masked); "
                             "each task needs at least one")
    likelihood.n_outputs(Y)  # a given noise of the wrong length is refused here
    return Y


def _streamed_or_loaded(X, method, likelihood, dtype):
    """A lazily read X as it is, for a method that streams it
    (``method.why_not_streamed(n, likelihood)`` is None); read into memory otherwise, up to
    ``bayesreg.data.stream.MATERIALIZE_LIMIT`` bytes, or refused with the method's reason."""
    why = method.why_not_streamed(X.shape[0], likelihood)
    if why is None:
        return X
    wide = dtype == "float64" or X.dtype == np.float64  # as check_X keeps it in memory
    return check_X(_stream.materialize(X, np.float64 if wide else np.float32, why), "X")
