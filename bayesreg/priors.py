"""Priors over parameters: each one is also a regularizer.

Every prior has three faces that agree with each other:

* ``log_prob(params)`` — log p(φ), summed over every scalar of the pytree ``params``;
* ``penalty(params)`` — the regularizer g with λ·g(φ) = −log p(φ) + const
  (the constant drops out of every optimisation);
* ``to_numpyro()`` — the same density as a NumPyro distribution (for samplers).

A *prior spec* is one prior for every parameter, or a dict
``{"weights": prior, "biases": prior}``; a model's parameters are the pytree
``{"weights": [...], "biases": [...]}``, so each key takes its own prior.

``loc`` shifts a prior. A scalar ``loc`` centres every parameter on it; a pytree
``loc`` with the parameters' structure (e.g. pretrained weights) centres each
parameter on its own value: ``Gaussian(s, loc=φ₀)`` penalises ‖φ − φ₀‖²/(2s²), the
L2-SP regularizer of transfer learning.

``to_numpyro`` imports ``numpyro.distributions`` where it is called: 0.28 s after ``import
bayesreg`` (2 shared cores), paid only by the samplers and VI.

Examples
--------
>>> import jax.numpy as jnp, bayesreg as br
>>> prior = br.Gaussian(2.0)
>>> params = {"weights": [jnp.array([1.0, -1.0])], "biases": [jnp.array([0.0])]}
>>> float(prior.penalty(params))          # (1 + 1) / (2 * 2²)
0.25
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln

from bayesreg._pytree import _real_number_array, check_positive, pytree_dataclass

# NumPyro (~0.3 s to import) is imported inside ``_numpyro``: only the samplers need it, and
# ``import bayesreg`` should cost little more than ``import jax`` (tests/test_imports.py).

PARAM_GROUPS = ("weights", "biases")


def _is_tree(loc) -> bool:
    return isinstance(loc, dict | list | tuple)


def _check_scale(name: str, scale) -> None:
    """A scale is a positive number, a list of them (one per parameter array: a layer-wise
    prior), or a hyperprior (``HalfNormal``, ``HalfCauchy``)."""
    if isinstance(scale, list | tuple):
        for i, s in enumerate(scale):
            check_positive(f"{name}[{i}]", s)
        return
    if isinstance(scale, Prior):
        if not isinstance(scale, HalfNormal | HalfCauchy):
            raise ValueError(f"{name} as a prior must be br.HalfNormal or br.HalfCauchy "
                             f"(a distribution on positive numbers); got {type(scale).__name__}")
        return
    check_positive(name, scale)


def _check_loc(loc) -> None:
    """A loc is a real number, an array, or a pytree of arrays (e.g. pretrained weights)."""
    if loc is None:
        raise TypeError("loc must be a real number or a pytree of arrays; got None")
    for leaf in jax.tree_util.tree_leaves(loc):
        if isinstance(leaf, jax.core.Tracer):
            continue
        if not np.all(np.isfinite(_real_number_array("loc", leaf))):
            raise ValueError(f"loc must be finite; got {loc!r}")


class Prior:
    """Base class: subclasses define ``_logpdf(z)``, ``_penalty(z)`` on standardised z."""

    proper = True
    # a penalty smooth everywhere (Gaussian, Flat): a brisk Adam rate reaches its mode; an L1
    # kink or heavy tails make Adam's steps of about lr jitter the weights (Trainer.resolved)
    smooth = False

    def _centred(self, params):
        loc = getattr(self, "loc", 0.0)
        if _is_tree(loc):
            return jax.tree_util.tree_map(lambda p, m: p - m, params, loc)
        return jax.tree_util.tree_map(lambda p: p - loc, params)

    def _reduce(self, fn, params):
        leaves = jax.tree_util.tree_leaves(self._centred(params))
        scale = getattr(self, "scale", None)
        if isinstance(scale, list | tuple):
            # a layer-wise prior: one scale per parameter array, in the arrays' order
            if len(scale) != len(leaves):
                raise ValueError(f"a list of scales needs one scale per parameter array: got "
                                 f"{len(scale)} scales for {len(leaves)} arrays")
            name = fn.__name__
            return sum((jnp.sum(getattr(self.with_scale(s), name)(leaf))
                        for leaf, s in zip(leaves, scale, strict=True)), jnp.zeros(()))
        return sum((jnp.sum(fn(leaf)) for leaf in leaves), jnp.zeros(()))

    def log_prob(self, params) -> jax.Array:
        """log p(φ) summed over every scalar in ``params`` (a pytree of arrays)."""
        return self._reduce(self._logpdf, params)

    def penalty(self, params) -> jax.Array:
        """Regularizer −log p(φ) without its constant (0 at ``loc`` for every prior)."""
        return self._reduce(self._penalty, params)

    def to_numpyro(self):
        """The same density as a NumPyro distribution (a pytree of them for a pytree loc)."""
        loc = getattr(self, "loc", 0.0)
        if _is_tree(loc):
            return jax.tree_util.tree_map(self._numpyro, loc)
        return self._numpyro(loc)

    @property
    def hierarchical(self) -> bool:
        """True when the scale is itself a prior (sampled by NUTS and VI)."""
        return isinstance(getattr(self, "scale", None), Prior)

    def with_scale(self, scale) -> Prior:
        """This prior with a numeric scale (may be a tracer: no validation)."""
        return self.replace_unchecked(scale=scale)

    def replace_unchecked(self, **changes) -> Prior:
        """A copy with fields replaced, skipping validation (values may be tracers or
        stacked per ensemble member)."""
        new = object.__new__(type(self))
        for f in dataclasses.fields(self):
            object.__setattr__(new, f.name, changes.get(f.name, getattr(self, f.name)))
        return new

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (arrays in a pytree ``loc`` are reported by shape only)."""
        out: dict[str, Any] = {"type": type(self).__name__}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Prior):
                out[f.name] = v.to_dict()
            elif f.name == "scale" and isinstance(v, list | tuple):
                out[f.name] = [float(s) for s in v]  # a layer-wise prior's scales
            else:
                out[f.name] = "pytree" if _is_tree(v) else np.asarray(v).tolist()
        return out


