import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, KFold
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
    X, y = br.datasets.book_example(n=30)
    reg = BayesianRegressor(model=br.Polynomial(3), method=br.Exact(), prior=br.Gaussian(10.0),
                            likelihood=br.GaussianLikelihood(0.3)).fit(X, y)
    post = br.fit(br.Polynomial(3), X, y, method=br.Exact(), prior=br.Gaussian(10.0),
                  likelihood=br.GaussianLikelihood(0.3))
    mean, std = reg.predict(X, return_std=True)
    np.testing.assert_allclose(mean, post.predict(X).mean)
    np.testing.assert_allclose(std, post.predict(X).std)
    lo, hi = reg.predict_interval(X)
    assert np.all(lo < mean) and np.all(mean < hi)
    assert reg.score(X, y) > 0.5


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
