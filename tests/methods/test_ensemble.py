import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayesreg as br
from bayesreg.priors import as_prior_spec
from bayesreg.problem import Problem
from bayesreg.training.loop import train_compiled


@pytest.mark.slow
def test_vmapped_members_equal_members_trained_one_by_one():
    X, y = br.datasets.gap_example(n=40)
    method = br.Ensemble(members=4, bagging=True, training=br.MAP(steps=200))
    lik = br.GaussianLikelihood().resolved(y)
    # (the target not centred: the members below are trained by hand on y as given)
    post = br.fit(br.MLP((8,)), X, y, method=method, likelihood=lik, seed=2, center=False)
    problem = Problem(br.MLP((8,)), lik, as_prior_spec(br.Gaussian(1.0)), X.astype(np.float32),
                      y, jax.random.key(2), learn_prior=True)  # br.fit got no prior
    hook = method.training.evidence_hook(problem)
    state0, keys, Xs, ys, prior, _ = method.member_inputs(problem)
    train = method.training.resolved(problem.model)
    epochs, per_epoch, batch = train.plan(problem.n)
    for m in range(4):
        one = jax.tree_util.tree_map(lambda a, m=m: a[m], state0)
        state, _ = train_compiled(train.objective(problem.model), train, epochs, per_epoch,
                                  batch, lik, prior, one, Xs[m], ys[m], keys[m],
                                  jnp.zeros((0, 1)), jnp.zeros((0,)), hook=hook)
        for a, b in zip(state["params"]["weights"], post.params["weights"], strict=True):
            np.testing.assert_allclose(np.asarray(a), b[m], rtol=2e-4, atol=2e-5)


def test_bagging_draws_differ_per_member_and_use_all_rows_in_expectation():
    X, y = br.datasets.gap_example(n=50)
    method = br.Ensemble(members=400, bagging=True)
    problem = Problem(br.Linear(), br.GaussianLikelihood(0.1), as_prior_spec(br.Gaussian(1.0)),
                      X.astype(np.float32), y, jax.random.key(0))
    _, _, Xs, _, _, axes = method.member_inputs(problem)
    assert axes == (0, None)
    rows = np.asarray(Xs[:, :, 0])
    assert len({tuple(r) for r in rows}) == 400
    xs = X[:, 0].astype(np.float32)
    counts = np.array([[np.sum(r == x) for x in xs] for r in rows])  # (M, N)
    # each row is drawn Binomial(50, 1/50) times per member: mean 1, sd ≈ 1/√400 over members
    np.testing.assert_allclose(counts.mean(0), 1.0, atol=4 * np.sqrt(0.98 / 400))
    # a bootstrap sample misses about (1 − 1/n)^n ≈ 36% of the rows
    assert np.mean(counts == 0) == pytest.approx((1 - 1 / 50) ** 50, abs=0.02)


