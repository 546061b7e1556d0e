r"""Stochastic-gradient MCMC's step: the Langevin update as an optax transform, its
step-size schedules, the static plan of a run, and the step size a chain can take.

:func:`langevin` is a ``GradientTransformation`` whose PRNG key lives in its state
(:class:`LangevinState`, as optax's ``add_noise`` keeps ``AddNoiseState``). Given the gradient
g of a loss (the negative log density −log p̃) it returns the update v of

    v ← m·v − η_t g + √(2(1 − m)η_t T)·ξ,   ξ ~ N(0, I),   z ← z + v

(temperature T = 1: Langevin dynamics for p̃; m = 0 is SGLD, m > 0 SGHMC with friction
1 − m). The noise of step t is drawn from ``fold_in(key, t)``, not from a key split at every
step, so that a step's noise does not depend on how the steps are cut into scans (thinning
blocks, chunks of a stream). :func:`constant`, :func:`polynomial_decay` and
:func:`cosine_cycles` are the schedules of η as optax schedules (count → value).

:class:`Plan` is the static shape of a run of :class:`bayesreg.SGLD` (cycles, exploration,
kept draws, thinning, batch). :func:`stable_step_size` caps ε where the log joint's
curvature at a chain's start would make the step unstable, and :func:`prior_precondition`
preconditions the coordinates a stiff prior pins. The chains that run the transform, in
memory or over rows read by chunks, are :mod:`bayesreg.training.langevin_chains`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from bayesreg.curvature import largest_eigenvalue, prior_diag
from bayesreg.latent import latent_log_joint, latent_log_prior
from bayesreg.priors import is_hierarchical

POLY_DECAY = 0.55  # Welling & Teh's exponent γ ∈ (0.5, 1]


def _xp(count):
    return jnp if isinstance(count, jax.Array) else np


def constant(init_value: float) -> optax.Schedule:
    """η_t = ``init_value``, shaped like t (NumPy or JAX, as t is).

    Examples
    --------
    >>> import numpy as np
    >>> constant(0.1)(np.arange(3)).tolist()
    [0.1, 0.1, 0.1]
    """
    return lambda count: init_value * _xp(count).ones_like(count, dtype=float)


def polynomial_decay(init_value: float, warmup: int, power: float = POLY_DECAY
                     ) -> optax.Schedule:
    """η_t = ``init_value`` · (1 + t / ``warmup``)^(−``power``): Welling & Teh's a(b + t)^(−γ).

    Examples
    --------
    >>> round(float(polynomial_decay(1.0, 10)(10.0)), 4)  # 2^(−0.55)
    0.6830
    """
    return lambda count: init_value * (1.0 + count / max(1, warmup)) ** (-power)


def cosine_cycles(init_value: float, cycle_length: int) -> optax.Schedule:
    """η_t = (``init_value``/2)(cos(π (t mod L)/L) + 1): cSG-MCMC's cycles of L steps, each
    restarting at ``init_value`` (Zhang et al. 2020).

    Examples
    --------
    >>> import numpy as np
    >>> cosine_cycles(1.0, 4)(np.arange(5.0)).round(3).tolist()
    [1.0, 0.854, 0.5, 0.146, 1.0]
    """
    def schedule(count):
        xp = _xp(count)
        return init_value * 0.5 * (xp.cos(xp.pi * (count % cycle_length) / cycle_length) + 1.0)
    return schedule


class LangevinState(NamedTuple):
    """The steps taken (t), the velocity v (a pytree like the parameters) and the key from
    which step t's noise is drawn (``fold_in(key, t)``)."""

    count: jax.Array
    velocity: Any
    key: jax.Array


