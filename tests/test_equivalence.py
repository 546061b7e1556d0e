import functools

import numpy as np
import optax
import pytest
from sklearn.linear_model import Lasso, Ridge

import bayesreg as br
from bayesreg.problem import Problem

# the closed forms here put the prior on y as given: the target is not centred
fit_uncentred = functools.partial(br.fit, center=False)


def test_l2_conversions_follow_the_conventions():
    prior, sigma, n = br.Gaussian(2.0), 0.5, 40
    assert br.l2_strength(prior, sigma) == pytest.approx(sigma**2 / 4.0)
    assert br.l2_strength(prior, sigma, n=n, loss="mse") == pytest.approx(sigma**2 / (n * 4.0))
    assert br.l2_strength(prior, sigma, n=n, loss="half_mse") == pytest.approx(
        sigma**2 / (2 * n * 4.0))
    assert br.weight_decay(prior, sigma, n) == pytest.approx(2 * sigma**2 / (n * 4.0))
    for loss in ("sse", "mse", "half_mse"):
        lam = br.l2_strength(prior, sigma, n=n, loss=loss)
        assert br.prior_from_l2(lam, sigma, n=n, loss=loss).scale == pytest.approx(2.0)


def test_l1_conversions_follow_the_conventions():
    prior, sigma, n = br.Laplace(0.25), 0.5, 40
    assert br.l1_strength(prior, sigma) == pytest.approx(2 * sigma**2 / 0.25)
    assert br.l1_strength(prior, sigma, n=n, loss="half_mse") == pytest.approx(
        sigma**2 / (n * 0.25))
    for loss in ("sse", "mse", "half_mse"):
        lam = br.l1_strength(prior, sigma, n=n, loss=loss)
        assert br.prior_from_l1(lam, sigma, n=n, loss=loss).scale == pytest.approx(0.25)


def test_conversion_errors():
    with pytest.raises(ValueError, match="needs n"):
        br.l2_strength(br.Gaussian(1.0), 1.0, loss="mse")
    with pytest.raises(ValueError, match="loss"):
        br.l2_strength(br.Gaussian(1.0), 1.0, loss="mae")
    with pytest.raises(TypeError, match="Gaussian"):
        br.l2_strength(br.Laplace(1.0), 1.0)
    with pytest.raises(ValueError, match="noise"):
        br.l1_strength(br.Laplace(1.0), 0.0)
    with pytest.raises(TypeError, match="noise=σ"):
        br.l2_strength(br.Gaussian(1.0))


def test_sigma_is_noise_everywhere_and_the_old_name_warns():
    """σ is ``noise`` in the likelihood and in the equivalences; ``noise_scale=`` still works
    for one release, with a DeprecationWarning pointing at the caller's line."""
    prior = br.Gaussian(2.0)
    assert br.l2_strength(prior, noise=1.0) == br.l2_strength(prior, 1.0) == 0.25
    for fn, first in ((br.l2_strength, prior), (br.l1_strength, br.Laplace(0.5)),
                      (br.prior_from_l2, 0.25), (br.prior_from_l1, 2.0)):
        with pytest.warns(DeprecationWarning, match="noise_scale") as caught:
            old = fn(first, noise_scale=1.0)
        assert caught[0].filename == __file__
        assert old == fn(first, noise=1.0)
    with pytest.warns(DeprecationWarning):
        assert br.weight_decay(prior, noise_scale=1.0, n=4) == br.weight_decay(prior, 1.0, 4)
    with pytest.raises(ValueError, match="lam"):
        br.prior_from_l2(-1.0, 1.0)


def test_on_a_raw_target_map_equals_ridge_with_its_intercept():
    # diabetes, standardised X, the raw target (mean 152): the target is centred, so the
    # output bias is not shrunk towards 0 and MAP under one Gaussian prior on every
    # parameter is Ridge(alpha=λ) with its unpenalised intercept (measured 1.2e-6 relative;
    # before centring the intercept was 144.0 against 152.1 at s = 10)
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    prior, sigma = br.Gaussian(10.0), 50.0
    ridge = Ridge(alpha=br.l2_strength(prior, noise=sigma)).fit(X, y)
    for method in (br.MAP(), br.Exact()):
        post = br.fit(br.Linear(), X, y, method=method, prior=prior,
                      likelihood=br.GaussianLikelihood(sigma))
        np.testing.assert_allclose(post.predict(X).mean, ridge.predict(X), rtol=1e-4)
        assert float(post.mean_params()["biases"][0][0]) == pytest.approx(ridge.intercept_,
                                                                           rel=1e-5)


