r"""Dropout's masks and the network they act on, for MC dropout (:class:`bayesreg.MCDropout`).

:func:`sample_mask` draws a multiplicative mask of mean 1 — "bernoulli" (keep with
probability 1 − rate, scaled by 1/(1 − rate): inverted dropout, the expected activation
unchanged), "gaussian" (N(1, rate/(1 − rate)), the same mean and variance: Srivastava et
al.; the lecture's N(0.5, σ²) mask rescaled by 2 is N(1, 4σ²)) or "uniform" (continuous
dropout, 2·U(0, 1): mean 1, variance 1/3; ``rate`` then only weights the prior).
:class:`DropoutNetwork` is an :class:`bayesreg.MLP` whose layers see masked inputs whenever
a key is given (one mask per example: training), and whose
:meth:`DropoutNetwork.masked_params` folds one mask per layer into the weights,
W'ₗ = diag(zₗ) Wₗ (one mask shared by all points: a whole function, a posterior draw).

Examples
--------
>>> import jax, bayesreg as br
>>> net = DropoutNetwork(br.MLP((8,)), rate=0.1)
>>> params = net.init(jax.random.key(0), 2)
>>> draws = net.masked_params(params, jax.random.key(1), 5)
>>> draws["weights"][0].shape
(5, 2, 8)
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from bayesreg.models import MLP, mlp_forward


def sample_mask(key, shape, rate: float, kind: str, dtype=jnp.float32) -> jax.Array:
    """Multiplicative dropout mask with mean 1 (see the module docstring). ``rate`` may be
    traced (the candidate rates of :class:`bayesreg.MCDropout` trained as one program)."""
    if kind == "bernoulli":
        return jax.random.bernoulli(key, 1.0 - rate, shape).astype(dtype) / (1.0 - rate)
    if kind == "gaussian":
        # a number as before (in double precision); a traced rate in the array's
        sd = math.sqrt(rate / (1.0 - rate)) if isinstance(rate, int | float) else \
            jnp.sqrt(rate / (1.0 - rate)).astype(dtype)
        return 1.0 + sd * jax.random.normal(key, shape, dtype)
    return 2.0 * jax.random.uniform(key, shape, dtype)


@dataclasses.dataclass(frozen=True)
class DropoutNetwork:
    """An :class:`bayesreg.MLP` whose dense layers see masked inputs whenever a key is given."""

    base: MLP
    rate: float
    mask: str = "bernoulli"
    drop_input: bool = True

    linear_in_params = False

    def init(self, key, n_features, n_outputs=1, dtype=jnp.float32):
        return self.base.init(key, n_features, n_outputs, dtype)

    def apply(self, params, X, *, key=None):
        if key is None:
            return self.base.apply(params, X)
        keys = jax.random.split(key, len(params["weights"]))

        def masked(i, h):
            return h * sample_mask(keys[i], h.shape, self.rate, self.mask, h.dtype)

        return mlp_forward(self.base.act, params, X, masked, first=0 if self.drop_input else 1)

    def masked_params(self, params, key, num: int):
        """``num`` draws of the weights with one mask per layer folded in: (num, ...)."""

        def one(k):
            keys = jax.random.split(k, len(params["weights"]))
            weights = [w if (i == 0 and not self.drop_input) else
                       sample_mask(keys[i], (w.shape[0], 1), self.rate, self.mask, w.dtype) * w
                       for i, w in enumerate(params["weights"])]
            return {"weights": weights, "biases": list(params["biases"])}

        return jax.vmap(one)(jax.random.split(key, num))