def langevin(learning_rate: float | optax.Schedule, momentum: float = 0.0, key=None,
             noise: bool | Callable = True, temperature: float = 1.0, precondition=None
             ) -> optax.GradientTransformation:
    r"""The Langevin step of SG-MCMC as an optax transform (key in its state).

    Parameters
    ----------
    learning_rate : float or schedule
        η_t (per gradient of the loss fed to ``update``); a schedule is called with t.
    momentum : float
        m in [0, 1): 0 is SGLD, above 0 SGHMC with friction 1 − m.
    key : jax PRNG key
        Stored by ``init`` in the state; step t's noise comes from ``fold_in(key, t)``.
    noise : bool or callable
        Whether step t adds noise (a callable of t: cSG-MCMC explores without it).
    temperature : float
        T scales the noise's variance: 1 samples p̃ ∝ exp(−loss), 0 is SGD with momentum.
    precondition : pytree like the parameters, optional
        A constant diagonal preconditioner M in (0, 1]: the step becomes −η M g + √(…η M) ξ,
        still Langevin dynamics for p̃ (a constant M needs no correction term). Where M is
        exactly 1 the step is bit for bit the plain one.

    Returns
    -------
    optax.GradientTransformation
        ``update(grads, state, params=None)`` returns v (apply it with
        ``optax.apply_updates``) and the state with t + 1 and v.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, optax
    >>> tx = langevin(0.1, key=jax.random.key(0), noise=False)  # no noise: SGD at rate 0.1
    >>> state = tx.init({"w": jnp.ones(2)})
    >>> v, state = tx.update({"w": jnp.array([1.0, -2.0])}, state)
    >>> v["w"].tolist(), int(state.count)
    ([-0.10000000149011612, 0.20000000298023224], 1)
    """
    lr = learning_rate if callable(learning_rate) else constant(learning_rate)
    noisy = noise if callable(noise) else (lambda count: jnp.asarray(noise))

    def init(params) -> LangevinState:
        return LangevinState(jnp.zeros((), jnp.int32),
                             jax.tree_util.tree_map(jnp.zeros_like, params), key)

    def update(grads, state: LangevinState, params=None):
        del params
        t = state.count
        eta = lr(t)
        leaves, treedef = jax.tree_util.tree_flatten(grads)
        noise_key = jax.random.split(jax.random.fold_in(state.key, t))[1]
        xi = jax.tree_util.tree_unflatten(treedef, [
            jax.random.normal(k, jnp.shape(a), jnp.result_type(a))
            for k, a in zip(jax.random.split(noise_key, len(leaves)), leaves, strict=True)])
        amp = jnp.where(noisy(t), jnp.sqrt(2.0 * (1.0 - momentum) * eta * temperature), 0.0)
        if precondition is not None:
            grads = jax.tree_util.tree_map(jnp.multiply, precondition, grads)
            xi = jax.tree_util.tree_map(lambda m, x: jnp.sqrt(m) * x, precondition, xi)
        v = jax.tree_util.tree_map(lambda vi, gi, x: momentum * vi - eta * gi + amp * x,
                                   state.velocity, grads, xi)
        return v, LangevinState(t + 1, v, state.key)

    return optax.GradientTransformation(init, update)


class Plan(NamedTuple):
    """Static structure of an SGLD run: ``cycles`` × [``explore`` steps, ``draws`` ×
    ``thinning`` sampling steps keeping the last state of each ``thinning``]; ``explore`` is
    a multiple of ``thinning``, so one scan over blocks of ``thinning`` steps runs it all."""

    cycles: int
    explore: int
    explore_noise: bool  # warm-up is Langevin; cSG-MCMC's exploration is noise-free
    draws: int
    thinning: int
    batch: int | None
    schedule: str
    n: int
    warmup: int

    @property
    def cycle_length(self) -> int:
        return self.explore + self.draws * self.thinning

    @property
    def steps(self) -> int:
        return self.cycles * self.cycle_length

    def step_size(self, t, base):
        """ε_t at step t (0-based), for jnp or NumPy t."""
        if self.schedule == "cyclical":
            return cosine_cycles(base, self.cycle_length)(t)
        if self.schedule == "polynomial":
            return polynomial_decay(base, self.warmup)(t)
        return constant(base)(t)

    def noisy(self, t):
        """Whether step t adds noise: everywhere but in cSG-MCMC's exploration phases."""
        return (t % self.cycle_length >= self.explore) | self.explore_noise

    def transform(self, base, momentum, key, n, precondition=None
                  ) -> optax.GradientTransformation:
        """The Langevin transform of this run for the gradient of −log p̃ (η_t = ε_t / N)."""
        return langevin(lambda t: self.step_size(t, base) / n, momentum, key, self.noisy,
                        precondition=precondition)

    def kept_steps(self) -> np.ndarray:
        """Indices t of the kept states (the last step of each thinning block)."""
        c = np.arange(self.cycles)[:, None] * self.cycle_length
        j = self.explore + (np.arange(self.draws)[None, :] + 1) * self.thinning - 1
        return (c + j).reshape(-1)

    def kept_step_sizes(self, base) -> np.ndarray:
        return np.asarray(self.step_size(self.kept_steps().astype(float), float(base)))


