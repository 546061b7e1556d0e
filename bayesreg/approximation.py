r"""The protocol between a method and :class:`~bayesreg.Posterior`.

Every method leaves parameter draws (a pytree with a leading axis of S draws). Some leave
more: an exact Gaussian over the coefficients (``Exact``), a Gaussian over the weights used
through the linearised network (``LaplaceApprox``), a low-rank covariance. That extra is an
**approximation** object implementing this protocol, carried by the posterior as
``post.approximation``; ``predict``, ``save`` and ``load`` call only these methods, so
nothing outside a method's file knows which method made a posterior.

An approximation is a frozen class with

* ``name`` (class attribute, str): the key under which ``save`` files it and ``load`` finds
  the class again (:func:`register` records it; a saved name nobody registered is a clear
  error at load);
* ``outputs(post, X, chunk_size) -> FunctionDraws``: draws (S, N, K) of the model's K
  outputs at the rows of X and, where the method has them in closed form, the exact mean
  and variance of the first output (then every summary of a Gaussian likelihood's
  predictive is analytic);
* ``arrays() -> dict[str, ndarray]`` and the class method
  ``from_arrays(arrays, context) -> approximation``: what ``save`` writes and ``load``
  reads back, checked against the model (:class:`LoadContext`).
* optionally ``mean_params(post) -> pytree``: the posterior mean of the parameters in
  closed form, shaped as one draw (``post.mean_params()`` averages the draws without it).

The likelihood then turns :class:`FunctionDraws` into the user's predictive
(``likelihood.predictive``). Without an approximation the draws are pushed through the model
(:func:`draw_outputs`).

Examples
--------
A method that leaves only draws needs nothing from this module. One that leaves a Gaussian
over the coefficients (here the closed form of ``Exact``) is read back through the protocol:

>>> import numpy as np, bayesreg as br
>>> post = br.fit(br.Linear(), np.arange(5.0), [0.1, 0.9, 2.2, 2.9, 4.1], method=br.Exact(),
...               likelihood=br.GaussianLikelihood(0.2))
>>> type(post.approximation).name, sorted(post.approximation.arrays())
('gaussian', ['chol_cov', 'mean'])
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any, NamedTuple, Protocol, runtime_checkable

import jax
import numpy as np

from bayesreg._pytree import leaf_names
from bayesreg._validation import check_int
from bayesreg.data.buckets import pad_rows, to_device

# Elements (draws × points × widest layer) one chunk of the predictive may hold at once.
PREDICT_BUDGET = 1 << 24


class FunctionDraws(NamedTuple):
    """What a posterior says about the model's outputs at N points.

    Attributes
    ----------
    outputs : ndarray (S, N, K)
        Draws of all K model outputs (K = 1 for homoscedastic regression, 2 with a
        heteroscedastic noise head, the number of classes for classification).
    moments : (mean (N,), var (N,)) or None
        The exact mean and variance of the first output over the posterior, where the
        method has them in closed form; the predictive is then Gaussian for a Gaussian
        likelihood.
    """

    outputs: np.ndarray
    moments: tuple[np.ndarray, np.ndarray] | None = None


@dataclasses.dataclass(frozen=True)
class LoadContext:
    """What ``from_arrays`` checks a saved approximation against.

    Attributes
    ----------
    model : the posterior's model
    params : the draws as loaded (their shapes are the model's, with a leading S)
    num_params : number of model parameters P (the length of ``ravel_pytree`` of one draw)
    """

    model: Any
    params: Any
    num_params: int


@runtime_checkable
class Approximation(Protocol):
    """What a method leaves beyond its draws (module docstring)."""

    name: str

    def outputs(self, post, X: np.ndarray, chunk_size: int | None) -> FunctionDraws: ...

    def arrays(self) -> dict[str, np.ndarray]: ...

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], context: LoadContext): ...


_REGISTRY: dict[str, type] = {}


def register(cls: type) -> type:
    """Class decorator: make ``cls`` loadable under ``cls.name``."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name or "/" in name:
        raise TypeError(f"{cls.__name__}.name must be a non-empty string without '/'; got "
                        f"{name!r}")
    for attr in ("outputs", "arrays", "from_arrays"):
        if not callable(getattr(cls, attr, None)):
            raise TypeError(f"{cls.__name__} must define {attr}() to be an approximation "
                            "(bayesreg.approximation)")
    if _REGISTRY.get(name, cls) is not cls:
        raise ValueError(f"an approximation named {name!r} is already registered "
                         f"({_REGISTRY[name].__name__})")
    _REGISTRY[name] = cls
    return cls


def lookup(name: str) -> type:
    """The approximation class registered under ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"the file holds an approximation {name!r} that no method of this "
                         f"version registers (known: {sorted(_REGISTRY)})") from None


def mode_arrays(mode, prefix: str = "mode") -> dict[str, np.ndarray]:
    """A parameter pytree without a draw axis (a mode) as named arrays for ``arrays()``."""
    return {f"{prefix}/{name}": np.asarray(leaf) for name, leaf in zip(
        leaf_names(mode), jax.tree_util.tree_leaves(mode), strict=True)}


def mode_from_arrays(arrays, context: LoadContext, what: str, prefix: str = "mode"):
    """The mode written by :func:`mode_arrays`, each leaf checked against the model's shape
    (``context.params`` without its draw axis); ``what`` names it in the error."""
    leaves, treedef = jax.tree_util.tree_flatten(context.params)
    mode = []
    for name, leaf in zip(leaf_names(context.params), leaves, strict=True):
        a = arrays[f"{prefix}/{name}"]
        if a.shape != leaf.shape[1:]:
            raise ValueError(f"{what} {name} has shape {a.shape}; the model needs "
                             f"{leaf.shape[1:]}")
        mode.append(a)
    return jax.tree_util.tree_unflatten(treedef, mode)


def draw_outputs(model, params, X: np.ndarray, chunk_size: int | None = None) -> np.ndarray:
    """All model outputs under every draw: (S, N, K), ``chunk_size`` draws at a time.

    Rows are padded to a bucketed count (:mod:`bayesreg.data.buckets`), so predictions on many
    batch sizes share a few compiled programs; by default a chunk of draws holds at most
    2²⁴ activations (draws × points × widest layer).
    """
    n, X = X.shape[0], pad_rows(X)
    size = _chunk(params, X.shape[0], chunk_size)
    out = _apply_draws(model, min(size, num_draws(params)), params, to_device(X))
    return np.asarray(out)[:, :n]


def num_draws(params) -> int:
    """S, the leading axis of a pytree of draws."""
    return int(jax.tree_util.tree_leaves(params)[0].shape[0])


def _chunk(params, n_points: int, chunk_size: int | None) -> int:
    if chunk_size is not None:
        return check_int("chunk_size", chunk_size)
    # (a FunctionModel may have no weight matrices: its widest array is then a vector)
    widest = max((max(w.shape[1:], default=1) for w in jax.tree_util.tree_leaves(params)),
                 default=1)
    return max(1, PREDICT_BUDGET // max(1, n_points * widest))


@partial(jax.jit, static_argnums=(0, 1))
def _apply_draws(model, batch_size, params, X):
    return jax.lax.map(lambda p: model.apply(p, X), params, batch_size=batch_size)
