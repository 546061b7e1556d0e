r"""Bring your own model: :class:`FunctionModel` puts a prior on any JAX function of a pytree.

A user's network is a pure function ``apply(params, X) -> (N,) or (N, K)`` and a pytree
``params`` of floating-point arrays (a dict, nested lists, an equinox module's arrays, a flax
``nnx.State``). :class:`FunctionModel` gives it the protocol the library's own models have
(``init``, ``apply``, ``to_dict``), so every method that assumes nothing more than a
differentiable function of its parameters fits it unchanged: ``MAP``, ``LaplaceApprox``
(all parameters), ``VI``, ``NUTS``, ``Ensemble``, ``SWAG``, ``SGLD``. ``Exact`` needs a model
linear in its parameters and ``MCDropout`` needs the hidden units of an ``MLP``, so they
refuse it; ``LaplaceApprox(subset="last_layer")`` needs a known last layer and refuses it too.

Weights and biases. A prior spec ``{"weights": prior, "biases": prior}`` addresses two groups.
The rule: **a leaf with at most one dimension (a scalar or a vector) is a bias, every other
leaf is a weight** — the rule optimisers use to leave biases and normalisation scales out of
weight decay, and the split of ``br.MLP``'s (D, H) matrices and (H,) vectors. ``biases=``
overrides it: a pytree of booleans shaped as ``params`` (True = bias) or a function
``(name, leaf) -> bool`` of the leaf's dotted path (``"layers.0.bias"``). A separate prior per
leaf is :meth:`FunctionModel.prior` of a pytree of priors shaped as ``params``.

Inside, the parameters are the library's ``{"weights": [...], "biases": [...]}``: the user's
leaves, in ``jax.tree_util`` order, sorted into the two lists; ``apply`` puts them back into
the user's structure before calling the user's function. Every method, the evidence and the
saved file therefore see the same layout as for a built-in model.

Starting points. ``init(key)`` returns the given ``params`` unless ``init=`` supplies a
function ``key -> params`` (a network's own initialiser). An ensemble needs different starts:
``Ensemble`` refuses a FunctionModel without ``init=`` unless its members differ otherwise
(``bagging`` or ``anchored``).

Persistence. ``post.save(path)`` stores the parameter draws and the structure (each leaf's
path, shape, dtype and group), not the function; ``br.load(path, model=fm)`` takes the same
model back and refuses one whose structure differs.

Examples
--------
>>> import jax.numpy as jnp, numpy as np, bayesreg as br
>>> def apply(p, X):
...     return jnp.tanh(X @ p["W1"] + p["b1"]) @ p["w2"] + p["b2"]
>>> params = {"W1": 0.5 * jnp.ones((1, 4)), "b1": jnp.linspace(-1, 1, 4),
...           "w2": 0.1 * jnp.ones(4), "b2": jnp.zeros(())}
>>> fm = br.FunctionModel(apply, params, biases={"W1": False, "b1": True,
...                                              "w2": False, "b2": True})
>>> X = np.linspace(-1, 1, 20); y = np.sin(2 * X)
>>> post = br.fit(fm, X, y, method=br.MAP(steps=300), prior=br.Gaussian(1.0),
...               likelihood=br.GaussianLikelihood(0.1))
>>> post.predict(X).mean.shape
(20,)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from bayesreg.priors import PARAM_GROUPS, Flat, Gaussian, Prior


def _path_name(path) -> str:
    """The dotted path of a leaf, e.g. ``layers.0.weight`` (``leaf`` for a bare array)."""
    return jax.tree_util.keystr(path, simple=True, separator=".") or "leaf"


class FunctionModel:
    """A user's JAX model ``apply(params, X)`` over a pytree ``params``, with a prior on it.

    Parameters
    ----------
    apply : callable
        ``apply(params, X) -> f``: X of shape (N, D) to outputs of shape (N,) (one output)
        or (N, K). Written with ``jax.numpy``; it is traced, differentiated and vmapped.
    params : pytree of floating-point arrays
        The parameters (their structure, shapes and starting values).
    biases : pytree of bool, callable or None
        Which leaves are biases (prior spec key ``"biases"``); the rest are weights. None: a
        leaf with ``ndim <= 1`` is a bias. A callable takes ``(name, leaf)``, ``name`` the
        leaf's dotted path.
    init : callable or None
        ``init(key) -> params`` (same structure and shapes): random starts for ensemble
        members and MultiSWAG. None: every start is ``params``.
    name : str or None
        Shown in reports and stored in saved files (default: ``apply.__name__``).

    Attributes
    ----------
    names : tuple of str
        Every leaf's dotted path, in ``jax.tree_util`` order.
    groups : tuple of str
        ``"weights"`` or ``"biases"`` for each leaf.

    Examples
    --------
    >>> import jax.numpy as jnp, bayesreg as br
    >>> fm = br.FunctionModel(lambda p, X: X @ p["w"] + p["b"],
    ...                       {"w": jnp.zeros((3, 1)), "b": jnp.zeros(1)})
    >>> fm.names, fm.groups
    (('b', 'w'), ('biases', 'weights'))
    """

    linear_in_params = False  # Exact's closed form needs features(X); a function has none
    # which of a function's leaves adds to its output is unknown: with a centred target
    # (``post.offset``) ``mean_params`` returns the parameters as fitted, predicting y − offset
    output_bias_last = False

    def __init__(self, apply: Callable, params, *, biases=None, init: Callable | None = None,
                 name: str | None = None):
        if not callable(apply):
            raise TypeError(f"apply must be a function apply(params, X) -> (N,) or (N, K); "
                            f"got {apply!r}")
        if init is not None and not callable(init):
            raise TypeError(f"init must be a function init(key) -> params, or None; got {init!r}")
        paths, treedef = jax.tree_util.tree_flatten_with_path(params)
        if not paths:
            raise ValueError("params must be a pytree holding at least one array; got "
                             f"{params!r}")
        names, leaves = [], []
        for path, leaf in paths:
            leaf_name = _path_name(path)
            arr = jnp.asarray(leaf) if not isinstance(leaf, jax.Array) else leaf
            if not jnp.issubdtype(arr.dtype, jnp.floating):
                raise TypeError(
                    f"params leaf {leaf_name!r} has dtype {arr.dtype}; every parameter must be "
                    "a floating-point array (keep integers and flags out of params, e.g. "
                    "equinox's eqx.partition(module, eqx.is_inexact_array))")
            if not np.all(np.isfinite(np.asarray(arr))):
                raise ValueError(f"params leaf {leaf_name!r} holds NaN or inf")
            names.append(leaf_name)
            leaves.append(arr)
        if len(set(names)) != len(names):  # e.g. keys "a.b" and ("a", "b")
            names = [f"{n}#{i}" for i, n in enumerate(names)]
        is_bias = _bias_flags(biases, params, treedef, names, leaves)
        self.apply_fn = apply
        self.init_fn = init
        self.treedef = treedef
        self.names = tuple(names)
        self.groups = tuple("biases" if b else "weights" for b in is_bias)
        self.shapes = tuple(tuple(int(s) for s in a.shape) for a in leaves)
        self.dtypes = tuple(str(a.dtype) for a in leaves)
        self.leaves = tuple(leaves)
        self.name = name or getattr(apply, "__name__", "apply")
        # where each of the user's leaves sits in {"weights": [...], "biases": [...]}
        count = {g: 0 for g in PARAM_GROUPS}
        slots = []
        for g in self.groups:
            slots.append((g, count[g]))
            count[g] += 1
        self.slots = tuple(slots)

    # -- the model protocol ------------------------------------------------------------------
    @property
    def params(self):
        """The parameters as given, in the user's structure."""
        return jax.tree_util.tree_unflatten(self.treedef, list(self.leaves))

    @property
    def same_start(self) -> bool:
        """True when every ``init(key)`` is the given ``params`` (no ``init=`` function)."""
        return self.init_fn is None

    def split(self, params) -> dict:
        """The user's pytree as ``{"weights": [...], "biases": [...]}`` (leaves in order).

        Examples
        --------
        >>> import jax.numpy as jnp, bayesreg as br
        >>> fm = br.FunctionModel(lambda p, X: X @ p[0] + p[1], [jnp.ones((2, 1)), jnp.ones(1)])
        >>> {g: [a.shape for a in v] for g, v in fm.split(fm.params).items()}
        {'weights': [(2, 1)], 'biases': [(1,)]}
        """
        leaves, treedef = jax.tree_util.tree_flatten(params)
        if treedef != self.treedef:
            raise ValueError(f"params have the structure {treedef}; this FunctionModel's is "
                             f"{self.treedef}")
        out = {g: [] for g in PARAM_GROUPS}
        for (g, _), leaf in zip(self.slots, leaves, strict=True):
            out[g].append(leaf)
        return out

    def merge(self, params: dict):
        """The inverse of :meth:`split`: the user's pytree from the two groups.

        Examples
        --------
        >>> import jax.numpy as jnp, bayesreg as br
        >>> fm = br.FunctionModel(lambda p, X: X @ p["w"], {"w": jnp.ones((2, 1))})
        >>> fm.merge({"weights": [jnp.zeros((2, 1))], "biases": []})["w"].shape
        (2, 1)
        """
        return jax.tree_util.tree_unflatten(self.treedef,
                                            [params[g][i] for g, i in self.slots])

    def n_outputs(self, n_features: int) -> int:
        """K, the number of outputs ``apply`` gives inputs with ``n_features`` columns (1 for
        an (N,) output); ``ValueError`` when it fails on them or returns another shape.

        Examples
        --------
        >>> import jax.numpy as jnp, bayesreg as br
        >>> br.FunctionModel(lambda p, X: X @ p["w"], {"w": jnp.ones((2, 3))}).n_outputs(2)
        3
        """
        X = jax.ShapeDtypeStruct((2, n_features), jnp.float32)
        try:
            out = jax.eval_shape(self.apply_fn, self.params, X)
        except Exception as err:  # the user's function: whatever it raises, say where
            raise ValueError(f"the FunctionModel's apply failed on X of shape (N, {n_features}):"
                             f" {type(err).__name__}: {err}") from err
        shape = getattr(out, "shape", None)
        if shape is None or len(shape) not in (1, 2) or shape[0] != 2:
            raise ValueError(f"apply(params, X) must return (N,) or (N, K); for X of shape "
                             f"(2, {n_features}) it returned "
                             f"{shape if shape is not None else type(out).__name__}")
        return 1 if len(shape) == 1 else int(shape[1])

    def init(self, key, n_features: int, n_outputs: int = 1, dtype=jnp.float32) -> dict:
        """Starting parameters ``{"weights": [...], "biases": [...]}`` in ``dtype``: the given
        ``params``, or ``init(key)`` when an ``init`` function was given.

        Examples
        --------
        >>> import jax, jax.numpy as jnp, bayesreg as br
        >>> fm = br.FunctionModel(lambda p, X: X @ p["w"], {"w": jnp.ones((2, 1))},
        ...                       init=lambda key: {"w": jax.random.normal(key, (2, 1))})
        >>> fm.init(jax.random.key(0), n_features=2)["weights"][0].shape
        (2, 1)
        """
        k = self.n_outputs(n_features)
        if k != n_outputs:
            raise ValueError(f"the FunctionModel's apply returns {k} output(s) per row; the "
                             f"targets and likelihood need {n_outputs}")
        if self.init_fn is None:
            tree = self.params
        else:
            tree = self.init_fn(key)
            self._check_like(tree, "init(key)")
        return jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), self.split(tree))

    def apply(self, params, X, *, key=None):
        """Outputs (N, K) of the user's ``apply`` at ``params`` in the two-group layout."""
        del key  # no masks: MCDropout refuses a FunctionModel
        out = self.apply_fn(self.merge(params), X)
        return out[:, None] if out.ndim == 1 else out

    def to_dict(self) -> dict:
        """JSON-able description: the structure of ``params`` (no function, no values).

        Examples
        --------
        >>> import jax.numpy as jnp, bayesreg as br
        >>> def f(p, X):
        ...     return X @ p["w"]
        >>> br.FunctionModel(f, {"w": jnp.ones((2, 1))}).to_dict()["leaves"]
        [{'name': 'w', 'shape': [2, 1], 'dtype': 'float32', 'group': 'weights'}]
        """
        return {"type": "FunctionModel", "name": str(self.name),
                "leaves": [{"name": n, "shape": list(s), "dtype": d, "group": g}
                           for n, s, d, g in zip(self.names, self.shapes, self.dtypes,
                                                 self.groups, strict=True)]}

    def check_structure(self, d: dict) -> None:
        """``ValueError`` unless ``d`` (a saved :meth:`to_dict`) describes these parameters:
        the same leaves, in order, with the same shapes and groups.

        Examples
        --------
        >>> import jax.numpy as jnp, bayesreg as br
        >>> small = br.FunctionModel(lambda p, X: X @ p["w"], {"w": jnp.ones((2, 1))})
        >>> wide = br.FunctionModel(lambda p, X: X @ p["w"], {"w": jnp.ones((3, 1))})
        >>> small.check_structure(wide.to_dict())
        Traceback (most recent call last):
        ...
        ValueError: the saved parameter 'w' has shape [3, 1]; model='s 'w' has [2, 1]: ...
        """
        saved = d.get("leaves")
        if not isinstance(saved, list) or not all(isinstance(e, dict) for e in saved):
            raise ValueError("its FunctionModel entry has no list of leaves")
        mine = self.to_dict()["leaves"]
        if len(saved) != len(mine):
            raise ValueError(f"it was saved from a FunctionModel with {len(saved)} parameter "
                             f"arrays; model= has {len(mine)} ({', '.join(self.names)})")
        for s, m in zip(saved, mine, strict=True):
            for field in ("name", "shape", "group"):
                if s.get(field) != m[field]:
                    raise ValueError(
                        f"the saved parameter {s.get('name')!r} has {field} {s.get(field)!r}; "
                        f"model='s {m['name']!r} has {m[field]!r}: pass the FunctionModel "
                        "the posterior was fitted with")

    def __repr__(self) -> str:
        n = sum(math.prod(s) for s in self.shapes)
        return f"FunctionModel({self.name}, {len(self.names)} arrays, {n} parameters)"

    def _check_like(self, tree, what: str) -> None:
        leaves, treedef = jax.tree_util.tree_flatten(tree)
        if treedef != self.treedef:
            raise ValueError(f"{what} returned the structure {treedef}; params have "
                             f"{self.treedef}")
        for name, a, shape in zip(self.names, leaves, self.shapes, strict=True):
            if tuple(np.shape(a)) != shape:
                raise ValueError(f"{what} returned {name!r} of shape {tuple(np.shape(a))}; "
                                 f"params have {shape}")

    # -- priors ------------------------------------------------------------------------------
    def prior(self, priors) -> dict:
        """A prior spec ``{"weights": ..., "biases": ...}`` from one prior per leaf.

        ``priors`` is a pytree shaped as ``params`` with a prior at every leaf: for a nested
        structure, ``jax.tree_util.tree_map`` of a function from a leaf to its prior over
        ``fm.params``. Within a group the priors must be of one kind (and share ``df`` and
        any hyperprior); their scales and locs become the layer-wise lists the library's
        priors take (one per array). Pass the result as ``br.fit(..., prior=...)``.

        Examples
        --------
        >>> import jax.numpy as jnp, bayesreg as br
        >>> fm = br.FunctionModel(lambda p, X: X @ p["w1"] @ p["w2"] + p["b"],
        ...                       {"w1": jnp.ones((2, 3)), "w2": jnp.ones((3, 1)),
        ...                        "b": jnp.zeros(1)})
        >>> spec = fm.prior({"w1": br.Gaussian(1.0), "w2": br.Gaussian(0.1), "b": br.Flat()})
        >>> spec["weights"].scale, type(spec["biases"]).__name__
        ([1.0, 0.1], 'Flat')
        """
        leaves, treedef = jax.tree_util.tree_flatten(
            priors, is_leaf=lambda x: isinstance(x, Prior))
        if treedef != jax.tree_util.tree_structure(
                jax.tree_util.tree_unflatten(self.treedef, [0] * len(self.names))):
            raise ValueError(f"priors must have the structure of params ({self.treedef}) with "
                             f"a prior at every leaf; got {treedef}")
        for name, p in zip(self.names, leaves, strict=True):
            if not isinstance(p, Prior):
                raise TypeError(f"the prior for {name!r} must be a bayesreg prior such as "
                                f"br.Gaussian(1.0); got {p!r}")
        spec = {}
        for g in PARAM_GROUPS:
            mine = [(n, p) for n, p, gg in zip(self.names, leaves, self.groups, strict=True)
                    if gg == g]
            spec[g] = _combine(g, mine)
        return spec

    # -- adapters ----------------------------------------------------------------------------
    @classmethod
    def from_equinox(cls, module, *, init: Callable | None = None, batched: bool = False,
                     biases=None, name: str | None = None) -> FunctionModel:
        """An equinox module as a FunctionModel: its floating-point arrays are the parameters.

        ``eqx.partition(module, eqx.is_inexact_array)`` splits the parameters from the rest
        (activation functions, integer fields), which stays fixed; ``apply`` rebuilds the
        module with ``eqx.combine``. Equinox layers take one example, so the module is
        ``jax.vmap``-ped over the rows of X unless ``batched=True`` (a module that takes
        (N, D) itself). ``init(key) -> module`` (e.g. the module's constructor) gives
        ensemble members their own random starts.

        Examples
        --------
        >>> import jax, bayesreg as br
        >>> eqx = __import__("pytest").importorskip("equinox")
        >>> net = eqx.nn.MLP(1, 1, 8, 1, activation=jax.numpy.tanh, key=jax.random.key(0))
        >>> fm = br.FunctionModel.from_equinox(net)
        >>> fm.groups
        ('weights', 'biases', 'weights', 'biases')
        """
        import equinox as eqx

        params, static = eqx.partition(module, eqx.is_inexact_array)

        def apply(p, X):
            net = eqx.combine(p, static)
            return net(X) if batched else jax.vmap(net)(X)

        def init_params(key):
            return eqx.partition(init(key), eqx.is_inexact_array)[0]

        return cls(apply, params, biases=biases, init=None if init is None else init_params,
                   name=name or type(module).__name__)

    @classmethod
    def from_flax(cls, module, *, init: Callable | None = None, biases=None,
                  name: str | None = None) -> FunctionModel:
        """A flax ``nnx`` module as a FunctionModel: its ``nnx.Param`` variables are the
        parameters.

        ``nnx.split(module, nnx.Param, ...)`` separates the parameters from the graph and
        every other state (batch statistics, RNG counters), which stays fixed at its value
        now (call ``module.eval()`` first for dropout or batch norm in inference mode);
        ``apply`` rebuilds the module with ``nnx.merge`` and calls it on X (N, D).
        ``init(key) -> module`` (e.g. ``lambda key: Net(nnx.Rngs(key))``) gives ensemble
        members their own random starts.

        Examples
        --------
        >>> import jax, bayesreg as br
        >>> nnx = __import__("pytest").importorskip("flax.nnx")
        >>> fm = br.FunctionModel.from_flax(nnx.Linear(2, 1, rngs=nnx.Rngs(0)))
        >>> fm.names, fm.groups
        (('bias.value', 'kernel.value'), ('biases', 'weights'))
        """
        from flax import nnx

        graphdef, params, rest = nnx.split(module, nnx.Param, ...)

        def apply(p, X):
            return nnx.merge(graphdef, p, rest)(X)

        def init_params(key):
            return nnx.split(init(key), nnx.Param, ...)[1]

        return cls(apply, params, biases=biases, init=None if init is None else init_params,
                   name=name or type(module).__name__)