@pytree_dataclass(("scale", "loc"))
@dataclasses.dataclass(frozen=True)
class Gaussian(Prior):
    """Normal prior N(loc, scale²) on every parameter; its penalty is L2 (ridge, weight decay).

    penalty(φ) = ‖φ − loc‖² / (2 scale²).  See :func:`bayesreg.l2_strength` for λ.

    Examples
    --------
    >>> import bayesreg as br
    >>> br.Gaussian(1.0).to_numpyro()
    <numpyro.distributions.continuous.Normal object at ...>
    """

    smooth = True

    scale: Any = 1.0
    loc: Any = 0.0

    def __post_init__(self):
        _check_scale("Gaussian scale", self.scale)
        _check_loc(self.loc)

    def _logpdf(self, z):
        s = self.scale
        # (z·(1/s))², not (z/s)²: with a traced s (the training loop's argument) XLA then
        # fuses the prior's gradient into the update instead of a kernel per array
        # (benchmarks/map_hot_loop.py, with the likelihood's r·(1/σ)). Not z²·(1/s²): its
        # gradient in s goes through s⁴, inf below s ~ 1e-10 in float32 (hierarchical priors)
        return -0.5 * jnp.square(z * (1.0 / s)) - jnp.log(s) - 0.5 * math.log(2 * math.pi)

    def _penalty(self, z):
        return 0.5 * (z / self.scale) ** 2

    def _numpyro(self, loc):
        import numpyro.distributions as dist

        return dist.Normal(loc, self.scale)