# η·λ_max of the log joint's curvature (preconditioned) at most half the stability limit
# 2(1 + m): the stiffest direction's variance at most doubled (module docstring)
STIFF_LIKELIHOOD = 1.0


def stable_step_size(model, likelihood, prior, z, X, y, step_size: float, momentum: float,
                     precondition=None) -> tuple[float, float]:
    """(ε used, h) with h = λ_max(M^½ ∇²(−log p(z, y)) M^½) / N, the largest per-point
    curvature of the log joint at ``z`` (a mode: where full-batch chains start) under the
    preconditioner M: ε itself where ε h ≤ ``STIFF_LIKELIHOOD``·(1 + m), else the step
    that meets it. Past the stability limit ε h = 2(1 + m) a chain cannot stay at the
    mode; it drifts to flatter regions that fit worse (diabetes, MLP(50): h = 1717, and at
    ε = 5e-3 the draws' σ was 61 against NUTS's 51), and no divergence shows it.

    Examples
    --------
    >>> import jax, numpy as np, bayesreg as br
    >>> model = br.Linear()
    >>> z = {"params": model.init(jax.random.key(0), 1), "theta": {}, "hyper": {}}
    >>> X = np.ones((10, 1)); y = np.zeros(10)  # f = w + b: curvature 2/σ² = 200 per row
    >>> eps, h = stable_step_size(model, br.GaussianLikelihood(0.1), {"weights": br.Flat(),
    ...     "biases": br.Flat()}, z, X, y, 5e-3, 0.0)
    >>> round(h, 1), round(eps, 4)  # ε h = 1
    (200.0, 0.005)
    """
    M = jax.tree_util.tree_map(jnp.ones_like, z) if precondition is None else precondition
    h = float(_stiffest(model, likelihood, prior, z, jnp.asarray(X), jnp.asarray(y), M))
    h /= X.shape[0]
    limit = STIFF_LIKELIHOOD * (1.0 + momentum)
    return (step_size if not np.isfinite(h) or step_size * h <= limit else limit / h), h


@partial(jax.jit, static_argnames=("model",))
def _stiffest(model, likelihood, prior, z, X, y, M):
    flat, unravel = ravel_pytree(z)
    root = jnp.sqrt(ravel_pytree(M)[0])
    grad = jax.grad(lambda v: -latent_log_joint(model, likelihood, prior, unravel(v), X, y))

    def hvp(u):  # M^½ H M^½ u
        return root * jax.jvp(grad, (flat,), (root * u,))[1]

    v0 = jax.random.normal(jax.random.key(0), flat.shape, flat.dtype)
    return largest_eigenvalue(hvp, v0)


STIFF = 0.5  # η·α above which a coordinate's step is preconditioned (stable below 2)


def prior_precondition(likelihood, prior, z, step_size: float, n: int):
    """M for :func:`langevin`: 1 where the step is far inside the stable range of the prior's
    own curvature, η αᵢ ≤ ``STIFF`` (η = ε/N, αᵢ = ∂²(−log p(z))/∂zᵢ² at one chain's start ``z``),
    and ``STIFF``/(η αᵢ) where it is not — a prior scale learned down to 1e-4 has α = 1e8,
    which no usable ε crosses; None when no coordinate is stiff (the plain step), and under
    a hierarchical prior, whose sampled scales couple the weights (its Hessian is not
    diagonal, which :func:`bayesreg.curvature.prior_diag` needs).

    Examples
    --------
    >>> import jax.numpy as jnp, bayesreg as br
    >>> z = {"params": {"weights": [jnp.zeros((2, 1))], "biases": [jnp.zeros(1)]},
    ...      "theta": {}, "hyper": {}}
    >>> prior = {"weights": br.Gaussian(1.0), "biases": br.Gaussian(1e-4)}
    >>> m = prior_precondition(br.GaussianLikelihood(1.0), prior, z, 5e-3, 100)
    >>> [float(v) for v in m["params"]["biases"][0]], float(m["params"]["weights"][0][0, 0])
    ([0.001], 1.0)
    """
    if is_hierarchical(prior):  # sampled scales couple the weights: no diagonal to read
        return None
    flat, unravel = ravel_pytree(z)
    alpha = prior_diag(lambda v: -latent_log_prior(likelihood, prior, unravel(v)), flat)
    stiffness = (step_size / n) * alpha
    if not bool(jnp.any(stiffness > STIFF)):
        return None
    return unravel(jnp.where(stiffness > STIFF, STIFF / stiffness, 1.0).astype(flat.dtype))
