"""Newton refinement of a mode: the step Laplace takes after training so that the Gaussian
sits at the mode its curvature assumes (first-order training stops short of it in float32).

The loss and the curvature are module-level compiled programs with the data as arguments,
so a second refinement of the same shapes compiles nothing.
"""

from __future__ import annotations

import functools
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from bayesreg import curvature
from bayesreg._lazy import linalg
from bayesreg._pytree import signature
from bayesreg.data.buckets import RowMasked, pad_rows, padded_targets
from bayesreg.latent import latent_log_joint


def bucketed_newton_mode(model, lik, prior, state, X, y, kind: str, newton_steps: int):
    """:func:`newton_mode` on the rows padded to the training loop's bucketed count, the
    copies weighted 0 (:func:`bayesreg.data.buckets.padded_targets`): the same mode and
    curvature, and a new training size in the same bucket compiles no new float64 program."""
    masked = RowMasked(lik, np.ndim(y) > 1, np.dtype(y.dtype).name)
    return newton_mode(model, masked, prior, state, pad_rows(np.asarray(X)), padded_targets(y),
                       kind, newton_steps)


def newton_mode(model, lik, prior, state, X, y, kind: str, newton_steps: int):
    """Refine the mode of −log p(v, y) by Newton steps in float64; return (mode (P,), H at it
    (P, P), L(mode), steps taken, |∇L|). ``kind`` is the curvature used as the Hessian
    ("full" or "ggn", :func:`bayesreg.curvature.latent`). A step is taken only while the
    Cholesky of H succeeds and the loss does not rise. Runs in float64: call it with
    ``jax.enable_x64`` on, as the Laplace approximation does.

    Examples
    --------
    >>> import bayesreg as br
    >>> model, lik = br.Linear(), br.GaussianLikelihood(0.5)
    >>> X = np.array([[0.0], [1.0], [2.0]]); y = np.array([0.1, 1.0, 2.1])
    >>> state = {"params": model.init(jax.random.key(0), 1, 1), "theta": {}}
    >>> prior = {"weights": br.Gaussian(10.0), "biases": br.Gaussian(10.0)}
    >>> with jax.enable_x64(True):  # as br.fit runs it for LaplaceApprox
    ...     mode, H, loss, steps, grad_norm = newton_mode(model, lik, prior, state, X, y,
    ...                                                   "full", 5)
    >>> steps >= 1 and grad_norm < 1e-8
    True
    """
    state64 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), state)
    flat, _ = ravel_pytree(state64)
    X64, y64 = jnp.asarray(X, jnp.float64), jnp.asarray(y, jnp.float64)
    if lik.kind == "classification":
        y64 = jnp.asarray(y)

    # module-level programs with the data as arguments: a second fit of the same shapes
    # compiles nothing (a jit of a closure over X would compile at every fit)
    structure = signature(state64)
    value_and_grad = partial(_value_and_grad, model=model, structure=structure,
                             lik=lik, prior=prior, X=X64, y=y64)
    hessian = partial(_hessian, kind=kind, model=model, structure=structure, lik=lik,
                      prior=prior, X=X64, y=y64)
    taken = 0
    value, grad = value_and_grad(flat)
    H = np.asarray(hessian(flat))
    for _ in range(newton_steps):
        try:
            step = linalg.cho_solve(linalg.cho_factor(H), np.asarray(grad))
        except linalg.LinAlgError:
            break
        candidate = flat - step
        new_value, new_grad = value_and_grad(candidate)
        if not np.isfinite(new_value) or new_value > value:
            break
        flat, value, grad, taken = candidate, new_value, new_grad, taken + 1
        H = np.asarray(hessian(flat))
        # NumPy: a jnp reduction here compiled two programs on the first fit that stepped
        if float(np.max(np.abs(step))) < 1e-13 * (1 + float(np.max(np.abs(flat)))):
            break
    return np.asarray(flat), H, float(value), taken, float(jnp.linalg.norm(grad))


@functools.lru_cache(maxsize=64)
def _unravel(structure):
    """``unravel`` of :func:`jax.flatten_util.ravel_pytree` for states of this structure."""
    treedef, shapes = structure
    like = jax.tree_util.tree_unflatten(treedef, [jnp.zeros(s, d) for s, d in shapes])
    return ravel_pytree(like)[1]


@partial(jax.jit, static_argnames=("model", "structure"))
def _value_and_grad(v, *, model, structure, lik, prior, X, y):
    """(−log p(v, y), its gradient) at the flat latent state v."""
    unravel = _unravel(structure)
    return jax.value_and_grad(
        lambda w: -latent_log_joint(model, lik, prior, unravel(w), X, y))(v)


@partial(jax.jit, static_argnames=("kind", "model", "structure"))
def _hessian(v, *, kind, model, structure, lik, prior, X, y):
    """The curvature of −log p(v, y) at v (:func:`bayesreg.curvature.latent`)."""
    return curvature.latent(kind, model, lik, prior, _unravel(structure), X, y)(v)
