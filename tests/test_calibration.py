"""br.calibrate: conformal, variance scaling and isotonic recalibration of a regression posterior.

Data: x ~ U(−1, 1), y = x³ − x + N(0, 0.3²); the model (Polynomial(3), Exact) is right but its
noise is fixed at 0.1, a third of the truth, so its 95 % intervals cover about half the points.
"""

import contextlib
import dataclasses
import io
import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import integrate, optimize, stats

import bayesreg as br
from bayesreg.calibration import ConformalPredictive, IsotonicPredictive, conformal_quantile

TRUE_SIGMA = 0.3
METHODS = ("conformal", "scale", "isotonic")


def toy(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, n)
    return x, x**3 - x + TRUE_SIGMA * rng.standard_normal(n)


def fit(noise, seed=0):
    x, y = toy(300, seed)
    return br.fit(br.Polynomial(3), x, y, method=br.Exact(),
                  likelihood=br.GaussianLikelihood(noise=noise))


@pytest.fixture(scope="module")
def overconfident():
    return fit(TRUE_SIGMA / 3)


@pytest.fixture(scope="module")
def val():
    return toy(2000, 1)


@pytest.fixture(scope="module")
def test_data():
    return toy(3000, 2)


def coverage(pred, y, level=0.95):
    lo, hi = pred.interval(level)
    return float(np.mean((y >= lo) & (y <= hi)))


@pytest.mark.parametrize("method", METHODS)
def test_overconfident_fit_is_recalibrated_to_95_percent(method, overconfident, val, test_data):
    # n = 2000 calibration points. Conformal: given the calibration set the coverage is
    # Beta(k, n + 1 − k), k = ⌈2001·0.95⌉ = 1901: mean 0.950, sd √(.95·.05/2002) = 0.0049;
    # 3000 test points add a binomial sd of √(.95·.05/3000) = 0.0040; together 0.0063, so
    # [0.93, 0.97] is ±3.2 sd (fails with probability ≈ 0.15 %). Scale: c has relative sd
    # 1/√(2n) = 1.6 %, moving the coverage by 2·1.96·φ(1.96)·0.016 = 0.004 sd; isotonic's
    # 97.5 % and 2.5 % knots are empirical quantiles, like conformal's.
    x_test, y_test = test_data
    assert coverage(overconfident.predict(x_test), y_test) < 0.6  # the problem
    cal = br.calibrate(overconfident, *val, method=method)
    pred = cal.predict(x_test)
    m = pred.metrics(y_test)
    assert 0.93 <= m["coverage_95"] <= 0.97
    assert m["coverage_95"] == coverage(pred, y_test)
    # nll and crps against the same model with the true noise (the oracle): recalibration
    # should recover it up to O(1/√n) in c, kernel smoothing (conformal) and the rough R′
    # of isotonic (≈ 0.02–0.03 nats in simulations: module doc); 0.06 nats, 2 % of crps
    oracle = fit(TRUE_SIGMA).predict(x_test).metrics(y_test)
    base = overconfident.predict(x_test).metrics(y_test)
    assert base["nll"] > 2.0
    assert abs(m["nll"] - oracle["nll"]) < 0.06
    assert m["crps"] == pytest.approx(oracle["crps"], rel=0.02)
    assert m["sharpness"] == pytest.approx(oracle["sharpness"], rel=0.05)
    assert set(m) == set(base)
    np.testing.assert_allclose(pred.point, overconfident.predict(x_test).point)


