r"""A Gaussian over a network's weights, used through the network linearised at the mode.

    f(x; φ) ≈ f(x; φ*) + J(x)(φ − φ*),   J(x) = ∂f(x; φ)/∂φ at the mode φ*,

so that f(x) ~ N(f(x; φ*), J Σ Jᵀ) with Σ = L Lᵀ over ``ravel_pytree(mode)``. This is the
predictive that matches the GGN Laplace approximation (pushing sampled weights through the
nonlinear network overstates the spread along flat directions; Immer et al. 2021). It is
the :mod:`bayesreg.approximation` that :class:`~bayesreg.LaplaceApprox` leaves on networks.

A model with a second output (the log σ(x) head of a heteroscedastic likelihood) keeps that
output at the mode: the noise is the network's at φ*, the mean output is linearised.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from bayesreg.approximation import (
    FunctionDraws,
    LoadContext,
    draw_outputs,
    mode_arrays,
    mode_from_arrays,
    register,
)
from bayesreg.data.buckets import bucket

# Rows whose Jacobian (rows × P) is formed at once.
JACOBIAN_ROWS = 2048


@register
@dataclasses.dataclass(frozen=True)
class Linearization:
    """N(mode, L Lᵀ) over the flat parameters, predicted through the linearised network.

    Attributes
    ----------
    mode : pytree
        φ*, the model's parameters (no leading draw axis).
    chol_cov : ndarray (P, P)
        Lower Cholesky factor L of the covariance over ``ravel_pytree(mode)``.
    """

    mode: Any
    chol_cov: np.ndarray

    name = "linearization"

    def outputs(self, post, X, chunk_size=None) -> FunctionDraws:
        if np.ndim(post.y_train) == 2:  # T tasks: every output linearised, the same deltas
            parts = [linearized_predictive(post.model, self, post.params, X, output=t)
                     for t in range(post.y_train.shape[1])]
            mean, var_f, f_draws = (np.stack(p, axis=-1) for p in zip(*parts, strict=True))
            return FunctionDraws(f_draws, (mean, var_f))
        mean, var_f, f_draws = linearized_predictive(post.model, self, post.params, X)
        if post.likelihood.n_outputs(post.y_train) > 1:  # other heads at the mode
            mode = jax.tree_util.tree_map(lambda a: np.asarray(a)[None], self.mode)
            rest = draw_outputs(post.model, mode, X, chunk_size)[:, :, 1:]
            rest = np.broadcast_to(rest, (f_draws.shape[0], *rest.shape[1:]))
            return FunctionDraws(np.concatenate([f_draws[..., None], rest], axis=-1),
                                 (mean, var_f))
        return FunctionDraws(f_draws[..., None], (mean, var_f))

    def mean_params(self, post):
        """The Gaussian's mean: the mode φ*."""
        del post
        return self.mode

    def arrays(self) -> dict[str, np.ndarray]:
        return {**mode_arrays(self.mode), "chol_cov": np.asarray(self.chol_cov)}

    @classmethod
    def from_arrays(cls, arrays, context: LoadContext) -> Linearization:
        mode = mode_from_arrays(arrays, context, "the linearisation's mode")
        chol = arrays["chol_cov"]
        p = context.num_params
        if chol.shape != (p, p):
            raise ValueError(f"the linearisation's covariance has shape {chol.shape}; the "
                             f"model has {p} parameters")
        return cls(mode, chol)


def linearized_predictive(model, lin: Linearization, params, X, rows: int = JACOBIAN_ROWS,
                          output: int = 0):
    """(mean (N,), var_f (N,), draws (S, N)) of the network's output ``output`` linearised at
    ``lin.mode``.

    Rows are processed ``rows`` at a time, so the Jacobian held at once is rows × P.
    """
    mode = jax.tree_util.tree_map(jnp.asarray, lin.mode)
    deltas = _deltas(mode, params)  # (S, P)
    chol = jnp.asarray(lin.chol_cov, deltas.dtype)
    size = min(rows, bucket(X.shape[0]))
    out = []
    for start in range(0, X.shape[0], size):
        chunk = X[start:start + size]
        pad = size - chunk.shape[0]
        padded = np.pad(chunk, ((0, pad), (0, 0)), mode="edge")
        res = _linearized_chunk(model, mode, chol, deltas, jnp.asarray(padded), output)
        out.append([np.asarray(r)[..., : size - pad] for r in res])
    mean, var_f, draws = (np.concatenate(parts, axis=-1) for parts in zip(*out, strict=True))
    return mean, var_f, draws


@jax.jit
def _deltas(mode, params):
    mode_flat = ravel_pytree(mode)[0]
    return jax.vmap(lambda p: ravel_pytree(p)[0])(params) - mode_flat


@partial(jax.jit, static_argnums=(0, 5))
def _linearized_chunk(model, mode, chol, deltas, X, output=0):
    mode_flat, unravel = ravel_pytree(mode)

    def f(v):
        return model.apply(unravel(v), X)[:, output]

    mean, jvp_rows = f(mode_flat), jax.jacfwd(f)(mode_flat)  # (N,), (N, P)
    JL = jvp_rows @ chol
    return mean, jnp.sum(JL**2, axis=1), mean + deltas @ jvp_rows.T


