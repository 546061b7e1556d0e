import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayesreg as br


def test_gd_modified_loss_value():
    loss = lambda p: jnp.sum(jnp.sin(p) ** 2)  # noqa: E731
    p = jnp.array([0.3, -1.2])
    g = jax.grad(loss)(p)
    got = br.implicit.gd_modified_loss(loss, 0.2)(p)
    assert float(got) == pytest.approx(float(loss(p) + 0.05 * jnp.sum(g**2)), rel=1e-6)


def test_sgd_modified_loss_adds_the_batch_gradient_spread():
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.standard_normal((4, 5, 2)), jnp.float32)  # B = 4 batches of 5
    y = jnp.asarray(rng.standard_normal((4, 5)), jnp.float32)

    def batch_loss(p, b):
        Xb, yb = b
        return jnp.mean((Xb @ p - yb) ** 2)

    p, lr = jnp.array([0.5, -0.5]), 0.1
    full = lambda q: jnp.mean(jnp.stack([batch_loss(q, (X[i], y[i])) for i in range(4)]))  # noqa
    g = jax.grad(full)(p)
    spread = sum(float(jnp.sum((jax.grad(batch_loss)(p, (X[i], y[i])) - g) ** 2))
                 for i in range(4))
    expected = float(full(p) + lr / 4 * jnp.sum(g**2)) + lr / 16 * spread
    got = br.implicit.sgd_modified_loss(batch_loss, lr, (X, y))(p)
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_gradient_flow_on_the_modified_loss_tracks_gradient_descent():
    """Finite-step GD on L stays much closer to the gradient flow of L̃_GD than of L."""
    def loss(p):
        x, y = p
        return 0.5 * (x**2 - 1) ** 2 + (y - 0.5 * x**2) ** 2 + 0.2 * x * y

    # 20 steps from a steep start: the trajectory, not the shared minimum, is compared
    lr, steps = 0.02, 20
    p = jnp.array([1.6, -0.8])
    gd = p
    for _ in range(steps):
        gd = gd - lr * jax.grad(loss)(gd)

    def flow(fn, p, time, dt=1e-4):
        g = jax.grad(fn)

        def rk4(q, _):
            k1 = -g(q)
            k2 = -g(q + dt / 2 * k1)
            k3 = -g(q + dt / 2 * k2)
            k4 = -g(q + dt * k3)
            return q + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4), None

        return jax.lax.scan(rk4, p, None, length=round(time / dt))[0]

    plain = flow(loss, p, lr * steps)
    modified = flow(br.implicit.gd_modified_loss(loss, lr), p, lr * steps)
    err_plain = float(jnp.linalg.norm(plain - gd))
    err_modified = float(jnp.linalg.norm(modified - gd))
    # measured: 0.0157 for the flow of L, 0.0026 for the flow of L̃_GD
    assert err_modified < 0.3 * err_plain