def test_conformal_guarantee_over_random_splits(overconfident):
    # Given the pool, a random split makes calibration and test points exchangeable, so a
    # test point's coverage is exactly k/(n + 1), k = ⌈(n + 1)·level⌉ (no ties). n = 30:
    # k/(n+1) = 28/31 = 0.903 at 0.9 and 16/31 = 0.516 at 0.5, where the uncorrected
    # ⌈n·level⌉ would give 27/31 = 0.871 and 15/31 = 0.484. Per split the coverage is
    # about Beta(k, n + 1 − k): sd ≤ 0.09; over 200 splits the mean has sd ≤ 0.0064, and
    # the band below is 3.5 of those; the missing (n + 1) is off by 5 of them.
    x, y = toy(500, 3)
    rng = np.random.default_rng(0)
    n, splits = 30, 200
    cover = {0.9: [], 0.5: []}
    for _ in range(splits):
        perm = rng.permutation(len(x))
        cal = br.calibrate(overconfident, x[perm[:n]], y[perm[:n]], method="conformal")
        pred = cal.predict(x[perm[n:]])
        for level in cover:
            cover[level].append(coverage(pred, y[perm[n:]], level))
    for level, values in cover.items():
        k = math.ceil((n + 1) * level)
        mc = np.std(values) / math.sqrt(splits)
        assert np.mean(values) >= level - 3.5 * mc
        assert abs(np.mean(values) - k / (n + 1)) <= 3.5 * mc


def test_conformal_intervals_come_from_the_stored_scores(overconfident, val, test_data):
    x, y = val[0][:24], val[1][:24]
    cal = br.calibrate(overconfident, x, y, method="conformal")
    pred = overconfident.predict(x)
    np.testing.assert_allclose(cal.scores, np.sort(np.abs(y - pred.mean) / pred.std))
    assert not cal.scores.flags.writeable
    new = cal.predict(test_data[0][:50])
    base = overconfident.predict(test_data[0][:50])
    # k by exact rational arithmetic: 25·0.28 and 25·0.56 are 7.000000000000001 and
    # 14.000000000000002 in floating point, whose naive ceil would take one score too many
    for level in (0.28, 0.5, 0.56, 0.9, 0.95):
        k = math.ceil(25 * Fraction(str(level)))
        assert conformal_quantile(cal.scores, level) == cal.scores[k - 1]
        lo, hi = new.interval(level)
        np.testing.assert_allclose(hi, base.mean + cal.scores[k - 1] * base.std, rtol=1e-6)
        np.testing.assert_allclose(lo, base.mean - cal.scores[k - 1] * base.std, rtol=1e-6)
    lo, hi = new.interval(0.97)  # ⌈25·0.97⌉ = 25 > 24: the conformal interval is unbounded
    assert np.all(np.isinf(lo)) and np.all(np.isinf(hi))


def test_conformal_density_is_a_smoothed_plug_in(overconfident, val):
    cal = br.calibrate(overconfident, *val, method="conformal")
    grid = np.linspace(-4.0, 4.0, 8001)
    pred = cal.predict(np.full(grid.size, 0.3))
    assert isinstance(pred, ConformalPredictive)
    dens = np.exp(pred.log_prob(grid))
    assert integrate.trapezoid(dens, grid) == pytest.approx(1.0, abs=1e-4)
    mean = integrate.trapezoid(grid * dens, grid)
    sd = math.sqrt(integrate.trapezoid((grid - mean) ** 2 * dens, grid))
    assert mean == pytest.approx(pred.mean[0], abs=1e-4)
    assert sd == pytest.approx(pred.std[0], rel=1e-3)
    # close to, not equal to, the conformal interval (2000 scores, small bandwidth)
    lo, hi = pred.smoothed.interval(0.95)
    c_lo, c_hi = pred.interval(0.95)
    assert hi[0] - lo[0] == pytest.approx(c_hi[0] - c_lo[0], rel=0.03)


def test_scale_is_the_validation_mle_closed_form(overconfident, val):
    cal = br.calibrate(overconfident, *val, method="scale")
    base = overconfident.predict(val[0])
    z = (val[1] - base.mean) / base.std
    assert cal.scale == pytest.approx(math.sqrt(np.mean(z**2)), rel=1e-6)
    # the closed form is the argmax of the validation log density
    best = optimize.minimize_scalar(
        lambda c: -np.mean(stats.norm.logpdf(val[1], base.mean, c * base.std)),
        bounds=(0.1, 10.0), method="bounded", options={"xatol": 1e-8}).x
    assert cal.scale == pytest.approx(best, rel=1e-5)
    pred = cal.predict(val[0])
    assert isinstance(pred, br.Predictive) and pred.is_gaussian
    np.testing.assert_allclose(pred.mean, base.mean)
    np.testing.assert_allclose(pred.std, cal.scale * base.std, rtol=1e-5)
    np.testing.assert_allclose(pred.epistemic_std, cal.scale * base.epistemic_std, rtol=1e-5)
    np.testing.assert_allclose(pred.aleatoric_std, cal.scale * base.aleatoric_std, rtol=1e-5)


