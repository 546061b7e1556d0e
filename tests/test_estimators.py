import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_diabetes
from sklearn.linear_model import BayesianRidge, Ridge
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import bayesreg as br
from bayesreg.estimators import BayesianClassifier, BayesianRegressor

FAST = br.MAP(steps=300)

# Checks that do not apply, and why:
EXPECTED_FAILURES = {
    # sample_weight is not a bayesreg concept (a likelihood weight would change the posterior)
    "check_sample_weight_equivalence_on_dense_data": "no sample_weight",
}


@parametrize_with_checks(
    [BayesianRegressor(method=FAST), BayesianClassifier(method=FAST)],
    expected_failed_checks=lambda est: EXPECTED_FAILURES,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_regressor_matches_the_library_and_reports_std():
    """The estimator fits the standardised target z = (y − ȳ)/s_y (a fixed noise σ becomes
    σ/s_y) and maps the predictive back: y = ȳ + s_y·z."""
    X, y = br.datasets.book_example(n=30)
    y = 100.0 + 50.0 * y
    m, s = y.mean(), y.std()
    reg = BayesianRegressor(model=br.Polynomial(3), method=br.Exact(), prior=br.Gaussian(10.0),
                            likelihood=br.GaussianLikelihood(15.0)).fit(X, y)
    assert (reg.y_mean_, reg.y_scale_) == pytest.approx((m, s))
    post = br.fit(br.Polynomial(3), X, (y - m) / s, method=br.Exact(), prior=br.Gaussian(10.0),
                  likelihood=br.GaussianLikelihood(15.0 / s))
    pred = post.predict(X)
    mean, std = reg.predict(X, return_std=True)
    np.testing.assert_allclose(mean, m + s * pred.mean, rtol=1e-5)
    np.testing.assert_allclose(std, s * pred.std, rtol=1e-5)
    lo, hi = reg.predict_interval(X)
    np.testing.assert_allclose(lo, m + s * pred.interval(0.95)[0], rtol=1e-5)
    np.testing.assert_allclose(hi, m + s * pred.interval(0.95)[1], rtol=1e-5)
    assert np.all(lo < mean) and np.all(mean < hi)
    dist = reg.predict_distribution(X)
    np.testing.assert_allclose(dist.log_prob(y), pred.log_prob((y - m) / s) - np.log(s),
                               rtol=1e-5)
    assert reg.score(X, y) > 0.5
    # standardize_y=False: the library on the raw target, exactly
    raw = BayesianRegressor(model=br.Polynomial(3), method=br.Exact(), prior=br.Gaussian(10.0),
                            likelihood=br.GaussianLikelihood(15.0), standardize_y=False).fit(X, y)
    post = br.fit(br.Polynomial(3), X, y, method=br.Exact(), prior=br.Gaussian(10.0),
                  likelihood=br.GaussianLikelihood(15.0))
    mean, std = raw.predict(X, return_std=True)
    np.testing.assert_allclose(mean, post.predict(X).mean)
    np.testing.assert_allclose(std, post.predict(X).std)


@pytest.mark.parametrize("method", [br.Exact(), FAST])
def test_regressor_is_equivariant_to_the_units_of_y(method):
    """Fitting a + b·y (and a fixed noise b·σ) predicts a + b·(the fit of y): the prior sees
    the standardised target whatever its units, so nothing depends on them."""
    X, y = br.datasets.book_example(n=30)
    for lik in (None, 0.3):
        small = BayesianRegressor(model=br.Polynomial(3), method=method,
                                  likelihood=lik and br.GaussianLikelihood(lik))
        big = clone(small).set_params(likelihood=lik and br.GaussianLikelihood(200.0 * lik))
        mean, std = small.fit(X, y).predict(X, return_std=True)
        mean_b, std_b = big.fit(X, 1000.0 + 200.0 * y).predict(X, return_std=True)
        np.testing.assert_allclose(mean_b, 1000.0 + 200.0 * mean, rtol=1e-4)
        np.testing.assert_allclose(std_b, 200.0 * std, rtol=1e-4)


def test_default_regressor_matches_bayesian_ridge_on_a_raw_target():
    """diabetes: ȳ = 152, s_y = 77. Fitted on the raw y a N(0, 1) prior shrank the
    intercept to 0 (cross-validated R² −3.8 against BayesianRidge's 0.49); with the default
    prior the estimator must do as well as BayesianRidge."""
    X, y = load_diabetes(return_X_y=True)
    cv = KFold(5, shuffle=True, random_state=0)

    def r2(estimator):
        return cross_val_score(make_pipeline(StandardScaler(), estimator), X, y, cv=cv).mean()

    ridge = r2(BayesianRidge())  # 0.489
    # measured 0.4895 with Exact (−3.82 on the raw target) and 0.481 with a short network fit
    # (−1.11 raw); the default MAP gives 0.4889 (5 s, left out to keep this test short)
    assert abs(r2(BayesianRegressor(method=br.Exact())) - ridge) < 0.05
    assert r2(BayesianRegressor(model=br.MLP((16,)), method=FAST)) > ridge - 0.1


def test_coef_and_intercept_equal_ridge_on_standardised_features():
    """Exact on standardised X: the posterior mean is Ridge(alpha=λ)'s solution with
    λ = σ_z²/s² (σ_z = σ/s_y, the noise in the units of the standardised target), and the
    intercept is ȳ (Σz = 0 and centred columns decouple it from the weights, so the prior on
    it shrinks nothing). The average of 1 000 draws missed Ridge by 0.19."""
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    s = 0.3
    for noise in (50.0, None):  # given in the units of y, and learned by the evidence
        reg = BayesianRegressor(method=br.Exact(), prior=br.Gaussian(s),
                                likelihood=br.GaussianLikelihood(noise)).fit(X, y)
        sigma_z = (noise / y.std()) if noise else reg.posterior_.diagnostics["noise_std"]
        lam = sigma_z**2 / s**2
        assert reg.posterior_.summary().l2_strength["weights"][0] == pytest.approx(lam)
        ridge = Ridge(alpha=lam).fit(X, y)
        assert reg.coef_.shape == (10,)
        np.testing.assert_allclose(reg.coef_, ridge.coef_, rtol=1e-6)
        np.testing.assert_allclose(reg.intercept_, ridge.intercept_, rtol=1e-6)
    # a network has no coefficients
    net = BayesianRegressor(model=br.MLP((4,)), method=br.MAP(steps=20)).fit(X[:50], y[:50])
    assert not hasattr(net, "coef_")
    with pytest.raises(AttributeError, match="linear-in-parameters"):
        net.intercept_  # noqa: B018
    assert not hasattr(BayesianRegressor(), "coef_")  # not fitted


def test_an_omitted_prior_is_left_to_br_fit(monkeypatch):
    """No prior given: the estimator passes prior=None so that br.fit's default (which may
    learn the prior's scale) applies; a given prior is passed as given."""
    import bayesreg.estimators as est

    seen = []

    def spy(*args, **kwargs):
        seen.append(kwargs["prior"])
        return br.fit(*args, **kwargs)

    monkeypatch.setattr(est, "fit", spy)
    X, y = br.datasets.book_example(n=20)
    BayesianRegressor(method=br.Exact()).fit(X, y)
    BayesianRegressor(method=br.Exact(), prior=br.Gaussian(2.0)).fit(X, y)
    assert seen == [None, br.Gaussian(2.0)]


def test_pipeline_and_grid_search_over_the_prior_scale():
    X, y = br.datasets.book_example(n=40)
    pipe = make_pipeline(StandardScaler(), BayesianRegressor(
        model=br.Polynomial(3), method=br.Exact(), likelihood=br.GaussianLikelihood(0.3)))
    grid = GridSearchCV(pipe, {"bayesianregressor__prior": [br.Gaussian(0.01),
                                                             br.Gaussian(10.0)]},
                        cv=KFold(3, shuffle=True, random_state=0))
    grid.fit(X, y)
    assert grid.best_params_["bayesianregressor__prior"] == br.Gaussian(10.0)


def test_classifier_labels_and_probabilities():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((150, 2))
    labels = np.array(["a", "b", "c"])[np.argmax(X @ rng.standard_normal((2, 3)), axis=1)]
    clf = BayesianClassifier(method=br.MAP(steps=800)).fit(X, labels)
    proba = clf.predict_proba(X)
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    assert clf.score(X, labels) > 0.9
    assert set(clf.predict(X)) <= {"a", "b", "c"}
    with pytest.raises(ValueError, match="one class"):
        BayesianClassifier().fit(X, np.zeros(150))
