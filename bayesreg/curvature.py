r"""Curvature of a negative log joint, written once for the Laplace approximation, last-layer
Laplace and the evidence update (:mod:`bayesreg.training.evidence`).

As in laplace-torch's curvature classes, a *backend* says which curvature and its methods say
which structure: ``full(θ)`` (P × P) or ``diag(θ)`` (P,); :class:`Kron` holds the Kronecker
factors of a last layer (KFAC).

=====================  ===================================  ==================================
backend                ``full``                             ``diag``
=====================  ===================================  ==================================
``Hessian(loss)``      ∇²L(θ)                               its diagonal
``GGN(apply, X, …)``   Σₙ Jₙᵀ Λₙ Jₙ                          Σₙ diag(Jₙᵀ Λₙ Jₙ)
``Kron(A, B)``         A ⊗ B                                diag(A) ⊗ diag(B)
=====================  ===================================  ==================================

Jₙ = ∂f(xₙ)/∂θ (K × P) is the Jacobian of row n's K outputs and Λₙ = ∂²(−log p(yₙ | f))/∂f²
at f(xₙ) (K × K; Λₙ = I, the Gauss–Newton matrix of ½‖f − y‖², when no likelihood is given).
The GGN is positive semi-definite even where a network's Hessian is not (when each Λₙ is:
a likelihood whose Hessian in its outputs is indefinite, the heteroscedastic Gaussian's in
(f, log σ), gives its Fisher information instead, ``output_curvature``), and equals the
Hessian where f is linear in θ and Λₙ is the Hessian. A prior's curvature is added by the
caller: dense by ``Hessian(neg_log_prior)``, or :func:`prior_diag` for a prior that
factorises over scalars.

Who calls what: ``LaplaceApprox`` :func:`latent` (its whole latent state: GGN or Hessian for
the weights, the exact Hessian for log σ); last-layer Laplace :func:`last_layer` (the exact
Hessian, or KFAC, of a Gaussian last layer); the evidence update ``GGN.jacobian`` with
:func:`gram` up to ``DENSE_MAX`` parameters and the Jacobian's m × m dual above.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from bayesreg.latent import latent_log_joint, latent_log_prior
from bayesreg.likelihoods import GaussianLikelihood


class Curvature(Protocol):
    """What every backend offers: the curvature at θ (flat), dense or its diagonal."""

    def full(self, theta) -> jax.Array: ...

    def diag(self, theta) -> jax.Array: ...


@dataclasses.dataclass(frozen=True)
class Hessian:
    """The exact Hessian ∇²L of a scalar ``loss(θ)``.

    Examples
    --------
    >>> h = Hessian(lambda t: jnp.sum(t**4))
    >>> h.full(jnp.array([1.0, 2.0])).tolist(), h.diag(jnp.array([1.0, 2.0])).tolist()
    ([[12.0, 0.0], [0.0, 48.0]], [12.0, 48.0])
    """

    loss: Callable

    def full(self, theta) -> jax.Array:
        return jax.hessian(self.loss)(theta)

    def diag(self, theta) -> jax.Array:
        return jnp.diag(self.full(theta))  # exact for any loss; P × P work


@dataclasses.dataclass(frozen=True)
class GGN:
    """The generalised Gauss–Newton matrix Σₙ Jₙᵀ Λₙ Jₙ of −Σₙ log p(yₙ | f(xₙ; θ)).

    Parameters
    ----------
    apply : callable
        ``apply(θ, X) -> (N, K)``: the outputs as a function of the flat parameters θ.
    X : array (N, D)
        The rows; one Jacobian row block per row (a ``vmap`` of reverse mode over rows).
    y : array (N, …), optional
        The targets, for Λₙ.
    nll : callable, optional
        ``nll(f_row (K,), y_row) -> scalar``, the negative log likelihood of one row;
        Λₙ is its Hessian in f. None: Λₙ = I.
    fisher : callable, optional
        ``fisher(outputs (N, K), y) -> Λ (N, K, K)``, used instead of the Hessian of
        ``nll`` where that is not positive semi-definite: a likelihood's
        ``output_curvature`` (the heteroscedastic Gaussian's Fisher in (f, log σ)).

    Examples
    --------
    A linear model f = Xθ with Gaussian noise σ = 0.5: the GGN is XᵀX/σ².

    >>> X = jnp.array([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]])
    >>> ggn = GGN(lambda t, x: (x @ t)[:, None], X, jnp.zeros(3),
    ...           lambda f, y: 0.5 * jnp.sum((f - y) ** 2) / 0.25)
    >>> bool(jnp.allclose(ggn.full(jnp.zeros(2)), X.T @ X / 0.25))
    True
    >>> ggn.diag(jnp.zeros(2)).tolist()
    [12.0, 20.0]
    """

    apply: Callable
    X: Any
    y: Any = None
    nll: Callable | None = None
    fisher: Callable | None = None

    def jacobian(self, theta) -> jax.Array:
        """J (N, K, P): ∂f(xₙ)/∂θ for every row."""

        def row(t, x):
            return self.apply(t, x[None])[0]

        return jax.vmap(jax.jacrev(row), in_axes=(None, 0))(theta, self.X)

    def output_hessian(self, theta) -> jax.Array | None:
        """Λ (N, K, K): the Hessian of each row's negative log likelihood in its outputs
        (None for Λₙ = I), or ``fisher`` when given."""
        if self.fisher is not None:
            return self.fisher(self.apply(theta, self.X), self.y)
        if self.nll is None:
            return None
        return jax.vmap(jax.hessian(self.nll))(self.apply(theta, self.X), self.y)

    def full(self, theta) -> jax.Array:
        return gram(self.jacobian(theta), self.output_hessian(theta))

    def diag(self, theta) -> jax.Array:
        return gram_diag(self.jacobian(theta), self.output_hessian(theta))


@dataclasses.dataclass(frozen=True)
class Kron:
    """A ⊗ B (Kronecker factors, KFAC): the curvature of a layer f = Wᵀφ over θ = vec W
    (row by row) is Σₙ (φₙφₙᵀ) ⊗ Λₙ ≈ (Σₙ φₙφₙᵀ) ⊗ (1/N)Σₙ Λₙ, exact when every Λₙ is equal.

    Examples
    --------
    >>> Kron(np.eye(2), np.array([[2.0]])).full().tolist()
    [[2.0, 0.0], [0.0, 2.0]]
    """

    A: np.ndarray
    B: np.ndarray

    def full(self) -> np.ndarray:
        return np.kron(self.A, self.B)

    def diag(self) -> np.ndarray:
        return np.kron(np.diag(self.A), np.diag(self.B))


def gram(J, lam=None) -> jax.Array:
    """Σₙ Jₙᵀ Λₙ Jₙ from J (N, K, P) or (N, P) and Λ (N, K, K) (None: Λₙ = I).

    Examples
    --------
    >>> gram(jnp.array([[1.0, 2.0]])).tolist()
    [[1.0, 2.0], [2.0, 4.0]]
    """
    if lam is None:
        J2 = J.reshape(-1, J.shape[-1])
        return J2.T @ J2
    return jnp.einsum("nkp,nkl,nlq->pq", J, lam, J)


def gram_diag(J, lam=None) -> jax.Array:
    """The diagonal of :func:`gram` without forming it (P values).

    Examples
    --------
    >>> gram_diag(jnp.array([[1.0, 2.0], [3.0, 0.0]])).tolist()
    [10.0, 4.0]
    """
    if lam is None:
        return jnp.sum(J.reshape(-1, J.shape[-1]) ** 2, axis=0)
    return jnp.einsum("nkp,nkl,nlp->p", J, lam, J)


def prior_diag(neg_log_prior: Callable, theta) -> jax.Array:
    """diag ∇²(−log p(θ)) of a prior that factorises over scalars: its Hessian is diagonal, so
    one Hessian-vector product with a vector of ones returns it.

    Examples
    --------
    >>> prior_diag(lambda t: 0.5 * jnp.sum(t**2 / jnp.array([1.0, 4.0])), jnp.ones(2)).tolist()
    [1.0, 0.25]
    """
    return jax.jvp(jax.grad(neg_log_prior), (theta,), (jnp.ones_like(theta),))[1]


def largest_eigenvalue(hvp: Callable, v0, iters: int = 30) -> jax.Array:
    """The eigenvalue of largest magnitude of a symmetric matrix known only through its
    products ``hvp(u)`` (a Hessian-vector product: no P × P matrix), by ``iters`` power
    iterations from ``v0``; traceable (a ``fori_loop``). At a mode the Hessian is positive
    semi-definite and this is its largest eigenvalue.

    Examples
    --------
    >>> A = jnp.diag(jnp.array([3.0, 1.0, 0.5]))
    >>> round(float(largest_eigenvalue(lambda u: A @ u, jnp.ones(3))), 4)
    3.0
    """
    def body(_, u):
        w = hvp(u)
        return w / jnp.maximum(jnp.linalg.norm(w), jnp.finfo(w.dtype).tiny)

    u = jax.lax.fori_loop(0, iters, body, v0 / jnp.linalg.norm(v0))
    return jnp.vdot(u, hvp(u))


def index_of(state, key: str) -> np.ndarray:
    """Positions of ``state[key]``'s leaves in ``ravel_pytree(state)`` (leaf order).

    Examples
    --------
    >>> index_of({"params": jnp.zeros(2), "theta": jnp.zeros(1)}, "theta").tolist()
    [2]
    """
    paths, _ = jax.tree_util.tree_flatten_with_path(state)
    marks = [np.full(int(jnp.size(leaf)), path[0].key == key) for path, leaf in paths]
    return np.flatnonzero(np.concatenate(marks)) if marks else np.zeros(0, int)


def latent(kind: str, model, lik, prior, unravel, X, y) -> Callable:
    """H(v) over the flat latent state v = ravel({"params", "theta", …}) of the negative log
    joint −log p(v, y): ``kind="full"`` its exact Hessian; ``"ggn"`` the GGN plus the prior's
    Hessian for the weights, the exact Hessian for the other coordinates (log σ), and zero
    cross-terms (their Fisher information vanishes).

    Examples
    --------
    >>> import bayesreg as br
    >>> model, lik = br.Linear(), br.GaussianLikelihood(0.5)
    >>> X = jnp.array([[0.0], [1.0], [2.0]]); y = jnp.zeros(3)
    >>> state = {"params": model.init(jax.random.key(0), 1, 1), "theta": {}}
    >>> v, unravel = ravel_pytree(state)
    >>> prior = {"weights": br.Gaussian(1.0), "biases": br.Gaussian(1.0)}
    >>> H = latent("ggn", model, lik, prior, unravel, X, y)(v)
    >>> bool(jnp.allclose(H, latent("full", model, lik, prior, unravel, X, y)(v)))
    True
    """

    def loss(v):
        return -latent_log_joint(model, lik, prior, unravel(v), X, y)

    if kind == "full":
        return Hessian(loss).full

    def ggn(v):
        z = unravel(v)
        pidx = index_of(z, "params")
        oidx = np.setdiff1d(np.arange(v.size), pidx)
        params_flat, unravel_params = ravel_pytree(z["params"])

        def nll_row(f_row, y_row):
            return -lik.log_prob(y_row[None], f_row[None], z["theta"])[0]

        def neg_log_prior(pf):
            return -latent_log_prior(lik, prior, dict(z, params=unravel_params(pf)))

        curv = getattr(lik, "output_curvature", None)  # where the Hessian is indefinite
        fisher = None if curv is None else (lambda out, rows_y: curv(rows_y, out, z["theta"]))
        H_pp = (GGN(lambda pf, rows: model.apply(unravel_params(pf), rows), X, y,
                    nll_row, fisher).full(params_flat)
                + Hessian(neg_log_prior).full(params_flat))
        H = jnp.zeros((v.size, v.size), v.dtype).at[np.ix_(pidx, pidx)].set(H_pp)
        if oidx.size:
            H = H.at[np.ix_(oidx, oidx)].set(
                Hessian(lambda of: loss(v.at[oidx].set(of))).full(v[oidx]))
        return H

    return ggn


def last_layer(kind: str, phi, y, sigma, k: int, prec0, m0, theta) -> np.ndarray:
    """H over a Gaussian last layer θ = [vec W, b] with design Φ̃ = [φ, 1] (N, H + 1), noise σ
    and prior N(m₀, diag(Λ₀)⁻¹): the exact Hessian of its negative log joint (``"full"``,
    ``"ggn"``: equal, f being linear in θ) or the KFAC form A ⊗ B + Λ₀ with A = Φ̃ᵀΦ̃ and
    B = (1/N)Σₙ Λₙ (``"kron"``; exact for a Gaussian likelihood, every Λₙ being 1/σ²).

    Examples
    --------
    >>> phi = np.column_stack([np.linspace(-1, 1, 5), np.ones(5)]); y = np.zeros(5)
    >>> args = (phi, y, 0.5, 1, np.ones(2), np.zeros(2), np.zeros(2))
    >>> bool(np.allclose(last_layer("kron", *args), last_layer("full", *args)))
    True
    """
    lik = GaussianLikelihood(sigma)
    n_hidden = phi.shape[1] - 1
    with jax.enable_x64(True):
        phi64, y64 = jnp.asarray(phi), jnp.asarray(y)

        def out(t, rows=phi64):
            w = t[:n_hidden * k].reshape(n_hidden, k)
            return rows[:, :-1] @ w + t[n_hidden * k:]

        def nll_row(f_row, y_row):
            return -lik.log_prob(y_row[None], f_row[None], {})[0]

        if kind in ("full", "ggn"):
            def loss(t):
                nll = -jnp.sum(lik.log_prob(y64, out(t), {}))
                return nll + 0.5 * jnp.sum(prec0 * (t - m0) ** 2)

            return np.asarray(Hessian(loss).full(jnp.asarray(theta)), np.float64)

        lam = GGN(out, phi64, y64, nll_row).output_hessian(jnp.asarray(theta))  # (N, K, K)
        B = np.asarray(jnp.mean(lam, axis=0), np.float64)
    return Kron(phi.T @ phi, B).full() + np.diag(prec0)