class MixturePosterior:
    """Duck-typed posterior whose predictive is a 40-draw mixture f_s(x) = x + b_s."""

    likelihood = br.GaussianLikelihood(noise=0.2)
    n_features = 1
    offsets = np.random.default_rng(5).normal(0.0, 0.5, 40)[:, None]

    def predict(self, X, **kwargs):
        x = np.asarray(X, np.float64).reshape(-1)
        return br.Predictive(x[None, :] + self.offsets, np.full((40, 1), 0.2))


def mixture_data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, n)
    return x, x + 1.2 * rng.standard_normal(n)  # spread 1.2 against the mixture's 0.54


def test_scale_of_a_mixture_maximises_the_validation_density():
    post, (x, y) = MixturePosterior(), mixture_data(300, 0)
    cal = br.calibrate(post, x, y, method="scale")
    base = post.predict(x)

    def scaled(c):  # the mixture with every draw's deviation and the noise scaled by c
        return br.Predictive(base.mean + c * (base.draws - base.mean), c * base._noise)

    grid = np.linspace(1.5, 3.0, 301)
    lpd = [np.mean(scaled(c).log_prob(y)) for c in grid]
    assert cal.scale == pytest.approx(grid[np.argmax(lpd)], abs=0.005)  # grid step 0.005
    pred = cal.predict(x)
    np.testing.assert_allclose(pred.log_prob(y), scaled(cal.scale).log_prob(y), rtol=1e-5)
    np.testing.assert_allclose(pred.std, cal.scale * base.std, rtol=1e-5)


NODES = 64  # Gauss–Legendre nodes per smooth piece


def integrate_pieces(fn, pred, extra=()):
    """∫ fn over the calibrated distribution's 1e-9 … 1 − 1e-9 quantiles, split at the knots
    (where R′, so the density, jumps) and at ``extra``: Gauss–Legendre on each smooth piece.
    ``fn(t, p)`` gets NODES abscissae and ``p``, the predictive repeated at NODES points."""
    rep = IsotonicPredictive(br.Predictive(np.repeat(pred.base.draws, NODES, axis=1),
                                           np.repeat(pred.base._noise, NODES, axis=1),
                                           None if pred.base._analytic is None else
                                           [np.repeat(a, NODES) for a in pred.base._analytic]),
                             pred.knots)
    kinks = [float(pred.quantile(p)[0]) for p in stats.norm.cdf(pred.knots[1])
             if 1e-9 < p < 1 - 1e-9]  # not the far knots of the tails
    ends = sorted([float(pred.quantile(1e-9)[0]), float(pred.quantile(1 - 1e-9)[0]),
                   *kinks, *extra])
    return sum(integrate.fixed_quad(fn, a, b, args=(rep,), n=NODES)[0]
               for a, b in itertools.pairwise(ends))


def dens(t, p):
    return np.exp(p.log_prob(t))


