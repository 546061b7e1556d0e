r"""Implicit regularization of gradient descent: the modified losses of backward error analysis.

Gradient descent with step α does not follow the gradient flow of L; to second order in α
it follows the gradient flow of

    L̃_GD(φ) = L(φ) + (α/4) ‖∇L(φ)‖²

and mini-batch SGD over B batches Lᵦ (with L = (1/B) Σᵦ Lᵦ), taken as a whole epoch, that of

    L̃_SGD(φ) = L̃_GD(φ) + (α/4B) Σᵦ ‖∇Lᵦ(φ) − ∇L(φ)‖².

Finite steps therefore penalise steep regions, and SGD also penalises disagreement between
batch gradients — one account of why larger learning rates and smaller batches generalise
better (the lecture's figure; see ``examples/``).

Examples
--------
>>> import jax.numpy as jnp, bayesreg as br
>>> loss = lambda p: jnp.sum(p**2)                    # ∇L = 2p, ‖∇L‖² = 4‖p‖²
>>> float(br.implicit.gd_modified_loss(loss, 0.1)(jnp.array([1.0])))   # 1 + 0.1/4 · 4
1.1
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp


def _sq_norm(tree) -> jax.Array:
    return sum((jnp.sum(leaf**2) for leaf in jax.tree_util.tree_leaves(tree)), jnp.zeros(()))


def gd_modified_loss(loss: Callable, lr: float) -> Callable:
    """φ ↦ L(φ) + (α/4)‖∇L(φ)‖² for a loss of the parameters alone."""
    grad = jax.grad(loss)

    def modified(params):
        return loss(params) + lr / 4 * _sq_norm(grad(params))

    return modified


def sgd_modified_loss(loss: Callable, lr: float, batches) -> Callable:
    """φ ↦ L̃_GD(φ) + (α/4B) Σᵦ ‖∇Lᵦ(φ) − ∇L(φ)‖².

    Parameters
    ----------
    loss : callable (params, batch) -> scalar
        The loss of one batch, Lᵦ(φ) = loss(φ, batch b).
    lr : float
        The learning rate α.
    batches : pytree with a leading axis of B batches
        E.g. ``(X.reshape(B, -1, D), y.reshape(B, -1))``; L is the mean of the Lᵦ.
    """
    n_batches = jax.tree_util.tree_leaves(batches)[0].shape[0]

    def full(params):
        return jnp.mean(jax.vmap(lambda b: loss(params, b))(batches))

    full_grad = jax.grad(full)
    batch_grad = jax.grad(loss)

    def modified(params):
        g = full_grad(params)
        gb = jax.vmap(lambda b: batch_grad(params, b))(batches)
        diff = jax.tree_util.tree_map(lambda a, m: a - m[None], gb, g)
        spread = _sq_norm(diff)  # Σ over batches and coordinates
        return full(params) + lr / 4 * _sq_norm(g) + lr / (4 * n_batches) * spread

    return modified
