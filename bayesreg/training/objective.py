r"""The training objective every optimising method minimises: the negative log joint per
training point of a batch (:class:`NegLogJoint`), with noise injection and data augmentation
drawn from the step's key, and the row weights of a padded full batch (:func:`row_weights`).
The loop that minimises it is :mod:`bayesreg.training.loop`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from bayesreg.latent import latent_log_prior
from bayesreg.priors import log_prior
from bayesreg.problem import log_likelihood


def _perturb(tree, key, scale):
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    keys = jax.random.split(key, max(1, len(leaves)))
    return jax.tree_util.tree_unflatten(treedef, [
        x + scale * jax.random.normal(k, x.shape, x.dtype) for x, k in zip(leaves, keys,
                                                                          strict=False)])


@dataclasses.dataclass(frozen=True)
class NegLogJoint:
    r"""The training objective: the negative log joint per training point of a batch B,

        ℓ(φ, θ) = −(1/|B|) Σ_{i∈B} log p(yᵢ | f_φ(xᵢ), θ) − log p(φ) / N,

    whose minimiser over the full data is the MAP estimate (N ℓ is the negative log joint).
    With ``latent=True`` the prior term is the latent density of the Bayesian methods (the
    weight prior plus the noise prior on log σ). ``noise`` holds (kind, scale) pairs of
    noise injection, drawn from the step's key: "inputs" and "labels" add Gaussian noise to
    the batch, "weights" evaluates the loss at jittered weights (gradient w.r.t. the clean
    ones). ``augment`` transforms the batch's inputs with the step's key
    (:mod:`bayesreg.augment`).

    Hashable (a static argument of the compiled loops): two fits with equal objectives share
    a compiled program.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, bayesreg as br
    >>> from bayesreg.training.objective import NegLogJoint
    >>> model = br.Linear()
    >>> state = {"params": model.init(jax.random.key(0), 1), "theta": {}}
    >>> X, y = jnp.zeros((4, 1)), jnp.ones(4)
    >>> loss = NegLogJoint(model)(state, br.GaussianLikelihood(1.0), {"weights": br.Flat(),
    ...                           "biases": br.Flat()}, X, y, jax.random.key(1), 4.0)
    >>> round(float(loss), 4)  # ½(1 − b)² + ½ log 2π at the zero-initialised bias b
    1.4189
    """

    model: Any
    noise: tuple[tuple[str, float], ...] = ()
    latent: bool = False
    augment: Any = None  # aug(key, X_batch) -> X_batch, a fresh draw every batch

    def __call__(self, state, likelihood, prior, X, y, key, n, weights=None) -> jax.Array:
        """ℓ on the batch (X (B, D), y (B,)) of a training set of ``n`` rows. ``weights``
        (B,) of a padded full batch are B/n on the real rows and 0 on the padding, so that
        the batch mean is the mean over the real rows (:func:`row_weights`)."""
        noise = dict(self.noise)
        k_drop, k_in, k_w, k_lab = jax.random.split(key, 4)
        if self.augment is not None:  # its own stream: the other keys stay as without it
            X = self.augment(jax.random.fold_in(key, 5), X)
        if noise.get("inputs"):
            X = X + noise["inputs"] * jax.random.normal(k_in, X.shape, X.dtype)
        if noise.get("labels"):
            y = y + noise["labels"] * jax.random.normal(k_lab, y.shape, y.dtype)
        used = state
        if noise.get("weights"):  # the loss at jittered weights, its gradient w.r.t. the clean
            used = dict(state, params=dict(state["params"], weights=_perturb(
                state["params"]["weights"], k_w, noise["weights"])))
        ll = log_likelihood(self.model, likelihood, used, X, y, key=k_drop)
        if weights is not None:  # padded rows weigh nothing
            ll = ll * weights
        lp = (latent_log_prior(likelihood, prior, state) if self.latent
              else log_prior(prior, state["params"]))
        return -(jnp.mean(ll) + lp / n)

    def validation_loss(self, state, likelihood, X, y, weights) -> jax.Array:
        """Mean negative log likelihood of the validation rows whose ``weights`` are 1."""
        ll = log_likelihood(self.model, likelihood, state, X, y)
        return -jnp.sum(ll * weights) / jnp.sum(weights)


def row_weights(mask) -> jax.Array:
    """The objective's row weights of a padded batch from its mask (1 real, 0 padding):
    B/n on the real rows. Computed once per fit, outside the loop."""
    return mask * (mask.shape[0] / jnp.sum(mask))