def test_isotonic_on_a_mixture_is_a_proper_distribution():
    post, (x, y) = MixturePosterior(), mixture_data(2000, 1)
    cal = br.calibrate(post, x, y, method="isotonic")
    pred = cal.predict(np.array([0.3]))
    # the density integrates to 1 (less the 2e-9 outside) and to the cdf
    assert integrate_pieces(dens, pred) == pytest.approx(1.0, abs=1e-6)  # float32 draws
    y0 = float(pred.quantile(0.3)[0])
    below = integrate_pieces(lambda t, p: dens(t, p) * (t <= y0), pred, [y0])
    assert below == pytest.approx(0.3, abs=1e-6)
    small = cal.predict(np.array([0.3, -0.5]))
    for q in (0.025, 0.3, 0.975):
        np.testing.assert_allclose(small.cdf(small.quantile(q)), q, atol=1e-6)
    # 2000 calibration points: the 2.5 % and 97.5 % knots are empirical quantiles, coverage
    # sd ≈ √(.95·.05/2000) = 0.0049; 4000 fresh points add 0.0034: the band is ±3.3 sd
    x_new, y_new = mixture_data(4000, 2)
    assert coverage(post.predict(x_new), y_new) < 0.7
    assert 0.93 <= coverage(cal.predict(x_new), y_new) <= 0.97


@pytest.mark.parametrize("gaussian", [True, False])
def test_isotonic_with_the_identity_map_is_the_original_predictive(gaussian):
    # R = identity (knots on the diagonal): every number must equal Predictive's own,
    # computed independently (closed forms, or the mixture's bisection and exact CRPS)
    rng = np.random.default_rng(4)
    if gaussian:
        base = br.Predictive(np.zeros((1, 6)), np.full((1, 1), 2.0))
    else:
        base = br.Predictive(rng.normal(0.0, 1.0, (40, 6)),
                             np.abs(rng.normal(0.5, 0.2, (40, 1))) + 0.1)
    y = rng.normal(0.0, 1.5, 6)
    knots = np.linspace(-3.0, 3.0, 7)
    pred = IsotonicPredictive(base, (knots, knots))
    np.testing.assert_allclose(pred.log_prob(y), base.log_prob(y), rtol=1e-6)
    for a, b in zip(pred.interval(0.9), base.interval(0.9), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)  # float32 bisection in Predictive
    # no kinks: the trapezoidal sums with end corrections are ≈ 1e-7 relative (GRID = 512)
    np.testing.assert_allclose(pred.crps(y), base.crps(y), rtol=1e-5)
    np.testing.assert_allclose(pred.mean, base.mean, atol=1e-6)
    np.testing.assert_allclose(pred.std, base.std, rtol=1e-6)


def test_isotonic_crps_mean_and_std_match_numerical_integrals(overconfident, val):
    cal = br.calibrate(overconfident, *val, method="isotonic")
    pred = cal.predict(np.array([-0.4]))
    assert isinstance(pred, IsotonicPredictive)
    assert integrate_pieces(dens, pred) == pytest.approx(1.0, abs=1e-6)  # float32 μ, σ
    mean = integrate_pieces(lambda t, p: t * dens(t, p), pred)
    sd = math.sqrt(integrate_pieces(lambda t, p: (t - mean) ** 2 * dens(t, p), pred))
    # GRID = 512 trapezoidal sums: R′ jumps at the knots, G′ with it, and each kink costs
    # ≈ h²/8·|jump|; measured 1e-5 (mean, std) and 6e-5 (crps) relative
    assert pred.mean[0] == pytest.approx(mean, abs=1e-4 * sd)
    assert pred.std[0] == pytest.approx(sd, rel=1e-4)
    for y0 in (mean - 0.5, mean, mean + 0.2):
        exact = integrate_pieces(lambda t, p, y0=y0: (p.cdf(t) - (t >= y0)) ** 2, pred, [y0])
        assert pred.crps(np.array([y0]))[0] == pytest.approx(exact, rel=2e-4)


def test_isotonic_knots_are_the_pit_ecdf_over_n_plus_1(overconfident, val):
    from sklearn.isotonic import IsotonicRegression

    cal = br.calibrate(overconfident, *val, method="isotonic")
    base = overconfident.predict(val[0])
    # in probit coordinates w = Φ⁻¹(PIT) = z-score: the PITs of a threefold overconfident
    # model round to 0 and 1 in floating point, and sklearn merges x closer than 1e-15
    w = (val[1] - base.mean) / base.std
    n = len(w)
    targets = np.array([np.sum(w <= t) for t in w]) / (n + 1)
    iso = IsotonicRegression().fit(w, targets)  # Kuleshov's fit: the ECDF itself
    u, v = cal.knots[0][1:-1], cal.knots[1][1:-1]  # the outer two: the tails' far knots
    np.testing.assert_allclose(stats.norm.cdf(v), iso.predict(u), atol=1e-9)
    assert len(u) == pytest.approx(math.sqrt(n) + 1, abs=2)


