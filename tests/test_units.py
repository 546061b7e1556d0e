"""``standardize=True``: the target fitted in standard units and every result mapped back
(bayesreg._units).

Two kinds of check: a fit in standard units against the same posterior computed without them
(Exact on the pre-centred target with ``center=False``, where nothing is rescaled: every
number must agree to rounding), and equivariance — y times k gives every result times k (and
the log densities shifted by −log k per label) — at scales where the defaults used to train a
network to a constant.
"""

import math
import warnings

import numpy as np
import pytest

import bayesreg as br


def _curve(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, (n, 1))
    return X, np.sin(2 * X[:, 0]) + 0.2 * rng.standard_normal(n)


X_GRID = np.linspace(-2, 2, 50)[:, None]


# ~5 s each, in the slow set (CI runs it): the estimators' unit test checks the default path
@pytest.mark.parametrize("k", [pytest.param(1e-3, marks=pytest.mark.slow),
                               pytest.param(1e3, marks=pytest.mark.slow)])
def test_a_network_fits_a_target_of_any_scale_in_standard_units(k):
    # in y's units MLP((50,)) on this curve times 1000 or divided by 1000 trains to a
    # constant (test RMSE 0.66 · k, σ = std y, the learned prior scales at their 1e-4
    # clip), and says so
    X, y = _curve()
    with pytest.warns(UserWarning, match="standardize=True"):
        raw = br.fit(br.MLP((50,)), X, y * k, seed=0)
    assert raw.diagnostics["noise_std"] / k > 0.6
    post = br.fit(br.MLP((50,)), X, y * k, seed=0, standardize=True)
    assert post.scale == pytest.approx(k * np.std(y), rel=1e-6)
    rmse = np.sqrt(np.mean((post.predict(X_GRID).mean / k - np.sin(2 * X_GRID[:, 0])) ** 2))
    assert rmse < 0.1  # 0.043 measured; the noise is 0.2
    assert 0.15 < float(post.noise_std()[0]) / k < 0.3  # truth 0.2