@pytest.mark.parametrize("scale", [0.3, 1.0, 5.0])
def test_map_with_gaussian_prior_equals_ridge(linear_data, scale):
    X, y, _ = linear_data
    sigma = 0.5
    prior = br.Gaussian(scale)
    alpha = br.l2_strength(prior, sigma)
    ridge = Ridge(alpha=alpha).fit(X, y)  # sklearn does not penalise the intercept
    post = br.fit(br.Linear(), X, y, prior={"weights": prior, "biases": br.Flat()},
                  likelihood=br.GaussianLikelihood(sigma))
    # the parameters as fitted predict (y − ȳ)/s (br.fit centres and standardises the
    # target); mean_params maps them to the units of y
    np.testing.assert_allclose(post.mean_params()["weights"][0][:, 0], ridge.coef_, atol=2e-5)
    np.testing.assert_allclose(post.params["weights"][0][0, :, 0] * post.scale, ridge.coef_,
                               atol=2e-5)
    assert float(post.params["biases"][0][0, 0]) * post.scale == pytest.approx(
        ridge.intercept_ - post.offset, abs=2e-5)
    assert float(post.mean_params()["biases"][0][0]) == pytest.approx(ridge.intercept_, abs=2e-5)
    # a prior on every coefficient, the target not centred, is Ridge without intercept on [X, 1]
    ones = np.column_stack([X, np.ones(len(X))])
    ridge_all = Ridge(alpha=alpha, fit_intercept=False).fit(ones, y)
    post_all = br.fit(br.Linear(), X, y, prior=prior, likelihood=br.GaussianLikelihood(sigma),
                      center=False)
    got = np.append(post_all.params["weights"][0][0, :, 0], post_all.params["biases"][0][0])
    np.testing.assert_allclose(got, ridge_all.coef_, atol=2e-5)


@pytest.mark.parametrize("scale", [0.05, 0.2, 1.0])
def test_map_with_laplace_prior_equals_lasso(scale):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((80, 6))
    # four irrelevant features, so that Lasso sets some coefficients exactly to zero
    y = X[:, :2] @ np.array([2.0, -1.0]) + 0.3 + 0.5 * rng.standard_normal(80)
    sigma, n = 0.5, len(y)
    alpha = br.l1_strength(br.Laplace(scale), sigma, n=n, loss="half_mse")
    lasso = Lasso(alpha=alpha, tol=1e-12, max_iter=100_000).fit(X, y)
    post = fit_uncentred(br.Linear(), X, y,
                         prior={"weights": br.Laplace(scale), "biases": br.Flat()},
                         likelihood=br.GaussianLikelihood(sigma))
    np.testing.assert_allclose(post.params["weights"][0][0, :, 0], lasso.coef_, atol=5e-5)
    if scale == 0.05:
        assert np.sum(lasso.coef_ == 0.0) >= 1  # the test does exercise sparsity
    assert float(post.params["biases"][0][0, 0]) == pytest.approx(lasso.intercept_, abs=5e-5)


def test_mse_form_and_weight_decay_match_map(linear_data):
    """GD on MSE + λ‖w‖² (closed form) and SGD weight decay reach the MAP estimate."""
    X, y, _ = linear_data
    sigma, prior, n = 0.5, br.Gaussian(0.4), len(y)
    lam = br.l2_strength(prior, sigma, n=n, loss="mse")
    A = np.column_stack([X, np.ones(n)])
    penal = np.diag([1.0] * X.shape[1] + [0.0])
    closed = np.linalg.solve(A.T @ A / n + lam * penal, A.T @ y / n)
    post = fit_uncentred(br.Linear(), X, y, prior={"weights": prior, "biases": br.Flat()},
                  likelihood=br.GaussianLikelihood(sigma))
    got = np.append(post.params["weights"][0][0, :, 0], post.params["biases"][0][0])
    np.testing.assert_allclose(got, closed, atol=2e-5)
    # plain GD with decoupled weight decay wd on the MSE, weights only
    wd = br.weight_decay(prior, sigma, n)
    mse_only = br.MAP(
        optimizer=optax.chain(optax.add_decayed_weights(
            wd, mask={"params": {"weights": [True], "biases": [False]}, "theta": {}}),
            optax.sgd(0.2)),
        steps=4000, schedule="constant")
    prob = Problem(br.Linear(), br.GaussianLikelihood(1 / np.sqrt(2)),
                   {"weights": br.Flat(), "biases": br.Flat()}, X.astype(np.float32),
                   y.astype(np.float32), None)
    import jax

    state0 = prob.init_state(jax.random.key(0))
    state, _ = mse_only.optimize(prob, state0, jax.random.key(1))
    got_wd = np.append(np.asarray(state["params"]["weights"][0][:, 0]),
                       np.asarray(state["params"]["biases"][0]))
    np.testing.assert_allclose(got_wd, closed, atol=2e-5)


def test_l2_sp_prior_centres_the_map_on_pretrained_weights(linear_data):
    X, y, _ = linear_data
    sigma, s = 0.5, 0.2
    w0 = np.linspace(-1, 1, X.shape[1]).astype(np.float32)
    loc = {"weights": [w0[:, None]], "biases": [np.zeros(1, np.float32)]}
    post = fit_uncentred(br.Linear(), X, y, prior=br.Gaussian(s, loc=loc),
                  likelihood=br.GaussianLikelihood(sigma))
    A = np.column_stack([X, np.ones(len(y))])
    lam = br.l2_strength(br.Gaussian(s), sigma)
    m0 = np.append(w0, 0.0)
    closed = np.linalg.solve(A.T @ A + lam * np.eye(A.shape[1]), A.T @ y + lam * m0)
    got = np.append(post.params["weights"][0][0, :, 0], post.params["biases"][0][0])
    np.testing.assert_allclose(got, closed, atol=2e-5)
