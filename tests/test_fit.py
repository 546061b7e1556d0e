import numpy as np
import pytest

import bayesreg as br

X = np.linspace(0, 1, 12)
Y = np.sin(3 * X)


def test_defaults_are_map_gaussian_prior_learned_noise():
    post = br.fit(br.Linear(), X, Y)
    assert post.method == "MAP"
    # an omitted prior: one Gaussian scale per parameter array, learned by the evidence
    scales = post.diagnostics["prior_scales"]
    assert post.prior["weights"] == br.Gaussian([float(scales["weights"][0])])
    assert post.diagnostics["hyperparameters"] == "evidence"
    assert post.likelihood.learned_noise
    assert post.predict(X).mean.shape == (12,)


def test_y_of_shape_n_by_1_is_treated_as_n():
    a = br.fit(br.Linear(), X, Y[:, None], method=br.Exact(num_draws=10))
    b = br.fit(br.Linear(), X, Y, method=br.Exact(num_draws=10))
    np.testing.assert_allclose(a.gaussian.mean, b.gaussian.mean)
    pred = a.predict(X)
    assert pred.mean.shape == (12,)
    np.testing.assert_allclose(pred.log_prob(Y[:, None]), pred.log_prob(Y))


@pytest.mark.parametrize(
    ("X", "y", "match"),
    [
        (np.array([0.0, np.nan, 1.0]), np.zeros(3), "X contains 1 NaN"),
        (np.array([0.0, np.inf, 1.0]), np.zeros(3), "X contains"),
        (np.zeros(3), np.array([0.0, np.nan, 1.0]), "y contains 1 NaN"),
        (np.zeros(3), np.zeros(4), r"y has 4 rows but X has 3; expected shape \(3,\)"),
        (np.zeros((3, 2, 2)), np.zeros(3), r"X must have shape \(N, D\)"),
        (np.zeros(3), np.zeros((3, 2)), r"y must have shape \(N,\)"),
        (np.zeros((0, 2)), np.zeros(0), "at least one row"),
        (np.array(["a", "b"]), np.zeros(2), "numeric"),
    ],
)
def test_bad_data_raises_naming_the_argument(X, y, match):
    with pytest.raises(ValueError, match=match):
        br.fit(br.Linear(), X, y, method=br.Exact())


def test_bad_arguments_raise():
    with pytest.raises(TypeError, match="method"):
        br.fit(br.Linear(), X, Y, method="nuts")
    with pytest.raises(TypeError, match="model"):
        br.fit("linear", X, Y)
    with pytest.raises(ValueError, match="seed"):
        br.fit(br.Linear(), X, Y, seed=-1)
    with pytest.raises(ValueError, match="num_draws"):
        br.Exact(num_draws=0)


def test_predict_rejects_nan_and_wrong_width():
    post = br.fit(br.Linear(), X, Y, method=br.Exact(num_draws=10))
    with pytest.raises(ValueError, match="NaN"):
        post.predict(np.array([np.nan]))
    with pytest.raises(ValueError, match=r"expected shape \(N, 1\)"):
        post.predict(np.ones((2, 3)))