@pytest.mark.slow  # an ensemble on Boston-sized data: ~6 s
def test_isotonic_does_not_widen_a_calibrated_fit():
    # a Gaussian fit with the true σ, 100 validation rows, 12 seeds: noise in the estimated
    # map only widens the tails (measured before the uniformity test: +7.3% on average, up to
    # +29%, 0.05 nats of test NLL). With it R is the identity unless the PITs reject
    # uniformity at 5%: measured +0.5% (one seed rejects, +10%), 0.015 nats
    ratios, dnll = [], []
    for seed in range(12):
        rng = np.random.default_rng(seed)
        x = rng.uniform(-1, 1, 1200)
        y = 2 * x + 0.5 * rng.standard_normal(1200)
        post = br.fit(br.Linear(), x[:100], y[:100], method=br.Exact(), prior=br.Gaussian(1.0),
                      likelihood=br.GaussianLikelihood(0.5))
        cal = br.calibrate(post, x[100:200], y[100:200], method="isotonic")
        base, new = post.predict(x[200:]), cal.predict(x[200:])
        ratios.append(np.mean(np.subtract(*new.interval(0.95)[::-1]))
                      / np.mean(np.subtract(*base.interval(0.95)[::-1])))
        dnll.append(new.metrics(y[200:])["nll"] - base.metrics(y[200:])["nll"])
    # each seed is the identity with probability 0.95: at most 2 of 12 differ (p = 0.98),
    # each by at most the +29% seen before the test: mean ratio ≤ 1 + 2·0.29/12 ≈ 1.05
    assert np.mean(ratios) < 1.05
    assert np.mean(dnll) < 0.03
    assert sum(abs(r - 1.0) > 1e-6 for r in ratios) <= 2


def test_scale_agrees_with_uncertainty_toolbox(overconfident, val, test_data):
    recal = pytest.importorskip("uncertainty_toolbox.recalibration")
    uct = pytest.importorskip("uncertainty_toolbox")
    base = overconfident.predict(val[0])
    mean, sd = np.asarray(base.mean, np.float64), np.asarray(base.std, np.float64)
    cal = br.calibrate(overconfident, *val, method="scale")
    # the same NLL criterion through uncertainty-toolbox's own Gaussian NLL: same optimum
    best = optimize.minimize_scalar(
        lambda c: uct.metrics_scoring_rule.nll_gaussian(mean, c * sd, val[1]),
        bounds=(0.5, 10.0), method="bounded", options={"xatol": 1e-8}).x
    assert cal.scale == pytest.approx(best, rel=1e-4)
    # its own recalibration ratio minimises the mean absolute calibration error instead:
    # both estimate c = 3 from n = 2000; over 100 simulated sets of 2000 N(0, 3²) residuals
    # the two differed with sd 0.035 (max 0.095): tolerance 0.14 = 4 sd
    ratio = recal.optimize_recalibration_ratio(mean, sd, val[1], criterion="ma_cal")
    assert cal.scale == pytest.approx(ratio, abs=0.14)
    assert cal.scale == pytest.approx(3.0, abs=0.15)  # c/√(2n) = 0.047: 3 sd


