"""Models: pure ``init`` / ``apply`` pairs over a parameter pytree.

Every model's parameters are ``{"weights": [W₁, …], "biases": [b₁, …]}`` so that a prior
spec ``{"weights": …, "biases": …}`` addresses them directly. ``apply(params, X)`` maps
X of shape (N, D) to outputs of shape (N, n_outputs).

Linear-in-parameters models (:class:`Linear`, :class:`Polynomial`, :class:`Basis`) also
expose ``features(X)`` of shape (N, K): f(x) = features(x) · w + b, which is what the
closed-form :class:`bayesreg.Exact` posterior needs.

Examples
--------
>>> import jax, jax.numpy as jnp, bayesreg as br
>>> model = br.Polynomial(3)
>>> params = model.init(jax.random.key(0), n_features=1)
>>> model.apply(params, jnp.ones((5, 1))).shape
(5, 1)
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from bayesreg._validation import Setting, check_settings

ACTIVATIONS: dict[str, Callable] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "gelu": jax.nn.gelu,
    "silu": jax.nn.silu,
    "softplus": jax.nn.softplus,
    "elu": jax.nn.elu,
    "leaky_relu": jax.nn.leaky_relu,
}


class LinearInParams:
    """f(x) = features(x) · W + b. Parameters start at zero (the objective is convex)."""

    linear_in_params = True

    def features(self, X: jax.Array) -> jax.Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def num_features(self, n_features: int) -> int:
        """K, the number of basis functions for inputs with ``n_features`` columns."""
        shape = jax.eval_shape(self.features, jax.ShapeDtypeStruct((2, n_features), jnp.float32))
        if len(shape.shape) != 2 or shape.shape[0] != 2:
            raise ValueError(
                f"features must map X of shape (N, D) to (N, K); for N=2 it returned {shape.shape}"
            )
        return int(shape.shape[1])

    def init(self, key, n_features: int, n_outputs: int = 1, dtype=jnp.float32):
        del key  # deterministic: a convex problem needs no random start
        k = self.num_features(n_features)
        return {
            "weights": [jnp.zeros((k, n_outputs), dtype)],
            "biases": [jnp.zeros((n_outputs,), dtype)],
        }

    def apply(self, params, X, *, key=None):
        del key
        return self.features(X) @ params["weights"][0] + params["biases"][0]


@dataclasses.dataclass(frozen=True)
class Linear(LinearInParams):
    """f(x) = x · w + b.

    Examples
    --------
    >>> import jax.numpy as jnp, bayesreg as br
    >>> br.Linear().features(jnp.ones((4, 3))).shape
    (4, 3)
    """

    def features(self, X):
        return X

    def to_dict(self):
        return {"type": "Linear"}


@dataclasses.dataclass(frozen=True)
class Polynomial(LinearInParams):
    """Raw powers x, x², …, x^degree of each feature, plus a separate bias.

    For D features the K = D·degree columns are ordered feature-major:
    [x₁, x₁², …, x₁^d, x₂, …].

    Examples
    --------
    >>> import jax.numpy as jnp, bayesreg as br
    >>> br.Polynomial(3).features(jnp.array([[2.0]]))
    Array([[2., 4., 8.]], dtype=float32)
    """

    degree: int = 1

    def __post_init__(self):
        check_settings(self, {"degree": Setting("int", 1)})

    def features(self, X):
        powers = jnp.arange(1, self.degree + 1, dtype=X.dtype)
        return (X[:, :, None] ** powers).reshape(X.shape[0], -1)

    def to_dict(self):
        return {"type": "Polynomial", "degree": int(self.degree)}


@dataclasses.dataclass(frozen=True)
class Basis(LinearInParams):
    """A fixed feature map ``features(X (N, D)) -> (N, K)`` (written with jax.numpy), plus a bias.

    This is a network whose first layer is fixed, as in the book's Bayesian example with
    ReLU features max(0, x − k/K); :func:`relu_basis` builds that one.

    Examples
    --------
    >>> import jax.numpy as jnp, bayesreg as br
    >>> model = br.Basis(lambda X: jnp.concatenate([jnp.sin(X), jnp.cos(X)], axis=1))
    >>> model.num_features(1)
    2
    """

    features_fn: Callable = None  # type: ignore[assignment]
    name: str = ""

    def __init__(self, features: Callable, name: str | None = None):
        if not callable(features):
            raise TypeError(f"features must be a callable X (N, D) -> (N, K); got {features!r}")
        object.__setattr__(self, "features_fn", features)
        object.__setattr__(self, "name", name or getattr(features, "__name__", "features"))

    def features(self, X):
        return self.features_fn(X)

    def to_dict(self):
        return {"type": "Basis", "name": self.name}


def relu_basis(num: int, low: float = 0.0, high: float = 1.0) -> Basis:
    """The book's fixed first layer: features max(0, x − k/num) for k = 0 … num−1.

    Knots are spread evenly on [low, high). Needs one input feature.

    Examples
    --------
    >>> import jax.numpy as jnp, bayesreg as br
    >>> br.relu_basis(4).features(jnp.array([[0.6]])).round(2).tolist()
    [[0.6, 0.35, 0.1, 0.0]]
    """
    Setting("int", 1).check("num", num, example=10)
    Setting("real").check("low", low, example=0.0)
    Setting("real").check("high", high, example=1.0)
    knots = low + (high - low) * np.arange(num) / num

    def relu_features(X):
        return jax.nn.relu(X[:, :1] - jnp.asarray(knots, X.dtype))

    return Basis(relu_features, name=f"relu_basis({num}, {low}, {high})")


@dataclasses.dataclass(frozen=True)
class MLP:
    """Fully connected network: ``hidden`` layers with ``activation``, then a linear output.

    Weights start from He (ReLU-like) or Glorot (tanh, sigmoid) normal initialisation,
    biases at zero. ``dropout`` > 0 drops hidden units during MAP training (inverted
    scaling, so no rescale is needed at prediction); it then needs a ``key``.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, bayesreg as br
    >>> net = br.MLP(hidden=(8, 8))
    >>> params = net.init(jax.random.key(0), n_features=2)
    >>> [w.shape for w in params["weights"]]
    [(2, 8), (8, 8), (8, 1)]
    """

    hidden: tuple[int, ...] = (50,)
    activation: str | Callable = "relu"
    dropout: float = 0.0

    linear_in_params = False

    def __post_init__(self):
        hidden = (self.hidden,) if isinstance(self.hidden, int | np.integer) else tuple(self.hidden)
        if not hidden:
            raise ValueError(f"MLP hidden must hold at least one layer width, e.g. (50,); got "
                             f"{self.hidden!r}")
        for i, h in enumerate(hidden):
            Setting("int", 1).check(f"MLP hidden[{i}]", h)
        object.__setattr__(self, "hidden", tuple(int(h) for h in hidden))
        if not callable(self.activation) and self.activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(ACTIVATIONS)} or a callable; "
                f"got {self.activation!r}"
            )
        check_settings(self, {"dropout": Setting("real", 0.0, 1.0, high_open=True)})

    @property
    def act(self) -> Callable:
        return self.activation if callable(self.activation) else ACTIVATIONS[self.activation]

    def init(self, key, n_features: int, n_outputs: int = 1, dtype=jnp.float32):
        sizes = (n_features, *self.hidden, n_outputs)
        relu_like = self.activation in ("relu", "leaky_relu", "elu", "gelu", "silu")
        weights, biases = [], []
        for i, k in enumerate(jax.random.split(key, len(sizes) - 1)):
            fan_in, fan_out = sizes[i], sizes[i + 1]
            std = np.sqrt(2.0 / fan_in) if relu_like else np.sqrt(2.0 / (fan_in + fan_out))
            weights.append(std * jax.random.normal(k, (fan_in, fan_out), dtype))
            biases.append(jnp.zeros((fan_out,), dtype))
        return {"weights": weights, "biases": biases}

    def apply(self, params, X, *, key=None):
        """Forward pass; with ``dropout`` > 0 and a ``key``, hidden units are dropped."""
        if not (self.dropout > 0 and key is not None):
            return mlp_forward(self.act, params, X)
        keys = jax.random.split(key, len(params["weights"]))
        p = self.dropout

        def drop(i, h):  # the units of hidden layer i − 1, inverted scaling
            keep = jax.random.bernoulli(keys[i - 1], 1.0 - p, h.shape)
            return jnp.where(keep, h / (1.0 - p), 0.0)

        return mlp_forward(self.act, params, X, drop, first=1)

    def to_dict(self):
        act = self.activation if isinstance(self.activation, str) else "custom"
        return {"type": "MLP", "hidden": list(self.hidden), "activation": act,
                "dropout": float(self.dropout)}


def mlp_forward(act: Callable, params, X, layer_input: Callable | None = None, first: int = 0):
    """The MLP's forward pass, written once: hₗ₊₁ = act(hₗ Wₗ + bₗ), the last layer linear.

    ``layer_input(i, h)``, when given, transforms the input h of every layer i ≥ ``first``
    (dropout's masks: on the hidden units from ``first=1``, on the features too from 0).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> params = {"weights": [jnp.ones((2, 3)), jnp.ones((3, 1))],
    ...           "biases": [jnp.zeros(3), jnp.zeros(1)]}
    >>> mlp_forward(jnp.tanh, params, jnp.zeros((4, 2))).shape
    (4, 1)
    """
    h = X
    n_layers = len(params["weights"])
    for i, (w, b) in enumerate(zip(params["weights"], params["biases"], strict=True)):
        if layer_input is not None and i >= first:
            h = layer_input(i, h)
        h = h @ w + b
        if i < n_layers - 1:
            h = act(h)
    return h


def param_shapes(model, n_features: int, n_outputs: int, dtype=jnp.float32):
    """``model``'s parameter pytree for ``n_features`` inputs and ``n_outputs`` outputs, as
    ``jax.ShapeDtypeStruct`` leaves: ``model.init`` traced once per (model, sizes, dtype, x64) and
    kept (tracing it was 1.2 ms of a warm ``br.fit``'s 2.6 ms of set-up). Only a
    :class:`Linear`, :class:`Polynomial` or :class:`MLP` is kept: their shapes follow from
    their fields alone. Any other model is traced at every call — a :class:`Basis`'s shapes
    come from its user's function, which may read state that changes (and the cache would
    keep the function alive), a :class:`~bayesreg.FunctionModel` holds the user's arrays.
    Each call returns its own containers, so a caller may change them.

    Examples
    --------
    >>> [a.shape for a in param_shapes(MLP((3,)), 2, 1)["weights"]]
    [(2, 3), (3, 1)]
    """
    if type(model) in (Linear, Polynomial, MLP):  # not a subclass: its init may differ
        # x64 decides what a float64 request gives: in the key with the request
        kept = _traced_shapes(model, int(n_features), int(n_outputs), np.dtype(dtype),
                              bool(jax.config.jax_enable_x64))
        return jax.tree_util.tree_map(lambda leaf: leaf, kept)  # new lists and dicts
    return _traced_shapes.__wrapped__(model, n_features, n_outputs, dtype, None)


@functools.lru_cache(maxsize=64)
def _traced_shapes(model, n_features, n_outputs, dtype, x64):
    del x64  # a key only
    return jax.eval_shape(lambda: model.init(jax.random.key(0), n_features, n_outputs,
                                             dtype=dtype))


def model_from_dict(d: dict):
    """Rebuild a model from :meth:`to_dict` (a ``Basis`` needs its function back)."""
    kind = d["type"]
    if kind == "Linear":
        return Linear()
    if kind == "Polynomial":
        return Polynomial(int(d["degree"]))
    if kind == "MLP":
        if d["activation"] == "custom":
            raise ValueError("this MLP used a custom activation; pass model= to br.load")
        return MLP(tuple(d["hidden"]), d["activation"], d["dropout"])
    if kind == "Basis":
        if d["name"].startswith("relu_basis("):
            num, low, high = (float(v) for v in d["name"][len("relu_basis("):-1].split(","))
            return relu_basis(int(num), low, high)
        raise ValueError(
            f"this posterior used Basis({d['name']}): a function cannot be saved; "
            "pass model=br.Basis(your_function) to br.load"
        )
    if kind == "FunctionModel":
        raise ValueError(
            f"this posterior was fitted with a FunctionModel ({d.get('name')}): its apply "
            "function cannot be saved; pass model=<the same br.FunctionModel> to br.load")
    raise ValueError(f"unknown model type {kind!r}")
