"""The lecture's update rules against direct implementations and optax's own."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bayesreg as br
from bayesreg import optim

A = jnp.array([[3.0, 0.5], [0.5, 1.0]])


def loss(p):  # a convex quadratic plus a quartic term, so the gradient is not linear
    return 0.5 * p @ A @ p + 0.1 * jnp.sum(p**4) - jnp.array([1.0, -2.0]) @ p


grad = jax.grad(loss)
P0 = jnp.array([2.0, -1.5])


def run(tx, steps=50, p=P0):
    state, out = tx.init(p), []
    for _ in range(steps):
        u, state = tx.update(grad(p), state, p)
        p = optax.apply_updates(p, u)
        out.append(p)
    return jnp.stack(out), state


def test_gd_and_sgd_are_optax_sgd():
    a, _ = run(optim.gd(0.05))
    b, _ = run(optax.sgd(0.05))
    np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_allclose(run(optim.sgd(0.05))[0], b, rtol=1e-6)


def test_momentum_is_the_lecture_rule_and_optax_with_scaled_lr():
    lr, beta = 0.1, 0.8
    got, _ = run(optim.momentum(lr, beta))
    p, m, ref = P0, jnp.zeros(2), []
    for _ in range(50):
        m = beta * m + (1 - beta) * grad(p)
        p = p - lr * m
        ref.append(p)
    np.testing.assert_allclose(got, jnp.stack(ref), rtol=1e-5, atol=1e-6)
    optax_version, _ = run(optax.sgd(lr * (1 - beta), momentum=beta))
    np.testing.assert_allclose(got, optax_version, rtol=1e-5, atol=1e-6)


def test_nesterov_tracks_the_lecture_sequence_through_the_look_ahead_point():
    lr, beta = 0.1, 0.8
    p, m, ref = P0, jnp.zeros(2), []
    for _ in range(50):
        m = beta * m + (1 - beta) * grad(p - lr * beta * m)
        p = p - lr * m
        ref.append(p)
    tx = optim.nesterov(lr, beta)
    psi, state = P0, tx.init(P0)  # m₀ = 0: the look-ahead point starts at φ₀
    for k in range(50):
        u, state = tx.update(grad(psi), state, psi)
        psi = optax.apply_updates(psi, u)
        phi = optim.nesterov_params(psi, state, lr, beta)
        np.testing.assert_allclose(phi, ref[k], rtol=1e-5, atol=1e-6)


def test_normalized_moves_every_coordinate_by_lr():
    u, _ = optim.normalized(0.1).update(jnp.array([3.0, -2.0, 5.0]), optax.EmptyState())
    np.testing.assert_allclose(u, [-0.1, 0.1, -0.1], rtol=1e-6)  # the lecture's example


def test_adam_matches_optax_with_the_same_constants():
    got, _ = run(optim.adam(0.05, beta=0.9, gamma=0.99, eps=1e-8))
    ref, _ = run(optax.adam(0.05, b1=0.9, b2=0.99, eps=1e-8))
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


def test_adam_without_bias_correction_takes_smaller_first_steps():
    lr, beta, gamma = 0.05, 0.9, 0.99
    u, _ = optim.adam(lr, beta, gamma, bias_correction=False).update(
        jnp.array([2.0]), optim.adam(lr).init(jnp.zeros(1)))
    # m = 0.2, v = 0.04: the step is α·0.2/0.2 = α·1 ... times (1−β)/√(1−γ) = 0.1/0.1
    g = 2.0
    expected = -lr * (1 - beta) * g / (np.sqrt((1 - gamma) * g**2) + 1e-8)
    assert float(u[0]) == pytest.approx(expected, rel=1e-5)
    u_bc, _ = optim.adam(lr, beta, gamma).update(jnp.array([2.0]), optim.adam(lr).init(
        jnp.zeros(1)))
    assert float(u_bc[0]) == pytest.approx(-lr, rel=1e-5)  # corrected: exactly α on step 1


def test_lecture_optimizers_drive_map():
    X, y, _ = br.datasets.linear_example(n=100, d=3)
    lik = br.GaussianLikelihood(0.5)
    prior = br.Gaussian(1.0)
    exact = br.fit(br.Linear(), X, y, method=br.Exact(), likelihood=lik,
                   prior=prior).gaussian.mean
    for tx in (optim.momentum(0.05), optim.adam(0.05)):
        post = br.fit(br.Linear(), X, y, method=br.MAP(optimizer=tx, steps=3000),
                      likelihood=lik, prior=prior)
        got = np.append(post.params["weights"][0][0, :, 0], post.params["biases"][0][0])
        np.testing.assert_allclose(got, exact, atol=2e-3)
