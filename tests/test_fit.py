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
    a = br.fit(br.Linear(), X, Y[:, None], method=br.Exact(num_samples=10))
    b = br.fit(br.Linear(), X, Y, method=br.Exact(num_samples=10))
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
        (np.zeros(3), np.zeros((3, 2, 2)), r"y must have shape \(N,\)"),
        (np.zeros(3), np.zeros((3, 2)), "Exact does not fit several tasks"),  # Y (N, T)
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
    with pytest.raises(ValueError, match="num_samples"):
        br.Exact(num_samples=0)


def test_predict_rejects_nan_and_wrong_width():
    post = br.fit(br.Linear(), X, Y, method=br.Exact(num_samples=10))
    with pytest.raises(ValueError, match="NaN"):
        post.predict(np.array([np.nan]))
    with pytest.raises(ValueError, match=r"expected shape \(N, 1\)"):
        post.predict(np.ones((2, 3)))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"likelihood": "gaussian"},
         r"likelihood must be .*br\.GaussianLikelihood\(\).*'gaussian'"),
        ({"likelihood": br.Gaussian(1.0)}, "likelihood must be"),
        ({"prior": "gaussian"}, r"prior must be .*br\.Gaussian\(1\.0\).*'gaussian'"),
    ],
)
def test_wrong_argument_types_are_type_errors(kwargs, match):
    with pytest.raises(TypeError, match=match):
        br.fit(br.Linear(), X, Y, method=br.Exact(num_samples=10), **kwargs)


@pytest.mark.parametrize(
    ("X", "y", "match"),
    [
        # numpy would parse these strings as numbers: refuse them instead of guessing
        (X.astype(str), Y, r"X must be numeric; got an array of str"),
        (X, Y.astype(str), r"y must be numeric; got an array of str"),
        (np.array([str(v) for v in X], dtype=object), Y, r"X must be numeric; .*'0\.0' \(str\)"),
        (X, np.array([*Y[:-1], "1.5"], dtype=object), r"y must be numeric; .*'1\.5' \(str\)"),
        (X.astype("datetime64[s]"), Y, "X must be numeric"),
        (X + 1j, Y, "X must be numeric"),
    ],
)
def test_non_numeric_data_is_refused(X, y, match):
    with pytest.raises(ValueError, match=match):
        br.fit(br.Linear(), X, y, method=br.Exact(num_samples=10))


def test_booleans_and_numeric_objects_are_numbers():
    # booleans are 0/1 (binary features, Bernoulli labels); object arrays of numbers are fine
    flags = X > 0.5
    exact, prior = br.Exact(num_samples=10), br.Gaussian(1.0)  # the data path, not the prior
    a = br.fit(br.Linear(), flags, Y, method=exact, prior=prior)
    b = br.fit(br.Linear(), flags.astype(float), Y, method=exact, prior=prior)
    np.testing.assert_allclose(a.gaussian.mean, b.gaussian.mean)
    c = br.fit(br.Linear(), np.array(list(X), dtype=object), Y, method=exact, prior=prior)
    np.testing.assert_allclose(c.gaussian.mean, br.fit(br.Linear(), X, Y, method=exact,
                                                       prior=prior).gaussian.mean)
    post = br.fit(br.Linear(), X, Y > 0.5, likelihood=br.Bernoulli(), method=br.MAP(steps=50))
    assert post.predict(X).probs.shape[0] == 12


@pytest.mark.parametrize("kw", [{"method": br.MAP}, {"model": br.Linear},
                                {"likelihood": br.GaussianLikelihood}])
def test_a_class_instead_of_an_instance_says_so(kw):
    X, y = np.arange(5.0), np.arange(5.0)
    args = {"model": br.Linear(), **kw}
    with pytest.raises(TypeError, match=r"must be an instance, e\.g\. \w+=br\.\w+\(\)"):
        br.fit(args.pop("model"), X, y, **args)


@pytest.mark.parametrize("make, match, error", [
    (lambda: br.MAP(momentum="a"), "momentum must be a real number", TypeError),
    (lambda: br.MAP(momentum=float("nan")), r"momentum must be finite and in \[0, 1\)",
     ValueError),
    (lambda: br.NUTS(target_accept="high"), "target_accept must be a real number", TypeError),
    (lambda: br.NUTS(target_accept=None), "target_accept must be a real number", TypeError),
    (lambda: br.NUTS(init_jitter=float("nan")), "init_jitter must be finite", ValueError),
    (lambda: br.NUTS(init_jitter=float("inf")), "init_jitter must be finite", ValueError),
    (lambda: br.Exact(tol=-1), r"tol must be finite and in \(0, inf\)", ValueError),
    (lambda: br.Exact(tol=float("nan")), "tol must be finite", ValueError),
    (lambda: br.Ensemble(bagging="yes"), "bagging must be True or False", TypeError),
])
def test_settings_are_checked_where_they_are_made_and_named(make, match, error):
    """Issue 23's probe: these were bare float() errors or were accepted and failed later."""
    with pytest.raises(error, match=match):
        make()
