"""Multi-task regression: targets Y (N, T), one network with T outputs, σ per task, missing
labels as a masked array (bayesreg.fit, likelihoods, predictive, evidence, persistence)."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayesreg as br
from bayesreg.training.evidence import EvidenceHook


def _tasks(n=60, seed=0, noise=(0.1, 0.2, 0.05)):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, (n, 1))
    f = np.c_[np.sin(X[:, 0]), np.cos(X[:, 0]), 0.5 * X[:, 0]] + np.array([3.0, -1.0, 0.0])
    return X, f + np.asarray(noise) * rng.standard_normal((n, 3))


def test_map_shapes_offset_and_per_task_noise():
    X, Y = _tasks()
    post = br.fit(br.MLP((16,)), X, Y, method=br.MAP(steps=400))
    pred = post.predict(X[:7])
    for a in (pred.mean, pred.std, pred.epistemic_std, pred.aleatoric_std, *pred.interval()):
        assert a.shape == (7, 3)
    assert pred.log_prob(Y[:7]).shape == (7, 3)
    np.testing.assert_allclose(post.offset, Y.mean(axis=0), rtol=1e-6)
    sigma = post.noise_std()
    assert sigma.shape == (1, 3)
    # the evidence's σₜ per task: each near its own truth (N = 60: a few tens of per cent)
    np.testing.assert_allclose(sigma[0], [0.1, 0.2, 0.05], rtol=0.4)


def test_single_target_unchanged():
    X, Y = _tasks()
    pred = br.fit(br.MLP((8,)), X, Y[:, 0], method=br.MAP(steps=50)).predict(X)
    assert isinstance(pred, br.Predictive) and pred.mean.shape == (60,)
    assert isinstance(br.fit(br.MLP((8,)), X, Y[:, :1], method=br.MAP(steps=50)).offset, float)


def test_masked_labels_count_nothing():
    """A masked label changes nothing, whatever its value: the fit equals the one where the
    same entries hold other numbers."""
    X, Y = _tasks()
    mask = np.zeros(Y.shape, bool)
    mask[10:, 2] = True
    other = Y.copy()
    other[mask] = 1e3
    a = br.fit(br.MLP((8,)), X, np.ma.masked_array(Y, mask), method=br.MAP(steps=200))
    b = br.fit(br.MLP((8,)), X, np.ma.masked_array(other, mask), method=br.MAP(steps=200))
    np.testing.assert_allclose(a.predict(X).mean, b.predict(X).mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(a.offset[2], Y[:10, 2].mean(), rtol=1e-6)
    lp = a.predict(X).log_prob(np.ma.masked_array(Y, mask))
    assert isinstance(lp, np.ma.MaskedArray) and lp.mask.sum() == mask.sum()
    m = a.predict(X).metrics(np.ma.masked_array(Y, mask))
    rmse2 = np.sqrt(np.mean((a.predict(X[:10]).mean[:, 2] - Y[:10, 2]) ** 2))
    np.testing.assert_allclose(m["rmse_task2"], rmse2, rtol=1e-6)
    np.testing.assert_allclose(m["rmse"], np.mean([m[f"rmse_task{t}"] for t in range(3)]))


def test_log_prob_ignores_missing_and_has_finite_gradient():
    lik = br.GaussianLikelihood(noise=(1.0, 2.0))
    y = jnp.array([[0.0, jnp.nan], [1.0, 2.0]])

    def total(out):
        return jnp.sum(lik.log_prob(y, out, {}))

    out = jnp.zeros((2, 2))
    half_log_2pi = 0.5 * np.log(2 * np.pi)
    expected = (-half_log_2pi) + (-0.5 - half_log_2pi) + (-0.5 - np.log(2.0) - half_log_2pi)
    np.testing.assert_allclose(float(total(out)), expected, rtol=1e-6)
    grad = jax.grad(total)(out)
    assert np.all(np.isfinite(grad)) and float(grad[0, 1]) == 0.0


def test_errors():
    X, Y = _tasks()
    bad = Y.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        br.fit(br.MLP((4,)), X, bad)
    for method in (br.MCDropout(), br.SWAG(), br.SGLD(), br.Exact()):
        with pytest.raises(ValueError, match=f"{type(method).__name__} does not fit several"):
            br.fit(br.MLP((4,)), X, Y, method=method)
    with pytest.raises(ValueError, match="noise has 2 values"):
        br.fit(br.MLP((4,)), X, Y, likelihood=br.GaussianLikelihood(noise=[0.1, 0.2]))
    with pytest.raises(ValueError, match="GaussianLikelihood"):
        br.fit(br.MLP((4,)), X, (Y > 0).astype(float), likelihood=br.Bernoulli())
    mask = np.zeros(Y.shape, bool)
    mask[:, 1] = True
    with pytest.raises(ValueError, match="no label"):
        br.fit(br.MLP((4,)), X, np.ma.masked_array(Y, mask))


def test_given_noise_per_task():
    X, Y = _tasks()
    post = br.fit(br.MLP((4,)), X, Y, likelihood=br.GaussianLikelihood(noise=[0.1, 0.2, 0.3]),
                  method=br.MAP(steps=50))
    np.testing.assert_allclose(post.predict(X).aleatoric_std[0], [0.1, 0.2, 0.3], rtol=1e-6)


@pytest.mark.slow  # ~5 s: in the slow set, which CI runs, to keep the default suite under 10 min
def test_evidence_task_gammas_sum_dense_equals_dual(monkeypatch):
    """γ = Σₜ γₜ from the dense P × P path and from the m·T dual agree (the same H), and so
    do the σₜ they give."""
    import bayesreg.training.evidence as ev

    X, Y = _tasks(n=40)
    Y = Y.astype(np.float32)
    Y[5:, 1] = np.nan
    model = br.MLP((6,))
    params = model.init(jax.random.key(0), 1, 3)
    prior = {"weights": br.Gaussian(1.0), "biases": br.Gaussian(1.0)}
    hook = EvidenceHook(learn_noise=True, learn_prior=False, rounds=1)
    y_std = ev.target_scale(jnp.asarray(Y), jnp.ones(40))
    h0 = hook.init(params, y_std, jnp.float32)
    args = (model, br.GaussianLikelihood(), prior, params, jnp.asarray(X), jnp.asarray(Y),
            jax.random.key(1), y_std)
    h_dense, at_dense = hook.update(h0, *args, newton=True)
    monkeypatch.setattr(ev, "DENSE_MAX", 0)
    h_dual, at_dual = hook.update(h0, *args, newton=True)
    np.testing.assert_allclose(float(at_dense.gamma), float(at_dual.gamma), rtol=1e-3)
    # the Newton decrement of every task's rows together, by either factor
    assert float(at_dense.decrement) > 0
    np.testing.assert_allclose(float(at_dense.decrement), float(at_dual.decrement), rtol=1e-3)
    np.testing.assert_allclose(h_dense["log_noise"], h_dual["log_noise"], rtol=1e-3, atol=1e-4)
    assert h_dense["log_noise"].shape == (3,)


@pytest.mark.slow  # ~10 s: in the slow set, which CI runs, to keep the default suite under 10 min
@pytest.mark.parametrize("method", [br.LaplaceApprox(training=br.MAP(steps=300)),
                                    br.Ensemble(members=2, training=br.MAP(steps=200))])
def test_other_methods_and_save_load(method, tmp_path):
    X, Y = _tasks(n=40)
    mask = np.zeros(Y.shape, bool)
    mask[15:, 0] = True
    post = br.fit(br.MLP((8,)), X, np.ma.masked_array(Y, mask), method=method)
    pred = post.predict(X)
    assert pred.mean.shape == (40, 3) and post.noise_std().shape[1:] == (3,)
    path = tmp_path / "mt.npz"
    post.save(path)
    back = br.load(path)
    np.testing.assert_array_equal(back.predict(X).mean, pred.mean)
    np.testing.assert_array_equal(back.offset, post.offset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = post.to_arviz()
    assert idata.observed_data["y"].shape == (40, 3)
    assert idata.posterior_predictive["y"].shape[-2:] == (40, 3)


@pytest.mark.slow
def test_goal_small_task_borrows_the_shared_features():
    """Issue 24's goal: task 2 has 12 labels, tasks 0 and 1 have 300; the multi-task fit's
    test RMSE on task 2 against the same network fitted to the 12 labels alone. Measured
    (MLP((32,), tanh), Gaussian(1.0), 3000 Adam steps) on data seeds 0, 1, 2: ratios 0.76,
    0.39, 0.32 (0.58, 0.31, 0.42 before the default full-batch rate became 0.05) — the median
    is asserted, as one seed's ratio depends on how well 12 labels pin down a 33-weight head."""
    ratios = []
    for seed in range(3):
        X, Y, Xt, Yt = br.datasets.multitask_example(seed=seed)
        mask = np.zeros(Y.shape, bool)
        mask[12:, 2] = True
        net, prior, method = br.MLP((32,), activation="tanh"), br.Gaussian(1.0), br.MAP(
            steps=3000)
        multi = br.fit(net, X, np.ma.masked_array(Y, mask), method=method, prior=prior)
        alone = br.fit(net, X[:12], Y[:12, 2], method=method, prior=prior)
        ratios.append(multi.predict(Xt).metrics(Yt)["rmse_task2"]
                      / alone.predict(Xt).metrics(Yt[:, 2])["rmse"])
    assert np.median(ratios) <= 0.5, ratios


@pytest.mark.slow
def test_goal_with_the_prior_learned_every_seed_borrows_through_pooled_heads():
    """With the prior left out the heads share one learned covariance
    (bayesreg.training.heads): task 2's ratio for MAP and Ensemble(5) at their defaults,
    measured 0.40/0.23/0.08 and 0.29/0.16/0.08 on data seeds 0/1/2 (the per-array prior
    alone: MAP 0.90/0.35/0.33). Every seed must reach the issue's 0.5."""
    net = br.MLP((32,), activation="tanh")
    for seed in range(3):
        X, Y, Xt, Yt = br.datasets.multitask_example(seed=seed)
        mask = np.zeros(Y.shape, bool)
        mask[12:, 2] = True
        for method in (br.MAP(), br.Ensemble(5)):
            multi = br.fit(net, X, np.ma.masked_array(Y, mask), method=method)
            alone = br.fit(net, X[:12], Y[:12, 2], method=method)
            assert multi.diagnostics["heads_prior_variances"].shape[-1] == 6
            ratio = (multi.predict(Xt).metrics(Yt)["rmse_task2"]
                     / alone.predict(Xt).metrics(Yt[:, 2])["rmse"])
            assert ratio <= 0.5, (seed, type(method).__name__, ratio)