@pytest.mark.slow
def test_anchored_members_are_exact_randomised_map_draws():
    """Pearce et al.'s randomised MAP sampling on a linear-Gaussian model: member m fits its
    own targets y + σεₘ under a prior centred on its own anchor φ_anc,m ~ N(0, s²), so its
    mode is φₘ = A⁻¹(Φᵀ(y + σεₘ)/σ² + Λ₀φ_anc,m), A = ΦᵀΦ/σ² + Λ₀, Λ₀ = I/s² — an exact
    draw from the posterior N(A⁻¹Φᵀy/σ², A⁻¹). Checked in two parts: each trained member
    equals that closed form (NumPy, float64) given its inputs from ``member_inputs``, and
    those inputs have the distributions the construction needs."""
    X, y = br.datasets.book_example(n=30)
    X = X - 0.5
    sigma, s, M = 0.3, 2.0, 50
    lik = br.GaussianLikelihood(sigma)
    method = br.Ensemble(members=M, anchored=True)
    ens = br.fit(br.Polynomial(3), X, y, method=method, prior=br.Gaussian(s), likelihood=lik,
                 seed=0, center=False)  # the closed form below puts the prior on y as given
    problem = Problem(br.Polynomial(3), lik.resolved(y), as_prior_spec(br.Gaussian(s)),
                      X[:, None].astype(np.float32), y, jax.random.key(0))
    _, _, _, targets, prior, _ = method.member_inputs(problem)
    targets = np.asarray(targets, np.float64)  # (M, N): y + σεₘ
    anchors = np.concatenate([np.asarray(prior["weights"].loc[0], np.float64)[:, :, 0],
                              np.asarray(prior["biases"].loc[0], np.float64)], axis=1)

    Phi = np.column_stack([X, X**2, X**3, np.ones_like(X)])  # weights x, x², x³, then bias
    A = Phi.T @ Phi / sigma**2 + np.eye(4) / s**2
    want = np.linalg.solve(A, Phi.T @ targets.T / sigma**2 + anchors.T / s**2).T
    got = np.concatenate([ens.params["weights"][0][:, :, 0], ens.params["biases"][0]], axis=1)
    post_std = np.sqrt(np.diag(np.linalg.inv(A)))  # 0.085 … 1.6
    # float32 optimisation error, measured 2e-6 (coefficients up to 11); a wrong anchor or
    # target moves a member by O(1) posterior std
    assert np.abs(got - want).max() < 1e-3 * post_std.min()

    # the inputs: jitters N(0, σ²) and anchors N(0, s²). The relative standard error of a
    # std from n normal draws is 1/√(2n): 1.8% for the M·N = 1500 jitters, 5% for the
    # M·4 = 200 anchors; stds within 3 of those, means within 3 standard errors of 0
    eps = targets - y
    assert abs(eps.std() / sigma - 1) < 3 / np.sqrt(2 * eps.size)
    assert abs(eps.mean()) < 3 * sigma / np.sqrt(eps.size)
    assert abs(anchors.std() / s - 1) < 3 / np.sqrt(2 * anchors.size)
    assert abs(anchors.mean()) < 3 * s / np.sqrt(anchors.size)
    # and they vary across members (not one draw shared): the std over M = 50 members at each
    # point / coefficient is within 10% (one standard error) of σ / s, so above half of it
    assert np.all(eps.std(axis=0) > 0.5 * sigma)
    assert np.all(anchors.std(axis=0) > 0.5 * s)
    # without anchors the members of a convex problem all land on the mode
    exact = br.fit(br.Polynomial(3), X, y, method=br.Exact(), prior=br.Gaussian(s),
                   likelihood=lik)
    grid = np.linspace(-0.6, 0.6, 9)
    plain = br.fit(br.Polynomial(3), X, y, method=br.Ensemble(members=5),
                   prior=br.Gaussian(s), likelihood=lik)
    assert np.all(plain.predict(grid).epistemic_std < 1e-3)
    np.testing.assert_allclose(plain.predict(grid).mean, exact.predict(grid).mean, atol=1e-3)


@pytest.mark.slow
def test_median_and_mean_ensembles_beat_the_average_member():
    """The book's bagging example: 15 points, a 1-50-1 ReLU network, bootstrap members."""
    X, y = br.datasets.book_example(n=15, noise=0.3, seed=0)
    x_test = np.linspace(0, 1, 400)
    truth = br.datasets.book_function(x_test)
    kw = {"prior": br.Gaussian(3.0), "likelihood": br.GaussianLikelihood(0.3), "seed": 1}
    training = br.MAP(steps=2000)
    mean = br.fit(br.MLP((50,)), X, y, method=br.Ensemble(members=20, bagging=True,
                                                          training=training), **kw)
    median = br.fit(br.MLP((50,)), X, y, method=br.Ensemble(members=20, bagging=True,
                                                            reduce="median", training=training),
                    **kw)
    pm, pmed = mean.predict(x_test), median.predict(x_test)
    member_mse = np.mean((pm.draws - truth) ** 2, axis=1).mean()
    assert np.mean((pm.point - truth) ** 2) < member_mse
    assert np.mean((pmed.point - truth) ** 2) < member_mse
    np.testing.assert_allclose(pmed.point, np.median(pmed.draws, axis=0))
    assert pmed.metrics(truth)["rmse"] == pytest.approx(
        np.sqrt(np.mean((pmed.point - truth) ** 2)))


def test_ensemble_settings_and_errors():
    X, y = br.datasets.gap_example(n=20)
    with pytest.raises(ValueError, match="reduce"):
        br.Ensemble(reduce="mode")
    with pytest.raises(ValueError, match="members"):
        br.Ensemble(members=0)
    with pytest.raises(ValueError, match="anchored ensembles need a Gaussian"):
        br.fit(br.Linear(), X, y, method=br.Ensemble(members=2, anchored=True),
               prior=br.Laplace(1.0))
    post = br.fit(br.Linear(), X, y, method=br.Ensemble(members=3, anchored=True),
                  prior={"weights": br.Gaussian(1.0), "biases": br.Flat()})
    assert post.num_draws == 3


@pytest.mark.slow
def test_members_and_masks_export_as_draws_and_loo_works():
    import arviz as az

    X, y = br.datasets.gap_example(n=30)
    for method in (br.Ensemble(members=8, training=br.MAP(steps=300)),
                   br.MCDropout(num_samples=40, training=br.MAP(steps=300))):
        post = br.fit(br.MLP((16,)), X, y, method=method, likelihood=br.GaussianLikelihood(0.1))
        idata = post.to_arviz()
        assert idata.posterior.sizes["draw"] == post.num_draws
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                assert np.isfinite(az.loo(idata).elpd_loo)
