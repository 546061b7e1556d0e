import numpy as np
import pytest
from scipy import integrate, optimize, special, stats

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


@pytest.mark.slow
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


# -- CRPS with many draws: every pair of components, whatever the order --------------------

def _abs_moment(mu, sd):
    """E|mu + sd·Z|, Z ~ N(0, 1) (float64)."""
    z = mu / sd
    return mu * (2 * special.ndtr(z) - 1) + sd * np.sqrt(2 / np.pi) * np.exp(-0.5 * z * z)


def mixture_crps_pairs(f, s, y):
    """The O(S²) definition of the mixture's CRPS, in float64: E|Y − y| − ½ E|Y − Y'| with
    E|Y − Y'| = (1/S²) Σₛ Σₜ E|N(fₛ − fₜ, σₛ² + σₜ²)| over every pair of components."""
    f, s = np.asarray(f, np.float64), np.broadcast_to(np.asarray(s, np.float64), f.shape)
    out = []
    for j in range(f.shape[1]):
        fj, sj = f[:, j], s[:, j]
        pairs = sum(np.sum(_abs_moment(fj[a:a + 500, None] - fj[None, :],
                                       np.hypot(sj[a:a + 500, None], sj[None, :])))
                    for a in range(0, len(fj), 500))
        out.append(np.mean(_abs_moment(y[j] - fj, sj)) - 0.5 * pairs / len(fj) ** 2)
    return np.array(out)


def _heavy_tailed_draws(n_draws=3000, seed=0):
    """t₂ draws of f at 4 points, with a homoscedastic, a per-draw, a near-zero and a wide
    noise: the pairwise term's two regimes (components overlapping, components apart)."""
    rng = np.random.default_rng(seed)
    f = rng.standard_t(2, (n_draws, 4)) + np.array([0.0, 1.0, -2.0, 0.5])
    s = np.empty_like(f)
    s[:, 0] = 0.5
    s[:, 1] = rng.uniform(0.05, 1.0, n_draws)
    s[:, 2] = 1e-3
    s[:, 3] = 3.0
    return f, s, np.array([0.0, 2.0, -2.5, 8.0])


def test_crps_with_many_draws_is_the_all_pairs_value_in_any_order():
    # before: 256 evenly spaced draws for the pairwise term — 0.64 vs 0.31 shuffled and
    # −0.33 sorted on t₂ draws
    f, s, y = _heavy_tailed_draws()
    exact = mixture_crps_pairs(f, s, y)
    order = np.argsort(f, axis=0)
    for name, idx in (("shuffled", np.arange(len(f))[:, None]), ("sorted", order),
                      ("reversed", order[::-1])):
        got = br.Predictive(np.take_along_axis(f, np.broadcast_to(idx, f.shape), 0),
                            np.take_along_axis(s, np.broadcast_to(idx, f.shape), 0)).crps(y)
        np.testing.assert_allclose(got, exact, rtol=2e-5, err_msg=name)
        assert np.all(got > 0)


def test_crps_with_many_gaussian_draws_matches_the_gaussian_closed_form():
    """f ~ N(μ, τ²) in S = 4000 draws, noise σ: the mixture tends to N(μ, τ² + σ²). The
    mixture CRPS is (1/S) Σₛ g(fₛ) + O(1/S) with g(x) = E|x + σZ − y| − E|x − Y'| (its
    first-order projection), so its Monte Carlo error is sd(g)/√S; allow 4 of them plus the
    O(1/S) pairs s = t."""
    rng = np.random.default_rng(3)
    n_draws, mu, tau, sigma = 4000, np.array([0.0, 1.0, -1.0]), 0.8, 0.5
    y = np.array([0.3, -0.5, 1.2])
    f = mu + tau * rng.standard_normal((n_draws, 3))
    got = br.Predictive(f, np.full((n_draws, 1), sigma)).crps(y)
    sd = np.hypot(tau, sigma)
    z = (y - mu) / sd
    closed = sd * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi))
    g = _abs_moment(y - f, sigma) - _abs_moment(f - mu, np.hypot(tau, np.sqrt(2) * sigma))
    tol = 4 * g.std(0) / np.sqrt(n_draws) + 2 * sd / n_draws
    assert np.all(np.abs(got - closed) < tol), (got, closed, tol)
    # sorted draws are the same mixture
    np.testing.assert_allclose(br.Predictive(np.sort(f, 0), np.full((n_draws, 1), sigma))
                               .crps(y), got, rtol=1e-5)


@pytest.mark.parametrize("spread, noise", [(0.3, (0.5, 0.5)), (0.3, (0.1, 2.0)),
                                           (30.0, (0.01, 0.02)), (3.0, (0.2, 1.0))],
                         ids=["overlapping", "overlapping-hetero", "apart", "between"])
def test_crps_is_exact_to_float64_rounding(spread, noise):
    # in float64 both evaluations of the pairwise term (quadrature where the components
    # overlap, sorting where they are apart) reach the all-pairs value to rounding
    import jax

    rng = np.random.default_rng(7)
    f = spread * rng.standard_t(4, (400, 3))
    s = rng.uniform(*noise, (400, 3))
    y = np.array([0.0, spread, -2 * spread])
    with jax.enable_x64(True):
        got = br.Predictive(f, s).crps(y)
    np.testing.assert_allclose(got, mixture_crps_pairs(f, s, y), rtol=1e-11)
