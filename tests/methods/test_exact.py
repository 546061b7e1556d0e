import functools
import math
import warnings

import numpy as np
import pytest
from scipy import optimize, stats
from sklearn.linear_model import BayesianRidge

import bayesreg as br

# the closed forms here put the prior on y as given: the target is not centred
fit_uncentred = functools.partial(br.fit, center=False)


def _fixed_bayesian_ridge(alpha, lam, fit_intercept):
    """BayesianRidge with its precisions pinned: huge Gamma hyperpriors with the given means."""
    big = 1e14
    return BayesianRidge(max_iter=1, alpha_1=alpha * big, alpha_2=big, lambda_1=lam * big,
                         lambda_2=big, alpha_init=alpha, lambda_init=lam,
                         fit_intercept=fit_intercept)


def _design(X):
    return np.column_stack([X, np.ones(len(X))])


def test_matches_hand_written_conjugate_formulas(book_data):
    X, y = book_data
    sigma, s = 0.3, 2.0
    post = fit_uncentred(br.Polynomial(4), X, y, method=br.Exact(), prior=br.Gaussian(s),
                  likelihood=br.GaussianLikelihood(sigma))
    x = X[:, 0]
    Phi = np.column_stack([x, x**2, x**3, x**4, np.ones_like(x)])
    cov = np.linalg.inv(Phi.T @ Phi / sigma**2 + np.eye(5) / s**2)
    mean = cov @ Phi.T @ y / sigma**2
    np.testing.assert_allclose(post.gaussian.mean, mean, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(post.gaussian.cov, cov, rtol=1e-5, atol=1e-9)
    grid = np.linspace(0, 1, 7)
    G = np.column_stack([grid, grid**2, grid**3, grid**4, np.ones_like(grid)])
    pred = post.predict(grid)
    np.testing.assert_allclose(pred.mean, G @ mean, rtol=1e-5)
    var_f = np.einsum("ij,jk,ik->i", G, cov, G)
    np.testing.assert_allclose(pred.epistemic_std, np.sqrt(var_f), rtol=1e-5)
    np.testing.assert_allclose(pred.std, np.sqrt(var_f + sigma**2), rtol=1e-5)
    assert pred.is_gaussian


def test_log_evidence_is_the_gaussian_marginal_likelihood(book_data):
    X, y = book_data
    sigma, s = 0.3, 3.0
    model = br.relu_basis(6)
    post = fit_uncentred(model, X, y, method=br.Exact(), prior=br.Gaussian(s),
                  likelihood=br.GaussianLikelihood(sigma))
    Phi = _design(np.maximum(0.0, X - np.arange(6) / 6))
    cov_y = s**2 * Phi @ Phi.T + sigma**2 * np.eye(len(y))
    direct = stats.multivariate_normal(np.zeros(len(y)), cov_y).logpdf(y)
    assert post.log_evidence == pytest.approx(direct, rel=1e-7)


def test_prior_mean_enters_the_evidence_and_the_posterior(book_data):
    X, y = book_data
    sigma, s, m0 = 0.3, 0.5, 1.5
    post = fit_uncentred(br.Linear(), X, y, method=br.Exact(), prior=br.Gaussian(s, loc=m0),
                  likelihood=br.GaussianLikelihood(sigma))
    Phi = _design(X)
    direct = stats.multivariate_normal(Phi @ np.full(2, m0),
                                       s**2 * Phi @ Phi.T + sigma**2 * np.eye(len(y))).logpdf(y)
    assert post.log_evidence == pytest.approx(direct, rel=1e-7)
    A = Phi.T @ Phi / sigma**2 + np.eye(2) / s**2
    np.testing.assert_allclose(post.gaussian.mean,
                               np.linalg.solve(A, Phi.T @ y / sigma**2 + m0 / s**2), rtol=1e-7)


def test_matches_bayesian_ridge_with_fixed_precisions(linear_data):
    X, y, _ = linear_data
    sigma, s = 0.5, 0.8
    # prior on every coefficient = BayesianRidge without intercept on [X, 1]
    post = fit_uncentred(br.Linear(), X, y, method=br.Exact(), prior=br.Gaussian(s),
                  likelihood=br.GaussianLikelihood(sigma))
    ref = _fixed_bayesian_ridge(1 / sigma**2, 1 / s**2, fit_intercept=False).fit(_design(X), y)
    assert ref.alpha_ == pytest.approx(1 / sigma**2, rel=1e-9)
    np.testing.assert_allclose(post.gaussian.mean, ref.coef_, rtol=1e-7)
    np.testing.assert_allclose(post.gaussian.cov, ref.sigma_, rtol=1e-6, atol=1e-12)
    X_new = np.random.default_rng(1).standard_normal((5, 5))
    mean, std = ref.predict(_design(X_new), return_std=True)
    pred = post.predict(X_new)
    np.testing.assert_allclose(pred.mean, mean, rtol=1e-5)
    np.testing.assert_allclose(pred.std, std, rtol=1e-5)
    # a Flat prior on the bias = BayesianRidge's centring intercept
    with pytest.warns(UserWarning, match="improper"):
        post = fit_uncentred(br.Linear(), X, y, method=br.Exact(),
                      prior={"weights": br.Gaussian(s), "biases": br.Flat()},
                      likelihood=br.GaussianLikelihood(sigma))
    ref = _fixed_bayesian_ridge(1 / sigma**2, 1 / s**2, fit_intercept=True).fit(X, y)
    np.testing.assert_allclose(post.gaussian.mean[:-1], ref.coef_, rtol=1e-6)
    assert post.gaussian.mean[-1] == pytest.approx(ref.intercept_, rel=1e-6)
    mean, std = ref.predict(X_new, return_std=True)
    pred = post.predict(X_new)
    np.testing.assert_allclose(pred.mean, mean, rtol=1e-5)
    # sklearn's std leaves out the intercept's own variance σ²/N (centred design)
    np.testing.assert_allclose(pred.std**2 - sigma**2 / len(y), std**2, rtol=1e-5)


def test_exact_mean_equals_map(book_data):
    X, y = book_data
    kw = {"prior": br.Gaussian(3.0), "likelihood": br.GaussianLikelihood(0.3)}
    exact = br.fit(br.Polynomial(3), X, y, method=br.Exact(), **kw)
    point = br.fit(br.Polynomial(3), X, y, method=br.MAP(), **kw)
    grid = np.linspace(0, 1, 20)
    np.testing.assert_allclose(point.predict(grid).mean, exact.predict(grid).mean, atol=1e-4)


def test_learned_noise_maximises_the_evidence(book_data):
    X, y = book_data
    model, prior = br.relu_basis(8), br.Gaussian(5.0)
    post = fit_uncentred(model, X, y, method=br.Exact(), prior=prior)
    Phi = _design(np.maximum(0.0, X - np.arange(8) / 8))

    def neg_evidence(log_sigma):
        cov = 25.0 * Phi @ Phi.T + math.exp(2 * log_sigma) * np.eye(len(y))
        return -stats.multivariate_normal(np.zeros(len(y)), cov).logpdf(y)

    best = optimize.minimize_scalar(neg_evidence, bounds=(-5, 2), method="bounded",
                                    options={"xatol": 1e-10})
    assert post.noise_std()[0] == pytest.approx(math.exp(best.x), rel=1e-5)
    assert post.log_evidence == pytest.approx(-best.fun, rel=1e-8)
    pred = post.predict(X)
    assert pred.aleatoric_std[0] == pytest.approx(math.exp(best.x), rel=1e-5)


def test_learned_noise_with_flat_prior_is_the_unbiased_estimate(linear_data):
    X, y, _ = linear_data
    with pytest.warns(UserWarning, match="improper"):
        post = br.fit(br.Linear(), X, y, method=br.Exact(), prior=br.Flat())
    A = _design(X)
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    rss = np.sum((y - A @ coef) ** 2)
    assert post.noise_std()[0] == pytest.approx(np.sqrt(rss / (len(y) - A.shape[1])), rel=1e-8)
    assert math.isnan(post.log_evidence)


def test_flat_prior_gives_nan_evidence_with_a_warning(linear_data):
    X, y, _ = linear_data
    with pytest.warns(UserWarning, match="improper"):
        post = br.fit(br.Linear(), X, y, method=br.Exact(),
                      prior={"weights": br.Gaussian(1.0), "biases": br.Flat()},
                      likelihood=br.GaussianLikelihood(0.5))
    assert math.isnan(post.log_evidence)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        post = br.fit(br.Linear(), X, y, method=br.Exact(), prior=br.Gaussian(1.0),
                      likelihood=br.GaussianLikelihood(0.5))
    assert np.isfinite(post.log_evidence)


def test_draws_follow_the_exact_posterior(book_data):
    X, y = book_data
    post = br.fit(br.Polynomial(2), X, y, method=br.Exact(num_samples=20_000),
                  prior=br.Gaussian(2.0), likelihood=br.GaussianLikelihood(0.3))
    flat = np.column_stack([post.params["weights"][0][:, :, 0], post.params["biases"][0]])
    sd = np.sqrt(np.diag(post.gaussian.cov))
    # 20 000 draws: the standard error of each mean is sd/141; allow 4 of them
    assert np.all(np.abs(flat.mean(0) - post.gaussian.mean) < 4 * sd / np.sqrt(20_000))
    np.testing.assert_allclose(flat.std(0), sd, rtol=0.03)


@pytest.mark.parametrize(
    ("model", "prior", "lik", "match"),
    [
        (br.MLP((8,)), br.Gaussian(1.0), br.GaussianLikelihood(0.3), "linear-in-parameters"),
        (br.Linear(), br.Laplace(1.0), br.GaussianLikelihood(0.3), "Gaussian or Flat"),
        (br.Linear(), br.Gaussian(1.0), br.Bernoulli(), "GaussianLikelihood"),
    ],
)
def test_unsupported_problems_are_clear_errors(model, prior, lik, match):
    X = np.linspace(0, 1, 10)
    y = (X > 0.5).astype(float)
    with pytest.raises(ValueError, match=match):
        br.fit(model, X, y, method=br.Exact(), prior=prior, likelihood=lik)


def test_interpolating_flat_model_cannot_learn_noise():
    X = np.linspace(0, 1, 4)
    with pytest.raises(ValueError, match="interpolates"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        br.fit(br.Polynomial(3), X, np.sin(X), method=br.Exact(), prior=br.Flat())


@pytest.mark.parametrize("x", [0.0, 3.0])
def test_one_row_cannot_learn_the_noise(x):
    # at x = 3 the fixed point's start (sigma² = var(y) = 0) made the precision singular in
    # float64, and the error blamed a Flat prior that was never given
    with pytest.raises(ValueError, match=r"one row cannot determine the noise") as err:
        br.fit(br.Linear(), np.array([x]), np.array([2.0]), method=br.Exact())
    assert "GaussianLikelihood(noise=" in str(err.value) and "Flat" not in str(err.value)


def test_constant_target_cannot_learn_the_noise():
    X = np.linspace(0, 1, 12)
    with pytest.raises(ValueError, match=r"y is constant \(every value is 5\)"):
        fit_uncentred(br.Linear(), X, np.full(12, 5.0), method=br.Exact())
    # a fixed noise is fine: the posterior of a constant is well defined
    post = fit_uncentred(br.Linear(), X, np.full(12, 5.0), method=br.Exact(),
                  likelihood=br.GaussianLikelihood(0.1), prior=br.Gaussian(10.0))
    assert post.predict(X).mean == pytest.approx(np.full(12, 5.0), abs=0.05)


def test_ill_conditioned_gaussian_posterior_is_solved_not_blamed_on_a_flat_prior():
    # one row, a tiny fixed noise: A = φφᵀ/σ² + I has condition number 1e19, beyond a float64
    # Cholesky factor; the posterior is still proper (Gaussian prior), so it must be computed
    x, y0, sigma = 3.0, 2.0, 1e-9
    post = fit_uncentred(br.Linear(), np.array([x]), np.array([y0]), method=br.Exact(),
                  prior=br.Gaussian(1.0), likelihood=br.GaussianLikelihood(sigma))
    phi = np.array([x, 1.0])
    # Woodbury: cov = I − φφᵀ/(σ² + φᵀφ), mean = φ y / (σ² + φᵀφ)
    cov = np.eye(2) - np.outer(phi, phi) / (sigma**2 + phi @ phi)
    np.testing.assert_allclose(post.gaussian.mean, phi * y0 / (sigma**2 + phi @ phi), rtol=1e-9)
    np.testing.assert_allclose(post.gaussian.cov, cov, atol=1e-9)
    assert np.isfinite(post.log_evidence)


def test_flat_prior_with_too_few_rows_says_so():
    with pytest.raises(ValueError, match=r"Flat prior .* N = 1 row .* 2 coefficients"):
        br.fit(br.Linear(), np.array([3.0]), np.array([2.0]), method=br.Exact(),
               prior=br.Flat(), likelihood=br.GaussianLikelihood(0.1))


def test_huge_targets_overflow_float32_clearly_and_work_in_float64(linear_data):
    X, y, _ = linear_data
    with pytest.raises(ValueError, match=r"y reaches .*e\+30.* float32.*dtype=.float64."):
        br.fit(br.Linear(), X, 1e30 * y, method=br.Exact())
    # float64 holds the squares: with a Flat prior the answer is exactly 1e30 × the unit one
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # improper prior: no evidence
        big = br.fit(br.Linear(), X, 1e30 * y, method=br.Exact(), prior=br.Flat(),
                     dtype="float64").predict(X[:5])
        unit = br.fit(br.Linear(), X, y, method=br.Exact(), prior=br.Flat(),
                      dtype="float64").predict(X[:5])
    assert np.all(np.isfinite(big.std))
    np.testing.assert_allclose(big.std, 1e30 * unit.std, rtol=1e-6)


def test_a_prior_too_wide_for_float32_is_a_clear_error():
    # one row leaves one direction of the coefficients at the prior's sd of 1e25
    with pytest.raises(ValueError, match=r"predictive std reaches .*narrower prior"):
        br.fit(br.Linear(), np.array([3.0]), np.array([2.0]), method=br.Exact(),
               prior=br.Gaussian(1e25), likelihood=br.GaussianLikelihood(0.1))
    with pytest.raises(ValueError, match=r"noise σ = 1e\+20: in float32"):
        br.fit(br.Linear(), np.linspace(0, 1, 12), np.zeros(12), method=br.Exact(),
               likelihood=br.GaussianLikelihood(1e20))


def test_num_draws_is_the_old_name_of_num_samples(book_data):
    X, y = book_data
    with pytest.warns(DeprecationWarning, match=r"Exact\(num_samples=\.\.\.\)"):
        old = br.Exact(num_draws=5)
    assert old == br.Exact(num_samples=5) and old.num_samples == 5
    a = br.fit(br.Polynomial(2), X, y, method=old, prior=br.Gaussian(1.0))
    b = br.fit(br.Polynomial(2), X, y, method=br.Exact(num_samples=5), prior=br.Gaussian(1.0))
    np.testing.assert_array_equal(a.params["weights"][0], b.params["weights"][0])
    with pytest.raises(TypeError, match="both"):
        br.Exact(num_draws=5, num_samples=7)
    with pytest.warns(DeprecationWarning, match=r"LaplaceApprox\(num_samples=\.\.\.\)"):
        assert br.LaplaceApprox(num_draws=7) == br.LaplaceApprox(num_samples=7)


def test_prior_left_out_is_learned_by_the_exact_evidence_as_map_learns_it():
    """With the prior left out Exact maximises the evidence over the weights' and the bias's
    Gaussian scales (type-II ML) and MAP learns them by the Laplace–GGN evidence during
    training; for a linear model the GGN is exact, so they must agree. Standardised diabetes:
    measured 0.18244 against 0.18244, predictions 1.5e-7 apart; the bounds are the issue's (5%
    and 0.01 standardised units)."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X, y = (X - X.mean(0)) / X.std(0), (y - y.mean()) / y.std()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the bias's scale sits at its clip (y is centred)
        exact = br.fit(br.Linear(), X, y, method=br.Exact())
        map_ = br.fit(br.Linear(), X, y, method=br.MAP())
    for g in ("weights", "biases"):
        np.testing.assert_allclose(exact.diagnostics["prior_scales"][g],
                                   map_.diagnostics["prior_scales"][g], rtol=0.05)
    np.testing.assert_allclose(float(exact.prior["weights"].scale),
                               exact.diagnostics["prior_scales"]["weights"][0])
    np.testing.assert_allclose(exact.predict(X).mean, map_.predict(X).mean, atol=0.01)
    # the learned prior is the one the posterior used: refitting under it as given agrees
    again = br.fit(br.Linear(), X, y, method=br.Exact(), prior=exact.prior,
                   likelihood=br.GaussianLikelihood(float(exact.diagnostics["noise_std"])))
    np.testing.assert_allclose(again.approximation.mean, exact.approximation.mean, rtol=1e-6)
