"""The training engine's hooks: the collector of iterates and a caller's optimiser state."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import bayesreg as br
from bayesreg.priors import as_prior_spec
from bayesreg.problem import Problem
from bayesreg.training.loop import train_compiled
from bayesreg.training.swag_phase import IterateMoments, RatesState, SGDPhase


@dataclasses.dataclass(frozen=True)
class Stack:
    """Keeps every collected iterate: row i is the i-th (K rows)."""

    every: int
    count: int

    def init(self, params):
        flat, _ = ravel_pytree(params)
        return jnp.zeros((self.count, flat.shape[0]), flat.dtype)

    def update(self, acc, params, i):
        return acc.at[i].set(ravel_pytree(params)[0])


def _setup(likelihood=None):
    X, y = br.datasets.gap_example(n=30)
    lik = likelihood or br.GaussianLikelihood(0.1)
    problem = Problem(br.MLP((4,)), lik, as_prior_spec(br.Gaussian(1.0)), X.astype(np.float32),
                      y.astype(np.float32), jax.random.key(0))
    method = br.MAP(optimizer="sgd", lr=0.01, batch_size=8, epochs=12).resolved(problem.model)
    epochs, per_epoch, batch = method.plan(problem.n)
    assert (epochs, per_epoch, batch) == (12, 3, 8)  # 12 epochs of 3 mini-batches
    empty = (jnp.zeros((0, 1)), jnp.zeros((0,)))
    args = (method.objective(problem.model), method, epochs, per_epoch, batch, lik,
            problem.prior, problem.init_state(jax.random.key(1)), jnp.asarray(problem.X),
            jnp.asarray(problem.y), jax.random.key(2), *empty)
    return args


def test_a_collector_sees_the_iterates_of_the_loop_without_it():
    args = _setup()
    plain, _ = train_compiled(*args)
    state, trace = train_compiled(*args, collect=Stack(every=3, count=4))
    stack = np.asarray(trace["collected"])
    final = np.asarray(ravel_pytree(state["params"])[0])
    # collecting changes nothing: the same keys, the same updates (the nesting of the scans
    # may change XLA's fusion, so float32 rounding, not bit equality)
    np.testing.assert_allclose(final, ravel_pytree(plain["params"])[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(stack[-1], final)  # the last round ends the loop
    assert trace["losses"].shape == (36,)  # 12 epochs × 3 updates, as without a collector
    # four distinct iterates, each after 3 more epochs
    assert len({row.tobytes() for row in stack}) == 4

    # SWAG's moments of the same iterates: Welford's mean and variance and the deviations
    _, moments = train_compiled(*args, collect=IterateMoments(every=3, rank=4))
    mean, m2, D = (np.asarray(a) for a in moments["collected"])
    np.testing.assert_allclose(mean, stack.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m2 / 4, stack.var(0), rtol=1e-3, atol=1e-9)
    running = np.cumsum(stack, 0) / np.arange(1, 5)[:, None]  # θ̄ₖ after the k-th iterate
    np.testing.assert_allclose(D, stack - running, rtol=1e-4, atol=1e-6)


def test_a_collector_and_a_hook_are_refused_together_and_rounds_must_divide():
    args = _setup()
    with pytest.raises(ValueError, match="must divide"):
        train_compiled(*args, collect=Stack(every=5, count=2))
    hook = br.MAP().evidence_hook  # any hook object: the check comes before it is used
    with pytest.raises(ValueError, match="not both"):
        train_compiled(*args, collect=Stack(every=3, count=4), hook=hook)


def test_the_loop_starts_from_the_callers_optimiser_state():
    """SGD with per-parameter rates carried in the optimiser state: a rate of 0 freezes its
    parameter, so the learned noise σ stays put while the weights move."""
    args = list(_setup(br.GaussianLikelihood()))  # σ learned jointly: θ = {"log_noise"}
    state0 = args[7]
    phase = SGDPhase(momentum=0.0, cycle=None, progress_bar=False)
    args[1] = phase
    zeros = jax.tree_util.tree_map(jnp.zeros_like, state0)
    rates = {"params": jax.tree_util.tree_map(lambda a: jnp.full_like(a, 0.01),
                                              state0["params"]),
             "theta": jax.tree_util.tree_map(jnp.zeros_like, state0["theta"])}
    state, _ = train_compiled(*args, opt_state0=RatesState(rates, zeros, jnp.zeros((), jnp.int32)))
    np.testing.assert_array_equal(state["theta"]["log_noise"], state0["theta"]["log_noise"])
    moved = ravel_pytree(state["params"])[0] - ravel_pytree(state0["params"])[0]
    assert np.abs(np.asarray(moved)).max() > 1e-3
    # without the caller's state every rate is 1: σ moves too
    free, _ = train_compiled(*args)
    assert np.asarray(free["theta"]["log_noise"]) != np.asarray(state0["theta"]["log_noise"])


def test_one_batch_a_unit_smaller_than_the_rows_stays_a_mini_batch():
    """MAP(batch_size=700) on 1 000 rows plans one batch of 700 a unit. The rows were padded
    as for a full batch and the batch set to the padded 1 024 rows, so every update used
    every row: the fit equalled the full-batch one. Now the batch is 700 rows and the rows
    are left as they are; a plan whose batch holds every row is still padded."""
    from bayesreg.training.loop import bucketed

    X, y = np.zeros((1000, 2), np.float32), np.zeros(1000, np.float32)
    *_, mask, _, _, _, batch = bucketed(X, y, X[:0], y[:0], 1, 700)
    assert mask is None and batch == 700
    Xp, _, mask, _, _, _, batch = bucketed(X, y, X[:0], y[:0], 1, 1000)
    assert batch == Xp.shape[0] == 1024 and float(mask.sum()) == 1000
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1000, 2)).astype(np.float32)
    y = X @ np.array([1.0, -1.0], np.float32) + rng.standard_normal(1000).astype(np.float32)
    kw = {"prior": br.Gaussian(1.0), "likelihood": br.GaussianLikelihood(1.0)}
    mini = br.fit(br.Linear(), X, y, method=br.MAP(batch_size=700, steps=50, lr=0.1), **kw)
    full = br.fit(br.Linear(), X, y, method=br.MAP(steps=50, lr=0.1), **kw)
    assert not np.allclose(mini.params["weights"][0], full.params["weights"][0], atol=1e-6)