@pytree_dataclass(("scale", "loc"))
@dataclasses.dataclass(frozen=True)
class Laplace(Prior):
    """Laplace prior with density exp(−|φ − loc|/scale)/(2 scale); its penalty is L1 (lasso).

    penalty(φ) = ‖φ − loc‖₁ / scale.  See :func:`bayesreg.l1_strength` for λ.
    (The Laplace *approximation* method is :class:`bayesreg.LaplaceApprox`.)

    Examples
    --------
    >>> import jax.numpy as jnp, bayesreg as br
    >>> float(br.Laplace(0.5).penalty(jnp.array([1.0, -2.0])))
    6.0
    """

    scale: Any = 1.0
    loc: Any = 0.0

    def __post_init__(self):
        _check_scale("Laplace scale", self.scale)
        _check_loc(self.loc)

    def _logpdf(self, z):
        return -jnp.abs(z) / self.scale - jnp.log(2 * self.scale)

    def _penalty(self, z):
        return jnp.abs(z) / self.scale

    def _numpyro(self, loc):
        import numpyro.distributions as dist

        return dist.Laplace(loc, self.scale)


@pytree_dataclass(("df", "scale", "loc"))
@dataclasses.dataclass(frozen=True)
class StudentT(Prior):
    """Student-t prior with ``df`` degrees of freedom: heavy tails, a non-convex penalty.

    penalty(φ) = (df + 1)/2 · Σ log(1 + ((φ − loc)/scale)² / df).

    Examples
    --------
    >>> import bayesreg as br
    >>> br.StudentT(3.0, 1.0).df
    3.0
    """

    df: Any = 3.0
    scale: Any = 1.0
    loc: Any = 0.0

    def __post_init__(self):
        check_positive("StudentT df", self.df)
        _check_scale("StudentT scale", self.scale)
        _check_loc(self.loc)

    def _logpdf(self, z):
        nu, s = self.df, self.scale
        return (
            gammaln((nu + 1) / 2)
            - gammaln(nu / 2)
            - 0.5 * jnp.log(nu * math.pi)
            - jnp.log(s)
            - (nu + 1) / 2 * jnp.log1p((z / s) ** 2 / nu)
        )

    def _penalty(self, z):
        nu = self.df
        return (nu + 1) / 2 * jnp.log1p((z / self.scale) ** 2 / nu)

    def _numpyro(self, loc):
        import numpyro.distributions as dist

        return dist.StudentT(self.df, loc, self.scale)


@pytree_dataclass(("scale", "loc"))
@dataclasses.dataclass(frozen=True)
class Cauchy(Prior):
    """Cauchy prior (Student-t with one degree of freedom).

    penalty(φ) = Σ log(1 + ((φ − loc)/scale)²).

    Examples
    --------
    >>> import jax.numpy as jnp, bayesreg as br
    >>> round(float(br.Cauchy(1.0).penalty(jnp.array([1.0]))), 4)   # log 2
    0.6931
    """

    scale: Any = 1.0
    loc: Any = 0.0

    def __post_init__(self):
        _check_scale("Cauchy scale", self.scale)
        _check_loc(self.loc)

    def _logpdf(self, z):
        s = self.scale
        return -jnp.log(math.pi * s) - jnp.log1p((z / s) ** 2)

    def _penalty(self, z):
        return jnp.log1p((z / self.scale) ** 2)

    def _numpyro(self, loc):
        import numpyro.distributions as dist

        return dist.Cauchy(loc, self.scale)


@pytree_dataclass(())
@dataclasses.dataclass(frozen=True)
class Flat(Prior):
    """Improper uniform prior: no regularization (maximum likelihood under MAP).

    It has no normalising constant, so a model with a Flat prior on any coefficient has no
    evidence: ``log_evidence`` is ``nan`` with a warning.

    Examples
    --------
    >>> import jax.numpy as jnp, bayesreg as br
    >>> float(br.Flat().log_prob(jnp.ones(3)))
    0.0
    """

    proper = False
    smooth = True

    def _logpdf(self, z):
        return jnp.zeros_like(z)

    def _penalty(self, z):
        return jnp.zeros_like(z)

    def _numpyro(self, loc):
        import numpyro.distributions as dist
        from numpyro.distributions import constraints

        return dist.ImproperUniform(constraints.real, (), ())