def test_every_result_moves_with_the_target_s_units():
    # y and 1000·y standardise to the same numbers up to float32 rounding (1e-7 relative),
    # so the fits agree to about that; a result left in standard units is off by 1000×
    X, y = _curve()
    k = 1000.0
    a = br.fit(br.MLP((20,)), X, y, method=br.MAP(steps=300), seed=0, standardize=True)
    b = br.fit(br.MLP((20,)), X, y * k, method=br.MAP(steps=300), seed=0, standardize=True)
    pa, pb = a.predict(X_GRID), b.predict(X_GRID)
    np.testing.assert_allclose(pb.mean / k, pa.mean, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(pb.std / k, pa.std, rtol=1e-3)
    np.testing.assert_allclose(b.noise_std() / k, a.noise_std(), rtol=1e-3)
    np.testing.assert_allclose(b.diagnostics["noise_std"] / k, a.diagnostics["noise_std"],
                               rtol=1e-3)
    # the output layer's learned prior scale moves with y, the hidden layer's does not
    sa, sb = a.diagnostics["prior_scales"]["weights"], b.diagnostics["prior_scales"]["weights"]
    np.testing.assert_allclose(sb[-1] / k, sa[-1], rtol=1e-3)
    np.testing.assert_allclose(sb[0], sa[0], rtol=1e-3)
    np.testing.assert_allclose(b.prior["weights"].scale[-1] / k, a.prior["weights"].scale[-1],
                               rtol=1e-3)
    # log densities: −log k per label
    np.testing.assert_allclose(b.predict(X).log_prob(y * k), a.predict(X).log_prob(y) - math.log(k),
                               atol=2e-3)
    np.testing.assert_allclose(b.log_likelihood(), a.log_likelihood() - math.log(k),
                               atol=2e-3)
    # the parameters predict y itself
    ma, mb = a.mean_params(), b.mean_params()
    np.testing.assert_allclose(np.asarray(mb["weights"][-1]) / k, ma["weights"][-1],
                               rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(np.asarray(mb["weights"][0]), ma["weights"][0], rtol=1e-3,
                               atol=1e-5)
    f = br.MLP((20,)).apply(mb, X_GRID)[:, 0]
    np.testing.assert_allclose(f, pb.mean, rtol=1e-4, atol=1e-3 * k * 1e-3)


def _diabetes():
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


def _exact_pair(X, y, prior, likelihood):
    """Exact in standard units (the default) and the same posterior without them: the
    pre-centred target, ``center=False`` (nothing rescaled)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        std = br.fit(br.Linear(), X, y, method=br.Exact(), prior=prior, likelihood=likelihood,
                     dtype="float64", standardize=True)
        raw = br.fit(br.Linear(), X, y - y.mean(), method=br.Exact(), prior=prior,
                     likelihood=likelihood, dtype="float64", center=False)
    return std, raw


def test_a_given_prior_and_noise_mean_what_they_say_in_the_units_of_y():
    # diabetes' raw target (std 77): the prior N(0, 10²) on the weights and σ = 50 are in
    # the units of y; in standard units the output layer's prior is N(0, (10/77)²) and σ
    # 50/77, and the posterior is the same
    X, y = _diabetes()
    std, raw = _exact_pair(X, y, br.Gaussian(10.0), br.GaussianLikelihood(50.0))
    assert std.scale == pytest.approx(np.std(y), rel=1e-12)
    assert std.prior["weights"] is raw.prior["weights"] or std.prior == raw.prior
    assert std.likelihood == br.GaussianLikelihood(50.0)
    ps, pr = std.predict(X), raw.predict(X)
    np.testing.assert_allclose(ps.mean, pr.mean + y.mean(), rtol=1e-9)
    np.testing.assert_allclose(ps.std, pr.std, rtol=1e-9)
    np.testing.assert_allclose(std.mean_params()["weights"][0], raw.mean_params()["weights"][0],
                               rtol=1e-9)
    # the evidence: log p(y) of the same model, the Jacobian of (y − ȳ)/s included
    assert std.log_evidence == pytest.approx(raw.log_evidence, rel=1e-9)
    # the pointwise log likelihood is evaluated in float32: rounding of 1e-7 relative
    np.testing.assert_allclose(std.log_likelihood(), raw.log_likelihood(), rtol=1e-6)


def test_a_learned_prior_and_noise_are_reported_in_the_units_of_y():
    X, y = _diabetes()
    std, raw = _exact_pair(X, y, None, None)
    # type-II maximum likelihood is equivariant: the same σ and prior scales either way
    np.testing.assert_allclose(std.noise_std(), raw.noise_std(), rtol=1e-5)
    np.testing.assert_allclose(std.diagnostics["prior_scales"]["weights"],
                               raw.diagnostics["prior_scales"]["weights"], rtol=1e-5)
    assert std.log_evidence == pytest.approx(raw.log_evidence, rel=1e-7)


def test_save_and_load_keep_the_units(tmp_path):
    X, y = _curve(60)
    post = br.fit(br.MLP((8,)), X, 500.0 * y, method=br.MAP(steps=100), seed=0,
                  standardize=True)
    assert post.scale != 1.0
    post.save(tmp_path / "p.npz")
    back = br.load(tmp_path / "p.npz")
    assert back.scale == post.scale
    np.testing.assert_array_equal(back.predict(X_GRID).mean, post.predict(X_GRID).mean)
    np.testing.assert_array_equal(back.predict(X_GRID).std, post.predict(X_GRID).std)


@pytest.mark.parametrize("case", ["center", "laplace_prior", "heteroscedastic",
                                  "function_model", "classification"])
def test_fits_that_are_not_only_a_change_of_units_refuse_standard_units(case):
    X, y = _curve(40)
    kwargs = {"method": br.MAP(steps=5), "standardize": True}
    model = br.MLP((4,))
    if case == "center":
        kwargs["center"] = False
    elif case == "laplace_prior":
        kwargs["prior"] = br.Laplace(1.0)
    elif case == "heteroscedastic":
        kwargs["likelihood"] = br.HeteroscedasticGaussian()
    elif case == "function_model":
        import jax.numpy as jnp

        model = br.FunctionModel(lambda p, X: X @ p["w"] + p["b"],
                                 {"w": jnp.zeros((1, 1)), "b": jnp.zeros(1)})
    else:
        y, kwargs["likelihood"] = (y > 0).astype(int), br.Bernoulli()
    with pytest.raises(ValueError, match="standardize=True cannot"):
        br.fit(model, X, y, **kwargs)


def test_the_default_stays_in_the_units_of_y():
    X, y = _curve(40)
    assert br.fit(br.MLP((4,)), X, 100 * y, method=br.MAP(steps=5)).scale == 1.0
