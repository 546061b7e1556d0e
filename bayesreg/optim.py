r"""The lecture's update rules as optax ``GradientTransformation``\ s, exactly as written.

Each returns updates u with φ ← φ + u (optax's convention), so any of them can be passed to
``br.MAP(optimizer=...)`` or used in a hand-written optax loop. The gradient g is that of
the loss being minimised (full batch, or one mini-batch: what makes SGD stochastic is how
:class:`bayesreg.MAP` feeds batches, not the rule).

=====================  ================================================================
rule                   update
=====================  ================================================================
``gd``, ``sgd``        φ ← φ − α g
``momentum``           m ← β m + (1 − β) g;  φ ← φ − α m
``nesterov``           m ← β m + (1 − β) ∇L(φ − αβ m);  φ ← φ − α m
``normalized``         φ ← φ − α g / (√(g²) + ε)
``adam``               m ← β m + (1 − β) g;  v ← γ v + (1 − γ) g²;
                       m̃ = m/(1 − βᵗ⁺¹), ṽ = v/(1 − γᵗ⁺¹) (``bias_correction``);
                       φ ← φ − α m̃ / (√ṽ + ε)
=====================  ================================================================

Relations to optax: ``gd`` is ``optax.sgd(α)``; ``momentum(α, β)`` is
``optax.sgd(α(1 − β), momentum=β)`` (optax's heavy ball omits the (1 − β)); ``adam`` with
bias correction is ``optax.adam(α, b1=β, b2=γ, eps=ε)``. The tests check each relation.

Nesterov in an update-only interface: optax hands the transformation the gradient at the
parameters it holds, but the rule needs it at the look-ahead point φ − αβm. So the
parameters optax holds are the look-ahead point ψ = φ − αβm itself; then
ψ ← ψ + αβ m_old − α(1 + β) m_new reproduces the lecture's sequence exactly, shifted by
αβm (which vanishes as m → 0 at a minimum). ``nesterov_params(ψ, state)`` returns φ.

Examples
--------
>>> import jax.numpy as jnp, optax, bayesreg as br
>>> tx = br.optim.momentum(0.1, beta=0.9)
>>> state = tx.init(jnp.zeros(2))
>>> updates, state = tx.update(jnp.ones(2), state)
>>> updates.tolist()                              # −α(1 − β) g on the first step
[-0.010000000707805157, -0.010000000707805157]
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


class MomentumState(NamedTuple):
    m: optax.Updates


class AdamState(NamedTuple):
    count: jax.Array
    m: optax.Updates
    v: optax.Updates


def _zeros(params):
    return jax.tree_util.tree_map(jnp.zeros_like, params)


def gd(lr: float) -> optax.GradientTransformation:
    """Gradient descent, φ ← φ − α g."""

    def update(grads, state, params=None):
        del params
        return jax.tree_util.tree_map(lambda g: -lr * g, grads), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def sgd(lr: float) -> optax.GradientTransformation:
    """Stochastic gradient descent: the ``gd`` rule applied to a mini-batch gradient."""
    return gd(lr)


def momentum(lr: float, beta: float = 0.9) -> optax.GradientTransformation:
    """The lecture's momentum: m ← βm + (1 − β)g, φ ← φ − αm."""

    def update(grads, state, params=None):
        del params
        m = jax.tree_util.tree_map(lambda m, g: beta * m + (1 - beta) * g, state.m, grads)
        return jax.tree_util.tree_map(lambda m: -lr * m, m), MomentumState(m)

    return optax.GradientTransformation(lambda params: MomentumState(_zeros(params)), update)


def nesterov(lr: float, beta: float = 0.9) -> optax.GradientTransformation:
    """Nesterov momentum with the gradient at the look-ahead point φ − αβm (module
    docstring: the parameters held are the look-ahead point)."""

    def update(grads, state, params=None):
        del params
        m_new = jax.tree_util.tree_map(lambda m, g: beta * m + (1 - beta) * g, state.m, grads)
        updates = jax.tree_util.tree_map(lambda mo, mn: lr * beta * mo - lr * (1 + beta) * mn,
                                         state.m, m_new)
        return updates, MomentumState(m_new)

    return optax.GradientTransformation(lambda params: MomentumState(_zeros(params)), update)


def nesterov_params(lookahead, state: MomentumState, lr: float, beta: float = 0.9):
    """φ = ψ + αβm: the lecture's parameters from the look-ahead point optax holds."""
    return jax.tree_util.tree_map(lambda p, m: p + lr * beta * m, lookahead, state.m)


def normalized(lr: float, eps: float = 1e-8) -> optax.GradientTransformation:
    """Normalised gradients without averaging: φ ← φ − α g/(√(g²) + ε)."""

    def update(grads, state, params=None):
        del params
        return jax.tree_util.tree_map(lambda g: -lr * g / (jnp.sqrt(g**2) + eps), grads), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def adam(lr: float, beta: float = 0.9, gamma: float = 0.99, eps: float = 1e-8,
         bias_correction: bool = True) -> optax.GradientTransformation:
    """Adam as in the lecture (note the lecture's γ = 0.99 default; optax's b2 is 0.999)."""

    def init(params):
        return AdamState(jnp.zeros((), jnp.int32), _zeros(params), _zeros(params))

    def update(grads, state, params=None):
        del params
        t = state.count + 1
        m = jax.tree_util.tree_map(lambda m, g: beta * m + (1 - beta) * g, state.m, grads)
        v = jax.tree_util.tree_map(lambda v, g: gamma * v + (1 - gamma) * g**2, state.v, grads)
        if bias_correction:
            cm, cv = 1 - beta**t, 1 - gamma**t
        else:
            cm = cv = jnp.ones(())
        updates = jax.tree_util.tree_map(
            lambda m, v: -lr * (m / cm) / (jnp.sqrt(v / cv) + eps), m, v)
        return updates, AdamState(t, m, v)

    return optax.GradientTransformation(init, update)