@pytree_dataclass(("scale",))
@dataclasses.dataclass(frozen=True)
class HalfNormal(Prior):
    """Half-normal distribution on positive numbers: a hyperprior for a prior's scale.

    ``br.Gaussian(scale=br.HalfNormal(1.0))`` makes the weight scale unknown with
    s ~ HalfNormal(1); NUTS and VI sample it with the weights (on log s).

    Examples
    --------
    >>> import bayesreg as br
    >>> br.Gaussian(scale=br.HalfNormal(1.0)).hierarchical
    True
    """

    scale: Any = 1.0

    def __post_init__(self):
        check_positive("HalfNormal scale", self.scale)

    def _logpdf(self, z):
        s = self.scale
        return -0.5 * (z / s) ** 2 - jnp.log(s) + 0.5 * math.log(2 / math.pi)

    def _penalty(self, z):
        return 0.5 * (z / self.scale) ** 2

    def _numpyro(self, loc):
        import numpyro.distributions as dist

        return dist.HalfNormal(self.scale)


@pytree_dataclass(("scale",))
@dataclasses.dataclass(frozen=True)
class HalfCauchy(Prior):
    """Half-Cauchy distribution on positive numbers: a heavy-tailed hyperprior for a scale.

    Examples
    --------
    >>> import bayesreg as br
    >>> br.Laplace(scale=br.HalfCauchy(0.5)).hierarchical
    True
    """

    scale: Any = 1.0

    def __post_init__(self):
        check_positive("HalfCauchy scale", self.scale)

    def _logpdf(self, z):
        s = self.scale
        return math.log(2 / math.pi) - jnp.log(s) - jnp.log1p((z / s) ** 2)

    def _penalty(self, z):
        return jnp.log1p((z / self.scale) ** 2)

    def _numpyro(self, loc):
        import numpyro.distributions as dist

        return dist.HalfCauchy(self.scale)


@pytree_dataclass(("prior", "power"))
@dataclasses.dataclass(frozen=True)
class Tempered(Prior):
    """p(φ)^power: the prior's log density and penalty multiplied by ``power``.

    MC dropout's objective weights the weight prior by the keep probability (1 − rate);
    for a Gaussian N(0, s²) that is N(0, s²/(1 − rate)), for any prior it is this.
    """

    prior: Any = None
    power: Any = 1.0

    def log_prob(self, params):
        return self.power * self.prior.log_prob(params)

    def penalty(self, params):
        return self.power * self.prior.penalty(params)

    @property
    def proper(self):  # type: ignore[override]
        return self.prior.proper

    @property
    def smooth(self):  # type: ignore[override]
        return self.prior.smooth


PRIOR_TYPES = {cls.__name__: cls for cls in
               (Gaussian, Laplace, StudentT, Cauchy, Flat, HalfNormal, HalfCauchy)}


def prior_from_dict(d: dict) -> Prior:
    """Rebuild a prior from :meth:`Prior.to_dict` (a pytree ``loc`` must be put back)."""
    d = dict(d)
    cls = PRIOR_TYPES[d.pop("type")]
    if isinstance(d.get("scale"), dict):
        d["scale"] = prior_from_dict(d["scale"])
    return cls(**d)


def as_prior_spec(prior) -> dict[str, Prior]:
    """Normalise a prior spec to ``{"weights": Prior, "biases": Prior}``.

    A single prior applies to both groups; a pytree ``loc`` with ``weights``/``biases``
    keys is split so that each group's prior is centred on its own part.
    """
    if isinstance(prior, Prior):
        loc = getattr(prior, "loc", 0.0)
        if isinstance(loc, dict) and set(loc) == set(PARAM_GROUPS):
            return {g: dataclasses.replace(prior, loc=loc[g]) for g in PARAM_GROUPS}
        return {g: prior for g in PARAM_GROUPS}
    if isinstance(prior, dict):
        if set(prior) != set(PARAM_GROUPS) or not all(isinstance(p, Prior) for p in prior.values()):
            raise ValueError(
                "prior must be one Prior or a dict {'weights': Prior, 'biases': Prior}; "
                f"got a dict with keys {sorted(prior)}"
            )
        return dict(prior)
    raise TypeError(
        "prior must be a bayesreg prior (e.g. br.Gaussian(1.0)) or a dict "
        f"{{'weights': Prior, 'biases': Prior}}; got {type(prior).__name__}"
    )


