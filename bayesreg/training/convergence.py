r"""How far the weights are from the mode the evidence assumes: the Newton decrement.

The evidence (:mod:`bayesreg.training.evidence`) and the Laplace approximation are expansions
about a mode φ* of the negative log joint L(φ) = −log p(y | φ, σ) − log p(φ). At weights φ
that are not a mode, with gradient g = ∇L(φ) and the Gauss–Newton curvature
H = βG + diag(α) the evidence update factors anyway, the Newton decrement

    λ² = gᵀ H⁻¹ g

is (Boyd & Vandenberghe, *Convex Optimization*, §9.5.1) twice the decrease of the quadratic
model of L from φ to its minimiser, and λ is the distance from φ to that minimiser in the
posterior's standard deviations (‖φ − φ*‖_H). It is invariant to the scale of the target and
of every weight, which a gradient norm is not. The log joint at φ falls short of the mode's
by λ²/2 nats, and so does the Laplace evidence about φ; ``NATS_SHORT`` = 1 nat, below which
a difference of log evidences is "barely worth mentioning" (Jeffreys), is the tolerance.

For a model linear in its parameters under a Gaussian prior the GGN is the Hessian: λ² is
exact and one step φ ← φ − H⁻¹g lands on the mode. For a network it is not, and λ² is no
guide: on 200 rows of sin(3x) + 0.3ε, MLP((50,))'s default fit has λ² = 7.7 under the GGN
(3.8 nats predicted), while the true mode, found by saddle-free Newton steps in float64, is
0.61 nats lower (``benchmarks/convergence.py``). What the training loop does with it
(:func:`polished`): for a linear model, a Newton step at the end of a
fit with evidence updates (kept only where it lowers L), λ² before each update and after the
step reported, and a warning when the step did not get within ``NATS_SHORT``. For a network,
nothing: Gauss–Newton steps with a backtracking line search gained 12, 8, 7, 4 and 3 nats in
turn on Boston's default MLP((50,)) fit (21, 13, 10, 8, 5 on Concrete; on Boston more after
10 000 Adam updates than after 3 000), so they neither converge nor tell a fit that stopped
short from one in a flat valley, and two of them left the UCI protocol's Boston scores where
they were (5 splits: MAP RMSE 2.69 → 2.71, log-likelihood −2.47 → −2.48; standard errors 0.3
and 0.2).

A loss plateau cannot tell a converged fit from one that crawls: both change by under 1e-5
nats a row over their last 10% of updates.

:func:`newton` evaluates λ² and the Gauss–Newton step δ = H⁻¹g from the factor the
evidence update already computes (dense Cholesky of H, or the Cholesky of the m × m
Woodbury dual), so the check costs one gradient over the training rows.
"""

from __future__ import annotations

import os
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from bayesreg.priors import log_prior

# the evidence's own resolution: a log evidence off by under 1 nat (a Bayes factor under e)
# is "not worth more than a bare mention" on Jeffreys' scale
NATS_SHORT = 1.0


def neg_log_joint(model, unravel, prior, beta, X, y, seen, tasks: int):
    """``L(v)``: the negative log joint at the flat weights v over every training row,
    L = Σᵢ βₜ seenᵢₜ (yᵢₜ − fₜ(xᵢ))²/2 − log p(φ), up to a constant. ``seen`` (N,) or (N, T)
    is 1 for a real, observed label and 0 for padding or a missing one; ``beta`` = 1/σ²
    (or (T,) per task).

    Examples
    --------
    >>> import bayesreg as br
    >>> X, y, seen = jnp.ones((2, 1)), jnp.array([1.0, 3.0]), jnp.ones(2)
    >>> flat = jnp.zeros(2)  # weight 0, bias 0: residuals 1 and 3, flat prior
    >>> unravel = lambda v: {"weights": [v[:1].reshape(1, 1)], "biases": [v[1:]]}
    >>> prior = {"weights": br.Flat(), "biases": br.Flat()}
    >>> float(neg_log_joint(br.Linear(), unravel, prior, 1.0, X, y, seen, 0)(flat))
    5.0
    """
    def value(v):
        params = unravel(v)
        out = model.apply(params, X)
        f = out[:, :tasks] if tasks else out[:, 0]
        r = jnp.where(seen > 0, y - f, 0.0)
        return 0.5 * jnp.sum(beta * seen * r**2) - log_prior(prior, params)

    return value


def newton(g, chol, *, dual=None) -> tuple[jax.Array, jax.Array]:
    """(λ² = gᵀH⁻¹g, the Gauss–Newton step δ = H⁻¹g) from a Cholesky factor L.

    Dense (``dual`` None): H = LLᵀ, so λ² = ‖L⁻¹g‖². Dual (``dual`` = (Jw (m, P), d (P,)),
    the weighted Jacobian rows and the prior's precision): L factors
    M = Σ + Jw D⁻¹ Jwᵀ, and by Woodbury H⁻¹ = D⁻¹ − D⁻¹Jwᵀ M⁻¹ Jw D⁻¹, so with
    u = L⁻¹ Jw D⁻¹ g, λ² = Σ gᵢ²/dᵢ − ‖u‖² and δ = (g − Jwᵀ L⁻ᵀ u) / d.

    Examples
    --------
    >>> H = jnp.array([[2.0, 0.5], [0.5, 1.0]]); g = jnp.array([1.0, -1.0])
    >>> lam2, step = newton(g, jnp.linalg.cholesky(H))
    >>> round(float(lam2), 5), round(float(g @ jnp.linalg.solve(H, g)), 5)
    (2.28571, 2.28571)
    """
    solve = jax.scipy.linalg.solve_triangular
    if dual is None:
        u = solve(chol, g, lower=True)
        return jnp.sum(u**2), solve(chol.T, u, lower=False)
    Jw, d = dual
    u = solve(chol, Jw @ (g / d), lower=True)
    return jnp.sum(g**2 / d) - jnp.sum(u**2), (g - Jw.T @ solve(chol.T, u, lower=False)) / d


