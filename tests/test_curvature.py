"""The curvature module (bayesreg/curvature.py): each backend against an independent
computation, in float64 — a hand-written NumPy network, its Jacobian by central finite
differences, and the likelihood's output Hessian written out by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import bayesreg as br
from bayesreg import curvature


def _numpy_mlp(params, X):
    """tanh MLP with one hidden layer, in NumPy (no JAX)."""
    (w1, w2), (b1, b2) = params["weights"], params["biases"]
    return np.tanh(X @ w1 + b1) @ w2 + b2


def _fd_jacobian(unravel, v, X, eps=1e-6):
    """J (N, K, P) of the NumPy network by central differences over the flat parameters."""
    def f(u):
        with jax.enable_x64(True):  # unravel is JAX's: keep every digit of u
            p = jax.tree_util.tree_map(np.asarray, unravel(jnp.asarray(u, jnp.float64)))
        return _numpy_mlp(p, X)

    cols = []
    for j in range(v.size):
        e = np.zeros(v.size)
        e[j] = eps
        cols.append((f(v + e) - f(v - e)) / (2 * eps))
    return np.stack(cols, axis=-1)


def _net(k):
    """A tanh MLP (2 → 4 → k) in float64 at non-zero parameters, 7 rows."""
    with jax.enable_x64(True):
        X = np.random.default_rng(0).normal(size=(7, 2))
        model = br.MLP((4,), activation="tanh")
        params = model.init(jax.random.key(1), 2, k, dtype=jnp.float64)
        params = jax.tree_util.tree_map(lambda a: a + 0.3, params)  # non-zero biases
        v, unravel = ravel_pytree({"params": params, "theta": {}})
    return model, X, v, unravel


@pytest.fixture(scope="module")
def mlp():
    return _net(1)


@pytest.mark.parametrize("case", ["gaussian", "categorical"])
def test_ggn_is_jacobian_lambda_jacobian_plus_prior_curvature(case):
    model, X, v, unravel = _net(1 if case == "gaussian" else 3)
    scale = 0.7
    prior = {"weights": br.Gaussian(scale), "biases": br.Gaussian(scale)}
    v_np = np.asarray(v)
    J = _fd_jacobian(lambda u: unravel(u)["params"], v_np, X)  # (N, K, P)
    with jax.enable_x64(True):
        f = _numpy_mlp(jax.tree_util.tree_map(np.asarray, unravel(v)["params"]), X)
    if case == "gaussian":  # Λₙ = 1/σ²
        sigma = 0.4
        lik, y = br.GaussianLikelihood(sigma), np.linspace(-1, 1, X.shape[0])
        lam = np.full((X.shape[0], 1, 1), 1 / sigma**2)
    else:  # softmax cross-entropy: Λₙ = diag(p) − ppᵀ
        lik, y = br.Categorical(), np.arange(X.shape[0]) % 3
        p = np.exp(f - f.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        lam = np.stack([np.diag(q) - np.outer(q, q) for q in p])
    expected = np.einsum("nkp,nkl,nlq->pq", J, lam, J) + np.eye(v.size) / scale**2
    with jax.enable_x64(True):
        args = (model, lik, prior, unravel, jnp.asarray(X), jnp.asarray(y))
        H = jax.jit(curvature.latent("ggn", *args))(jnp.asarray(v_np))
        full = jax.jit(curvature.latent("full", *args))(jnp.asarray(v_np))
    np.testing.assert_allclose(np.asarray(H), expected, rtol=1e-6, atol=1e-8)
    # and not the exact Hessian, which adds the residual term Σₙ ∂ℓ/∂f ∇²fₙ
    assert np.max(np.abs(np.asarray(full) - expected)) > 1e-3


def test_diag_and_kron_agree_with_full():
    with jax.enable_x64(True):
        X = jnp.asarray(np.random.default_rng(1).normal(size=(9, 3)))
        ggn = curvature.GGN(lambda t, rows: jnp.tanh(rows @ t)[:, None], X, jnp.zeros(9),
                            lambda f, y: 0.5 * jnp.sum((f - y) ** 2) * 4.0)
        theta = jnp.array([0.3, -0.2, 0.5])
        np.testing.assert_allclose(ggn.diag(theta), jnp.diag(ggn.full(theta)), rtol=1e-12)
        h = curvature.Hessian(lambda t: jnp.sum(jnp.sin(t) * t**2))
        np.testing.assert_allclose(h.diag(theta), jnp.diag(h.full(theta)), rtol=1e-12)
    A, B = np.array([[2.0, 1.0], [1.0, 3.0]]), np.array([[1.0, 0.5], [0.5, 2.0]])
    kron = curvature.Kron(A, B)
    np.testing.assert_allclose(kron.diag(), np.diag(kron.full()))


def test_evidence_ggn_is_the_gram_matrix_of_the_row_jacobians(mlp):
    # the evidence update's G = Σₙ JₙᵀJₙ (dense) and its diagonal (above DENSE_MAX)
    model, X, v, unravel = mlp
    with jax.enable_x64(True):
        flat, unravel_p = ravel_pytree(unravel(v)["params"])
    J = _fd_jacobian(lambda u: unravel_p(u), np.asarray(flat), X)[:, 0]  # first output
    with jax.enable_x64(True):
        ggn = curvature.GGN(lambda t, rows: model.apply(unravel_p(t), rows)[:, :1],
                            jnp.asarray(X))
        Jc = ggn.jacobian(flat)[:, 0]
        np.testing.assert_allclose(curvature.gram(Jc), J.T @ J, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(curvature.gram_diag(Jc), np.sum(J**2, 0), rtol=1e-6,
                                   atol=1e-9)