def check_prior_shapes(spec: dict[str, Prior], params) -> None:
    """A ``ValueError`` when a prior's ``loc`` or array ``scale`` does not fit the model's
    parameters: every array must broadcast to each parameter array it applies to without
    changing that array's shape (a (3,) loc against (3, 1) weights would broadcast to (3, 3)
    and silently penalise 9 differences instead of 3), and a pytree ``loc`` must have the
    parameters' structure. ``params`` may hold shapes only (``jax.eval_shape``).

    Examples
    --------
    >>> import numpy as np, jax, bayesreg as br
    >>> params = br.Linear().init(jax.random.key(0), 3)
    >>> spec = {"weights": br.Gaussian(1.0, loc=np.ones((3, 1))), "biases": br.Gaussian(1.0)}
    >>> check_prior_shapes(spec, params)
    >>> try:
    ...     check_prior_shapes({**spec, "weights": br.Gaussian(1.0, loc=np.ones(3))}, params)
    ... except ValueError as err:
    ...     print(str(err)[:94])
    the weights prior's loc has shape (3,), which does not fit the weights array 0 of shape (3, 1)
    """
    if not (isinstance(params, dict) and set(PARAM_GROUPS) <= set(params)):
        return  # a user's own parameter pytree: the prior applies as the user wrote it
    for g in PARAM_GROUPS:
        prior, leaves = spec[g], jax.tree_util.tree_leaves(params[g])
        for field in ("loc", "scale"):
            value = getattr(prior, field, None)
            if value is None or isinstance(value, Prior):
                continue
            if field == "scale" and isinstance(value, list | tuple):
                if len(value) != len(leaves):
                    raise ValueError(f"the {g} prior's scale lists {len(value)} scales; the "
                                     f"model has {len(leaves)} {g} arrays: give one scale per "
                                     f"array, or one number for all")
                pairs = list(zip(value, leaves, strict=True))
            elif _is_tree(value):
                ok = jax.tree_util.tree_structure(value) == jax.tree_util.tree_structure(
                    params[g])
                if not ok:
                    shapes = [tuple(p.shape) for p in leaves]
                    raise ValueError(f"the {g} prior's {field} is a pytree that does not match "
                                     f"the model's {g}: expected {len(leaves)} arrays of "
                                     f"shapes {shapes} in the same structure")
                pairs = list(zip(jax.tree_util.tree_leaves(value), leaves, strict=True))
            else:
                pairs = [(value, leaf) for leaf in leaves]
            for i, (v, leaf) in enumerate(pairs):
                if isinstance(v, jax.core.Tracer):
                    continue
                vs, ls = tuple(np.shape(v)), tuple(leaf.shape)
                try:
                    fits = np.broadcast_shapes(vs, ls) == ls
                except ValueError:
                    fits = False
                if not fits:
                    raise ValueError(
                        f"the {g} prior's {field} has shape {vs}, which does not fit the {g} "
                        f"array {i} of shape {ls}: expected a number, or an array of shape "
                        f"{ls} (or one that broadcasts to it, e.g. {(1,) * max(len(ls) - 1, 1)}),"
                        f" or a pytree of the parameters' structure")


def log_prior(spec: dict[str, Prior], params) -> jax.Array:
    """log p(φ) of a model's parameters ``{"weights": ..., "biases": ...}`` under a spec."""
    return sum((spec[g].log_prob(params[g]) for g in PARAM_GROUPS), jnp.zeros(()))


def is_hierarchical(spec: dict[str, Prior]) -> bool:
    """True when any group's prior has a sampled scale."""
    return any(p.hierarchical for p in spec.values())


def is_proper(spec: dict[str, Prior]) -> bool:
    """True when every group's prior is a normalised density (no Flat)."""
    return all(p.proper for p in spec.values())