def _bias_flags(biases, params, treedef, names, leaves) -> list[bool]:
    """One flag per leaf: True for a bias (the module docstring's rule, or ``biases``)."""
    if biases is None:
        return [a.ndim <= 1 for a in leaves]
    if callable(biases):
        flags = [biases(n, a) for n, a in zip(names, leaves, strict=True)]
    else:
        flags, bdef = jax.tree_util.tree_flatten(biases)
        if bdef != treedef:
            raise ValueError(f"biases must be a pytree of booleans with the structure of params "
                             f"({treedef}); got {bdef}")
    bad = [n for n, f in zip(names, flags, strict=True) if not isinstance(f, bool | np.bool_)]
    if bad:
        raise TypeError(f"biases must give True or False for every leaf; got something else "
                        f"for {bad[0]!r}")
    return [bool(f) for f in flags]


def _combine(group: str, named: list[tuple[str, Prior]]) -> Prior:
    """One prior over a group's list of arrays from one prior per array (module docs)."""
    if not named:  # no arrays in this group: the prior touches nothing
        return Gaussian(1.0)
    priors = [p for _, p in named]
    kinds = {type(p) for p in priors}
    if len(kinds) > 1:
        raise ValueError(
            f"the {group} ({', '.join(n for n, _ in named)}) have priors of different kinds "
            f"({', '.join(sorted(k.__name__ for k in kinds))}); one group takes one kind of "
            "prior with a scale per array: change the rule with FunctionModel(biases=...)")
    first = priors[0]
    if isinstance(first, Flat) or len(priors) == 1:
        return first
    fields = {f.name: [getattr(p, f.name) for p in priors] for f in dataclasses.fields(first)}
    changes = {}
    for field, values in fields.items():
        if field not in ("scale", "loc"):
            if any(v != values[0] for v in values):
                raise ValueError(f"the {group}' {type(first).__name__} priors differ in {field} "
                                 f"({values}); within a group only scale and loc may differ")
            continue
        if all(isinstance(v, float | int) for v in values):
            if len(set(values)) > 1:
                changes[field] = [float(v) for v in values]
        elif all(v is values[0] for v in values):
            continue  # one shared hyperprior or loc object
        elif field == "loc":
            changes["loc"] = [jnp.asarray(v) for v in values]
        else:
            raise ValueError(f"the {group}' priors have different hyperprior scales; a group "
                             "shares one hyperprior")
    return type(first)(**{**{f: getattr(first, f) for f in fields}, **changes})
