"""What every method receives: the data, the model, the likelihood and the prior, checked once.

``log_joint`` is the one objective all methods share:

    log p(y, φ, θ | X) = Σᵢ log p(yᵢ | f_φ(xᵢ), θ) + log p(φ)

(θ: likelihood parameters such as log σ, which the weight prior never touches).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from bayesreg.priors import Prior, log_prior


@dataclasses.dataclass(frozen=True)
class Problem:
    """A checked regression or classification problem (arrays are NumPy, rows = points)."""

    model: object
    likelihood: object
    prior: dict[str, Prior]
    X: np.ndarray
    y: np.ndarray
    key: jax.Array
    dtype: str = "float32"
    learn_prior: bool = False  # no prior was given: methods that can may learn its scale(s)
    # the targets' mean, already subtracted from y (regression): added back to every prediction;
    # (T,) for targets Y (N, T) of T tasks, whose missing labels are NaN
    offset: float | np.ndarray = 0.0
    # s: y above is (targets − offset) / s, the prior and likelihood those of that target
    # (bayesreg._units); results are mapped back to the targets' units by br.fit
    scale: float = 1.0

    @property
    def n_tasks(self) -> int:
        """T for targets Y (N, T) of T >= 2 regression tasks, else 1."""
        return self.y.shape[1] if np.ndim(self.y) == 2 and self.y.shape[1] >= 2 else 1

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def n_features(self) -> int:
        return self.X.shape[1]

    @property
    def n_outputs(self) -> int:
        return self.likelihood.n_outputs(self.y)

    def init_state(self, key) -> dict:
        """Starting point {"params": model parameters, "theta": likelihood parameters}."""
        params = self.model.init(key, self.n_features, self.n_outputs, dtype=self.dtype)
        return {"params": params, "theta": self.likelihood.init_params(self.y)}


def log_likelihood(model, likelihood, state, X, y, key=None) -> jax.Array:
    """log p(yᵢ | xᵢ, φ, θ) for each row, (N,)."""
    return likelihood.log_prob(y, model.apply(state["params"], X, key=key), state["theta"])


def log_joint(model, likelihood, prior, state, X, y, key=None) -> jax.Array:
    """Σᵢ log p(yᵢ | xᵢ, φ, θ) + log p(φ): the unnormalised log posterior (a scalar)."""
    ll = log_likelihood(model, likelihood, state, X, y, key)
    return jnp.sum(ll) + log_prior(prior, state["params"])