def test_isotonic_agrees_with_uncertainty_toolbox(val, test_data):
    recal = pytest.importorskip("uncertainty_toolbox.recalibration")
    uct = pytest.importorskip("uncertainty_toolbox")
    # uncertainty-toolbox fits R on a grid of levels (here 1000), which cannot reach the
    # level 1 − 2e-9 a threefold overconfident model needs; a 1.5-fold one needs 0.998
    post = fit(TRUE_SIGMA / 1.5)
    base = post.predict(val[0])
    mean, sd = np.asarray(base.mean, np.float64), np.asarray(base.std, np.float64)
    exp_p, obs_p = uct.get_proportion_lists_vectorized(mean, sd, val[1], num_bins=1000,
                                                       prop_type="quantile")
    with contextlib.redirect_stdout(io.StringIO()):
        iso = recal.iso_recal(exp_p, obs_p)
    cal = br.calibrate(post, *val, method="isotonic")
    x_test, y_test = test_data
    pred, base_t = cal.predict(x_test), post.predict(x_test)
    m, s = np.asarray(base_t.mean, np.float64), np.asarray(base_t.std, np.float64)
    get = uct.metrics_calibration.get_quantile
    lo_t, hi_t = (get(m, s, np.array([q]), recal_model=iso) for q in (0.025, 0.975))
    lo, hi = pred.interval(0.95)
    # uncertainty-toolbox counts (mean − y)/σ ≤ Φ⁻¹(p), a reflected PIT, so its upper
    # quantile comes from the lower tail: compare the half-widths, which use both tails.
    # Over 30 simulated sets of 2000 N(0, 1.5²) residuals they differed by sd 0.020 of σ
    # (max 0.061): tolerance 0.08 σ = 4 sd
    np.testing.assert_allclose((hi - lo) / (2 * s), (hi_t - lo_t) / (2 * s), atol=0.08)
    assert abs(coverage(pred, y_test) - float(np.mean((y_test >= lo_t) & (y_test <= hi_t)))) \
        < 0.01


@pytest.mark.parametrize("method", METHODS)
def test_streaming_predict_matches(method, overconfident, val, test_data):
    cal = br.calibrate(overconfident, val[0][:200], val[1][:200], method=method)
    x, y = test_data[0][:50], test_data[1][:50]
    whole, streamed = cal.predict(x), cal.predict(x, stream=7)
    assert isinstance(streamed, br.StreamingPredictive)
    for a, b in zip(whole.interval(0.9), streamed.interval(0.9), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4)  # float32: a 1-point chunk rounds apart
    np.testing.assert_allclose(whole.log_prob(y), streamed.log_prob(y), rtol=1e-4)
    np.testing.assert_allclose(whole.std, streamed.std, rtol=1e-4)


def test_result_is_frozen(overconfident, val):
    cal = br.calibrate(overconfident, *val, method="isotonic")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cal.method = "scale"
    assert not cal.knots[0].flags.writeable and not cal.knots[1].flags.writeable
    assert repr(cal).startswith("CalibratedPosterior(method='isotonic', n=2000, pit_pvalue=")


def test_errors(overconfident, val):
    x, y = val
    with pytest.raises(ValueError, match="method must be one of"):
        br.calibrate(overconfident, x, y, method="platt")
    with pytest.raises(ValueError, match="y_val has 1999 rows but X has 2000"):
        br.calibrate(overconfident, x, y[:-1])
    with pytest.raises(ValueError, match="X_val has 2 features"):
        br.calibrate(overconfident, np.stack([x, x], 1), y)
    with pytest.raises(ValueError, match="at least 20 validation points; got 19"):
        br.calibrate(overconfident, x[:19], y[:19], method="scale")
    with pytest.raises(ValueError, match="y_val contains 1 NaN"):
        br.calibrate(overconfident, x, np.r_[y[:-1], np.nan])
    labels = (y > 0).astype(float)
    clf = br.fit(br.Linear(), x[:50], labels[:50], likelihood=br.Bernoulli(),
                 method=br.MAP(steps=5))
    with pytest.raises(ValueError, match="regression posterior; got one with a Bernoulli"):
        br.calibrate(clf, x, labels)
    cal = br.calibrate(overconfident, x, y, method="conformal")
    with pytest.raises(ValueError, match="level must be in"):
        cal.predict(x[:5]).interval(1.0)
