import numpy as np
import pytest
from scipy import integrate, optimize, stats

import bayesreg as br

RNG = np.random.default_rng(0)
F = RNG.normal(0.0, 1.0, (40, 3)) + np.array([0.0, 2.0, -1.0])
S = np.abs(RNG.normal(0.5, 0.2, (40, 1))) + 0.1  # a different noise per draw
Y = np.array([0.3, 2.5, -3.0])


def _mixture_cdf(z, j):
    return np.mean(stats.norm.cdf(z, F[:, j], S[:, 0]))


def _mixture_pdf(z, j):
    return np.mean(stats.norm.pdf(z, F[:, j], S[:, 0]))


def test_moments_follow_the_design_definitions():
    pred = br.Predictive(F, S)
    np.testing.assert_allclose(pred.mean, F.mean(0))
    np.testing.assert_allclose(pred.epistemic_std, F.std(0))
    np.testing.assert_allclose(pred.aleatoric_std, np.sqrt(np.mean(S**2)))
    # the mixture's exact variance, by numerical integration
    for j in range(3):
        m2 = integrate.quad(lambda z, j=j: z**2 * _mixture_pdf(z, j), -30, 30, limit=200)[0]
        assert pred.std[j] ** 2 == pytest.approx(m2 - pred.mean[j] ** 2, rel=1e-5)


def test_log_prob_is_the_log_mixture_density():
    pred = br.Predictive(F, S)
    expected = [np.log(_mixture_pdf(Y[j], j)) for j in range(3)]
    np.testing.assert_allclose(pred.log_prob(Y), expected, rtol=1e-5)


@pytest.mark.parametrize("level", [0.5, 0.9, 0.95])
def test_interval_is_the_mixture_quantiles(level):
    pred = br.Predictive(F, S)
    lo, hi = pred.interval(level)
    for j in range(3):
        q_lo = optimize.brentq(lambda z, j=j: _mixture_cdf(z, j) - (1 - level) / 2, -30, 30)
        q_hi = optimize.brentq(lambda z, j=j: _mixture_cdf(z, j) - (1 + level) / 2, -30, 30)
        assert lo[j] == pytest.approx(q_lo, abs=1e-4)
        assert hi[j] == pytest.approx(q_hi, abs=1e-4)


def test_crps_is_the_integral_of_the_squared_cdf_gap():
    pred = br.Predictive(F, S)
    got = pred.crps(Y)
    for j in range(3):
        below = integrate.quad(lambda z, j=j: _mixture_cdf(z, j) ** 2, -30, Y[j], limit=200)[0]
        above = integrate.quad(lambda z, j=j: (1 - _mixture_cdf(z, j)) ** 2, Y[j], 30,
                               limit=200)[0]
        assert got[j] == pytest.approx(below + above, rel=1e-4)


def test_gaussian_predictive_is_analytic():
    mean, var_f, sigma = np.array([0.0, 1.0]), np.array([0.25, 1.0]), 0.5
    pred = br.Predictive(np.zeros((10, 2)), np.full((10, 1), sigma), analytic=(mean, var_f))
    assert pred.is_gaussian
    sd = np.sqrt(var_f + sigma**2)
    np.testing.assert_allclose(pred.std, sd)
    lo, hi = pred.interval(0.95)
    np.testing.assert_allclose(lo, mean - 1.959964 * sd, rtol=1e-6)
    np.testing.assert_allclose(hi, mean + 1.959964 * sd, rtol=1e-6)
    y = np.array([0.2, -0.5])
    np.testing.assert_allclose(pred.log_prob(y), stats.norm.logpdf(y, mean, sd))
    for j in range(2):
        num = integrate.quad(lambda z, j=j: (stats.norm.cdf(z, mean[j], sd[j])
                                            - (z >= y[j])) ** 2, -20, 20, points=[y[j]],
                             limit=200)[0]
        assert pred.crps(y)[j] == pytest.approx(num, rel=1e-5)


def test_single_draw_is_gaussian_and_mixture_code_agrees_with_it():
    pred = br.Predictive(F[:1], S[:1])
    assert pred.is_gaussian and np.all(pred.epistemic_std == 0)
    # the same distribution written as 2 identical draws goes through the mixture code
    twin = br.Predictive(np.repeat(F[:1], 2, 0), np.repeat(S[:1], 2, 0))
    assert not twin.is_gaussian
    np.testing.assert_allclose(twin.interval(0.9)[0], pred.interval(0.9)[0], atol=1e-4)
    np.testing.assert_allclose(twin.log_prob(Y), pred.log_prob(Y), rtol=1e-5)
    np.testing.assert_allclose(twin.crps(Y), pred.crps(Y), rtol=1e-5)


def test_metrics_keys_and_values():
    pred = br.Predictive(F, S)
    m = pred.metrics(Y)
    assert {"rmse", "nll", "coverage_95", "crps", "mae", "width_95"} <= set(m)
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((Y - F.mean(0)) ** 2)))
    assert m["nll"] == pytest.approx(-np.mean(pred.log_prob(Y)))
    lo, hi = pred.interval(0.95)
    assert m["coverage_95"] == pytest.approx(np.mean((Y >= lo) & (Y <= hi)))
    assert "coverage_80" in pred.metrics(Y, level=0.8)


def test_coverage_is_nominal_on_data_from_the_predictive():
    # 20 000 points drawn from the predictive itself: coverage 0.95 ± 3 · 0.0015
    rng = np.random.default_rng(1)
    f = rng.normal(size=(30, 20_000))
    pred = br.Predictive(f, np.full((30, 1), 0.5))
    pick = rng.integers(0, 30, 20_000)
    y = f[pick, np.arange(20_000)] + 0.5 * rng.standard_normal(20_000)
    assert pred.metrics(y)["coverage_95"] == pytest.approx(0.95, abs=0.0046)


@pytest.mark.parametrize("level", [0.0, 1.0, -0.5, 95, "high"])
def test_bad_levels_raise(level):
    with pytest.raises(ValueError, match="level"):
        br.Predictive(F, S).interval(level)


def test_bad_y_raises():
    pred = br.Predictive(F, S)
    with pytest.raises(ValueError, match="y has 2 rows"):
        pred.log_prob(Y[:2])
    with pytest.raises(ValueError, match="NaN"):
        pred.metrics(np.array([0.0, np.nan, 1.0]))
