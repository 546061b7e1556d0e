"""The pooled heads' EM (bayesreg.training.heads) against its own fixed-point equations,
computed independently, and when it applies."""

import numpy as np
import pytest

import bayesreg as br
from bayesreg.training import heads


def test_the_em_ends_at_its_fixed_point():
    """At convergence every head is the ridge solution of its labelled rows under
    N(0, diag(Σ, s_b²)) (solved here as an augmented least-squares problem) and Σ is the
    M-step of those heads' posteriors."""
    rng = np.random.default_rng(0)
    n, h, tasks = 60, 5, 3
    phi = np.c_[rng.normal(size=(n, h)), np.ones(n)]
    y = phi @ rng.normal(size=(h + 1, tasks)) + 0.1 * rng.normal(size=(n, tasks))
    y[10:, 2] = np.nan  # task 2: 10 labels
    sigma, scale_w, scale_b = np.array([0.1, 0.2, 0.1]), 1.5, 2.0
    means, cov, _ = heads._em(phi, y, sigma, scale_w, scale_b)
    prior_cov = np.zeros((h + 1, h + 1))
    prior_cov[:h, :h], prior_cov[h, h] = cov, scale_b**2
    root = np.linalg.cholesky(np.linalg.inv(prior_cov)).T  # rootᵀ root = prior precision
    second = heads.POOL_PSEUDO_TASKS * scale_w**2 * np.eye(h)
    for t in range(tasks):
        seen = ~np.isnan(y[:, t])
        a = np.vstack([phi[seen] / sigma[t], root])
        b = np.r_[y[seen, t] / sigma[t], np.zeros(h + 1)]
        ridge = np.linalg.lstsq(a, b, rcond=None)[0]
        # the heads are computed from the Σ of the last step, which moved by ≤ TOLERANCE
        np.testing.assert_allclose(means[:, t], ridge, rtol=1e-5, atol=1e-8)
        post_cov = np.linalg.inv(a.T @ a)
        second += (np.outer(ridge, ridge) + post_cov)[:h, :h]
    np.testing.assert_allclose(cov, second / (heads.POOL_PSEUDO_TASKS + tasks), rtol=1e-4)


def _data():
    X, Y, _, _ = br.datasets.multitask_example(n=80, seed=1)
    mask = np.zeros(Y.shape, bool)
    mask[12:, 2] = True
    return X, np.ma.masked_array(Y, mask)


@pytest.mark.slow  # three network fits: ~10 s, in the slow set to keep the default suite short
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_heads_are_pooled_only_when_the_prior_is_learned(tmp_path):
    X, Y = _data()
    net, method = br.MLP((8,), activation="tanh"), br.MAP(steps=300)
    learned = br.fit(net, X, Y, method=method)
    given = br.fit(net, X, Y, method=method, prior=br.Gaussian(1.0))
    single = br.fit(net, X, Y[:, 0].filled(), method=method)
    assert learned.diagnostics["heads_prior_variances"].shape == (6,)
    assert "heads_prior_variances" not in given.diagnostics
    assert "heads_prior_variances" not in single.diagnostics
    # the returned heads are the EM's posterior means on the trained body
    scales = learned.diagnostics["prior_scales"]
    problem_y = (Y.filled(np.nan) - learned.offset)
    mode = {g: [np.asarray(a)[0] for a in learned.params[g]] for g in ("weights", "biases")}
    means, _, _ = heads._em(heads.design(net, mode, X), problem_y, learned.noise_std()[0],
                            float(scales["weights"][-1]), float(scales["biases"][-1]))
    np.testing.assert_allclose(mode["weights"][-1], means[:-1], rtol=1e-4, atol=1e-5)
    # what is saved is the pooled network and its diagnostics
    learned.save(tmp_path / "pooled")
    back = br.load(tmp_path / "pooled")
    np.testing.assert_array_equal(back.predict(X).mean, learned.predict(X).mean)
    np.testing.assert_array_equal(back.diagnostics["heads_prior_variances"],
                                  learned.diagnostics["heads_prior_variances"])


@pytest.mark.slow  # an ensemble fit: ~8 s
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_each_member_is_pooled_under_its_own_learned_scales():
    """Every member's heads are the EM's means on its own body, under its own learned output
    scales and σ (the prior a fit reports is the first member's: using it for every member
    moved the other members' heads by 0.07–0.10)."""
    X, Y = _data()
    net = br.MLP((6,), activation="tanh")
    post = br.fit(net, X, Y, method=br.Ensemble(3, training=br.MAP(steps=200)))
    scales = post.diagnostics["prior_scales"]
    assert np.ptp(scales["biases"][:, -1]) > 0  # the members' scales differ
    y = Y.filled(np.nan) - post.offset
    for m in range(3):
        mode = {g: [np.asarray(a)[m] for a in post.params[g]] for g in ("weights", "biases")}
        means, _, _ = heads._em(heads.design(net, mode, X), y, post.noise_std()[m],
                                float(scales["weights"][m, -1]),
                                float(scales["biases"][m, -1]))
        np.testing.assert_allclose(mode["weights"][-1], means[:-1], rtol=1e-4, atol=1e-5)


@pytest.mark.slow  # a network fit: ~3 s
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_function_model_keeps_its_heads():
    """A FunctionModel's last parameter array need not be an output layer: its heads are not
    pooled (the design of an MLP body would not apply; it raised before the guard)."""
    import jax.numpy as jnp

    X, Y = _data()
    model = br.FunctionModel(lambda p, X: jnp.tanh(X @ p["w1"]) @ p["w2"] + p["b"],
                             {"w1": jnp.full((2, 4), 0.1), "w2": jnp.zeros((4, 3)),
                              "b": jnp.zeros(3)})
    post = br.fit(model, X, Y, method=br.MAP(steps=30))
    assert "heads_prior_variances" not in post.diagnostics
