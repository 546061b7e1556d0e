"""The Langevin step as an optax transform (bayesreg.training.langevin) against optax's SGD
and the noise it must add."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from bayesreg.training import langevin as lg


def quadratic_grad(params):
    """∇ of ½‖w − 1‖² + ½ b²."""
    return {"w": params["w"] - 1.0, "b": params["b"]}


def run(tx, params, steps):
    state = tx.init(params)
    for _ in range(steps):
        updates, state = tx.update(quadratic_grad(params), state, params)
        params = optax.apply_updates(params, updates)
    return params, state


@pytest.mark.parametrize("momentum", [0.0, 0.7])
def test_without_noise_it_is_sgd_with_momentum(momentum):
    # noise off (or temperature 0): v ← m·v − η g is optax's SGD trace, −η (g + m·trace)
    params = {"w": jnp.array([3.0, -2.0]), "b": jnp.array(0.5)}
    eta = 0.1
    ours, state = run(lg.langevin(eta, momentum, key=jax.random.key(0), noise=False),
                      params, 25)
    cold, _ = run(lg.langevin(eta, momentum, key=jax.random.key(0), temperature=0.0),
                  params, 25)
    sgd, _ = run(optax.sgd(eta, momentum=momentum or None), params, 25)
    for a, b, c in zip(jax.tree_util.tree_leaves(ours), jax.tree_util.tree_leaves(cold),
                       jax.tree_util.tree_leaves(sgd), strict=True):
        np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b, c, rtol=1e-5, atol=1e-6)
    assert int(state.count) == 25


def test_key_lives_in_the_state_and_step_t_draws_from_fold_in():
    key = jax.random.key(7)
    tx = lg.langevin(0.5, key=key)
    zero = {"w": jnp.zeros(4)}
    state0 = tx.init(zero)
    assert int(state0.count) == 0
    assert np.array_equal(jax.random.key_data(state0.key), jax.random.key_data(key))
    v1, state1 = tx.update(zero, state0)
    v2, state2 = tx.update(zero, state1)
    assert int(state1.count) == 1 and int(state2.count) == 2
    assert not np.allclose(v1["w"], v2["w"])  # each step fresh noise
    # a step is a function of its state: the same state gives the same noise, and step 1's
    # noise is N(0, 2η) from split(fold_in(key, 1))[1] (zero gradient, no momentum)
    again, _ = tx.update(zero, state1)
    np.testing.assert_array_equal(again["w"], v2["w"])
    noise_key = jax.random.split(jax.random.fold_in(key, 1))[1]
    xi = jax.random.normal(jax.random.split(noise_key, 1)[0], (4,))
    np.testing.assert_allclose(v2["w"], np.sqrt(2 * 0.5) * xi, rtol=1e-6)


def test_noise_variance_is_two_eta_times_one_minus_m_times_temperature():
    # zero gradient and zero velocity: one update is N(0, 2(1 − m)ηT) in every coordinate.
    # 40 000 coordinates estimate a variance to a relative sd of √(2/40 000) = 0.7%: 4% is
    # more than 5 sds, and far below a factor (1 − m) = 0.6 or T = 0.5 left out
    eta, m, temp = 0.02, 0.4, 0.5
    tx = lg.langevin(eta, m, key=jax.random.key(3), temperature=temp)
    zero = {"w": jnp.zeros(40_000)}
    v, _ = tx.update(zero, tx.init(zero))
    np.testing.assert_allclose(np.var(v["w"]), 2 * (1 - m) * eta * temp, rtol=0.04)


def test_schedules_and_the_noise_switch_are_read_at_the_step_count():
    # η_t from a schedule, noise only from step 2 on (cSG-MCMC's exploration, then sampling)
    tx = lg.langevin(lg.cosine_cycles(0.4, 4), key=jax.random.key(0),
                     noise=lambda t: t >= 2)
    params = {"w": jnp.ones(3)}
    state = tx.init(params)
    grads = {"w": jnp.ones(3)}
    expected = [0.4, 0.4 * 0.5 * (np.cos(np.pi / 4) + 1)]
    for eta in expected:  # noise-free steps: exactly −η_t g
        v, state = tx.update(grads, state)
        np.testing.assert_allclose(v["w"], -eta * np.ones(3), rtol=1e-6)
    v, state = tx.update({"w": jnp.zeros(3)}, state)  # step 2: noise, no gradient
    assert np.all(v["w"] != 0)