POLISH_STEPS = 1  # Newton steps at the end of a linear model's fit with evidence updates
STEP_FRACTIONS = 0.5 ** np.arange(6)  # the fractions of a Gauss–Newton step tried


def polish_steps(objective, watch: bool) -> int:
    """Gauss–Newton steps to take at the end of training: ``POLISH_STEPS`` for a model linear
    in its parameters that minimised the plain negative log joint (its GGN is the Hessian, so
    the step is Newton's and lands on the mode the evidence assumes); none for a network,
    whose Gauss–Newton steps gained 3–12 nats each on Boston without converging and left the
    test scores where they were (:mod:`bayesreg.training.convergence`), none where validation
    rows choose the weights (early stopping stops short of the mode on purpose) or the
    objective is another one (noise injection, augmentation, the latent density).

    Examples
    --------
    >>> import bayesreg as br
    >>> polish_steps(br.MAP().objective(br.Linear()), watch=False)
    1
    >>> polish_steps(br.MAP().objective(br.MLP((8,))), watch=False)
    0
    """
    plain = not objective.noise and objective.augment is None and not objective.latent
    linear = getattr(objective.model, "linear_in_params", False)
    return POLISH_STEPS if plain and linear and not watch else 0


def polished(hook, steps: int, h, model, likelihood, prior, state, X, y, key, y_std, mask):
    """(state, (λ², the nats each step gained)): ``steps`` Gauss–Newton steps φ ← φ − H⁻¹g
    at the hook's hyperparameters ``h``, each with a backtracking line search and kept only
    where it lowers the negative log joint, then the Newton decrement λ² at the weights
    returned (:mod:`bayesreg.training.convergence`). On a linear-in-parameters model the
    GGN is the Hessian and one step lands on the mode."""
    lik, pri = hook.bind(h, likelihood, prior)
    flat, unravel = ravel_pytree(state["params"])
    seen = mask if y.ndim == 1 else mask[:, None] * (~jnp.isnan(y)).astype(mask.dtype)
    beta = 1.0 / jnp.square(lik.noise_std({}))
    loss = neg_log_joint(model, unravel, pri, beta, X, y, seen,
                         y.shape[1] if y.ndim == 2 else 0)

    def measure(flat):
        return hook.update(h, model, likelihood, prior, unravel(flat), X, y, key, y_std, mask,
                           newton=True)[1]

    gains = []
    for _ in range(steps):
        step = measure(flat).step
        # a backtracking line search, evaluated at once: the best of δ, δ/2, …, δ/2^(k−1)
        # (NaN never compares below: a non-finite candidate is never taken)
        candidates = flat - STEP_FRACTIONS[:, None].astype(flat.dtype) * step
        values = jax.vmap(loss)(candidates)
        best = jnp.argmin(jnp.where(jnp.isnan(values), jnp.inf, values))
        gain = loss(flat) - values[best]
        flat = jnp.where(gain > 0, candidates[best], flat)
        gains.append(jnp.maximum(gain, 0.0))
    return dict(state, params=unravel(flat)), (measure(flat).decrement, jnp.stack(gains))


def _user_stacklevel() -> int:
    """The ``stacklevel`` of the first frame outside the bayesreg package, for a warning
    raised by the caller of this function: the user's line, however deep the method."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame, level = sys._getframe(1), 1  # the caller's frame is stacklevel 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def check(trace: dict, fix: str) -> None:
    """A ``UserWarning`` naming ``fix`` when a linear-in-parameters fit with evidence updates
    ended more than ``NATS_SHORT`` above the mode of its objective after its Newton step
    (λ²/2 of ``trace["newton_decrement"]``; every member of an ensemble is checked): the
    step can fall short where the working precision cannot represent the mode (float32 and
    a Hessian with a condition number near 1e7), or where the curvature could not be factored
    at all (λ² not finite: no step was taken).

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     check({"newton_decrement": np.array(2e-11)}, "standardise")  # at the mode
    ...     check({"newton_decrement": np.array(8.8)}, "standardise")  # 4.4 nats short
    >>> [str(w.message)[:40] for w in caught]
    ['the training ended 4.4 nats above the mo']
    """
    if "newton_decrement" not in trace:
        return
    short = np.asarray(trace["newton_decrement"], float) / 2
    many = short.size > 1
    if not np.all(np.isfinite(short)):
        members = f" ({int(np.sum(~np.isfinite(short)))} of {short.size} members)" if many \
            else ""
        warnings.warn(
            f"no Newton step was taken at the end of training{members}: the curvature "
            "βG + diag(α) could not be factored in the working precision, so the weights are "
            "where the optimiser left them, not at the mode the learned σ and prior scales "
            f"assume. Fix it: {fix}", UserWarning, stacklevel=_user_stacklevel())
        return
    if not np.any(short > NATS_SHORT):
        return
    members = f" ({int(np.sum(short > NATS_SHORT))} of {short.size} members)" if many else ""
    warnings.warn(
        f"the training ended {float(np.max(short)):.3g} nats above the mode of its "
        f"objective{members}, after a Newton step. The σ and prior scales the evidence "
        f"learned, and a Laplace posterior, assume the mode. Fix it: {fix}", UserWarning,
        stacklevel=_user_stacklevel())
