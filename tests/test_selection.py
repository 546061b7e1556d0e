import numpy as np
import pytest

import bayesreg as br


@pytest.fixture(scope="module")
def data():
    return br.datasets.book_example(n=30, seed=2)


def test_evidence_scores_are_the_exact_log_evidences(data):
    X, y = data
    lik = br.GaussianLikelihood(0.3)
    sel = br.select_prior_scale(br.relu_basis(8), X, y, scales=[0.3, 3.0, 30.0], likelihood=lik)
    assert sel.method == "Exact"
    for s, score in zip(sel.scales, sel.scores, strict=True):
        post = br.fit(br.relu_basis(8), X, y, method=br.Exact(), prior=br.Gaussian(s),
                      likelihood=lik)
        assert score == pytest.approx(post.log_evidence, rel=1e-10)
    assert sel.best_scale == sel.scales[int(np.argmax(sel.scores))]
    assert sel.best_prior == br.Gaussian(sel.best_scale)
    assert "(best)" in sel.to_markdown() and sel.to_dict()["by"] == "evidence"


def test_validation_and_cv_score_held_out_log_density(data):
    X, y = data
    lik = br.GaussianLikelihood(0.3)
    sel = br.select_prior_scale(br.Polynomial(3), X, y, scales=[0.1, 10.0], by="validation",
                                likelihood=lik, method=br.Exact(), seed=4)
    perm = np.random.default_rng(4).permutation(len(y))
    val, train = np.sort(perm[:6]), np.sort(perm[6:])
    post = br.fit(br.Polynomial(3), X[train], y[train], method=br.Exact(),
                  prior=br.Gaussian(10.0), likelihood=lik, seed=4)
    assert sel.scores[1] == pytest.approx(np.mean(post.predict(X[val]).log_prob(y[val])))
    cv = br.select_prior_scale(br.Polynomial(3), X, y, scales=[0.1, 10.0], by="cv", folds=3,
                               likelihood=lik, method=br.Exact())
    assert len(cv.scores) == 2 and cv.by == "cv"


@pytest.mark.slow
def test_evidence_for_networks_uses_laplace():
    X, y = br.datasets.gap_example(n=30)
    sel = br.select_prior_scale(br.MLP((6,), activation="tanh"), X, y, scales=[0.05, 1.0],
                                likelihood=br.GaussianLikelihood(0.1))
    assert sel.method == "LaplaceApprox"
    assert sel.best_scale == 1.0  # a 0.05 prior cannot fit sin(3x)


def test_selection_errors(data):
    X, y = data
    with pytest.raises(ValueError, match="by must be"):
        br.select_prior_scale(br.Linear(), X, y, by="aic")
    with pytest.raises(ValueError, match="scales"):
        br.select_prior_scale(br.Linear(), X, y, scales=[-1.0])
    with pytest.raises(ValueError, match="proper prior"):
        br.select_prior_scale(br.Linear(), X, y, scales=[1.0],
                              prior=lambda s: {"weights": br.Gaussian(s), "biases": br.Flat()})
