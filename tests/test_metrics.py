"""Each metric against a closed form or an independent computation."""

import numpy as np
import pytest
from scipy import integrate, stats

import bayesreg as br
from bayesreg import metrics


def _crps_pairs(samples, y):
    """The O(S²) definition: mean |X − y| − ½ mean |X − X'| over all pairs."""
    return np.array([np.mean(np.abs(samples[:, j] - y[j]))
                     - 0.5 * np.mean(np.abs(samples[:, j, None] - samples[None, :, j]))
                     for j in range(len(y))])


def test_sample_crps_equals_the_pairwise_definition():
    rng = np.random.default_rng(0)
    samples, y = rng.standard_normal((300, 4)), rng.standard_normal(4)
    np.testing.assert_allclose(metrics.crps_sample(samples, y), _crps_pairs(samples, y),
                               rtol=1e-10)


def test_sample_crps_approaches_the_gaussian_closed_form():
    rng = np.random.default_rng(1)
    y = np.array([0.0, 1.5, -2.0])
    samples = rng.normal(0.0, 1.0, (200_000, 3))
    z = y
    closed = z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi)
    np.testing.assert_allclose(metrics.crps_sample(samples, y), closed, atol=0.01)
    # and the Predictive's mixture CRPS agrees with the sample one on the same mixture
    f = rng.normal(size=(64, 3))
    pred = br.Predictive(f, np.full((64, 1), 0.4))
    big = np.concatenate([pred.sample(seed=s) for s in range(400)])  # 25 600 draws of y
    np.testing.assert_allclose(metrics.crps_sample(big, y), pred.crps(y), atol=0.01)


def test_calibration_curve_and_area():
    rng = np.random.default_rng(2)
    f = np.zeros((1, 20_000))
    y = rng.standard_normal(20_000)
    good = br.Predictive(f, np.ones((1, 1)))
    nominal, observed = metrics.calibration_curve(good, y)
    # 20 000 points: binomial standard error ≤ 0.0036; allow 4
    np.testing.assert_allclose(observed, nominal, atol=0.015)
    assert metrics.miscalibration_area(good, y) < 0.01
    over = br.Predictive(f, np.full((1, 1), 0.5))  # too confident
    _, obs = metrics.calibration_curve(over, y)
    assert np.all(obs < nominal)
    # closed form for the over-confident one: P(|Z| < z_p · 0.5)
    expected = 2 * stats.norm.cdf(stats.norm.ppf(0.5 + nominal / 2) * 0.5) - 1
    np.testing.assert_allclose(obs, expected, atol=0.015)
    assert metrics.sharpness(over) == pytest.approx(0.5)


def test_regression_metrics_are_in_predictive_metrics():
    f = np.random.default_rng(3).normal(size=(10, 30))
    pred = br.Predictive(f, np.full((10, 1), 0.3))
    y = f[0] + 0.1
    m = pred.metrics(y)
    assert {"rmse", "mae", "nll", "coverage_95", "width_95", "crps", "miscalibration_area",
            "sharpness"} <= set(m)


def test_classification_metrics_closed_forms():
    probs = np.array([[[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]],
                      [[0.7, 0.3], [0.6, 0.4], [0.4, 0.6]]])  # (S=2, N=3, C=2)
    y = np.array([0, 1, 0])
    mean = probs.mean(0)  # [[0.8,0.2],[0.5,0.5],[0.3,0.7]]
    m = metrics.classification_metrics(probs, y, bins=2)
    assert m["accuracy"] == pytest.approx(1 / 3)  # argmax picks 0, 0 (tie → 0), 1
    assert m["nll"] == pytest.approx(-np.mean(np.log([0.8, 0.5, 0.3])))
    assert m["brier"] == pytest.approx(np.mean([2 * 0.2**2, 2 * 0.5**2, 2 * 0.7**2]))
    # ECE with 2 bins: [0, .5] holds point 2 (conf .5, wrong); (.5, 1] points 1, 3
    # (conf .8 right, .7 wrong): (1/3)|0 − .5| + (2/3)|.5 − .75|
    assert m["ece"] == pytest.approx(1 / 3 * 0.5 + 2 / 3 * 0.25)
    h = stats.entropy(mean.T)
    assert m["entropy"] == pytest.approx(h.mean())
    mi = h - np.mean(stats.entropy(probs.transpose(2, 0, 1)), axis=0)
    assert m["mutual_information"] == pytest.approx(mi.mean())
    assert np.all(metrics.mutual_information(probs) >= 0)


@pytest.mark.slow
def test_class_predictive_from_every_method():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 2))
    y = (X[:, 0] - X[:, 1] + 0.3 * rng.standard_normal(120) > 0).astype(float)
    for method in (br.MAP(steps=300), br.LaplaceApprox(num_samples=100),
                   br.Ensemble(members=3, training=br.MAP(steps=300))):
        pred = br.fit(br.Linear(), X, y, method=method, likelihood=br.Bernoulli()).predict(X)
        assert isinstance(pred, br.ClassPredictive)
        assert pred.probs.shape == (120, 2)
        np.testing.assert_allclose(pred.probs.sum(1), 1.0, rtol=1e-6)
        assert pred.metrics(y)["accuracy"] > 0.85
        np.testing.assert_allclose(pred.log_prob(y), np.log(pred.probs[np.arange(120),
                                                                       y.astype(int)]))


def test_gaussian_mixture_crps_integral_matches_metrics_module():
    f = np.array([[0.0], [1.0]])
    pred = br.Predictive(f, np.array([[0.5], [0.5]]))
    y = np.array([0.3])

    def cdf(z):
        return np.mean(stats.norm.cdf(z, f[:, 0], 0.5))

    num = integrate.quad(lambda z: (cdf(z) - (z >= y[0])) ** 2, -10, 10, points=[0.3])[0]
    assert pred.crps(y)[0] == pytest.approx(num, rel=1e-5)


def test_sample_crps_with_many_draws_in_any_order():
    # 2000 heavy-tailed draws: the sorted-sample identity equals the O(S²) definition
    # whatever the order the draws come in
    rng = np.random.default_rng(4)
    samples, y = rng.standard_t(2, (2000, 3)), np.array([0.0, 3.0, -10.0])
    exact = _crps_pairs(samples, y)
    for order in (samples, np.sort(samples, 0), np.sort(samples, 0)[::-1]):
        np.testing.assert_allclose(metrics.crps_sample(order, y), exact, rtol=1e-10)


def test_predictive_crps_metric_with_many_draws_is_the_mixture_crps():
    """pred.metrics(y)["crps"] with S = 1500 draws, sorted or not, against the O(S²)
    definition of the mixture's CRPS, and against the sample CRPS of 60 000 draws of y from
    the predictive: sd of that estimate ≈ sd(|Y − y|)/√60 000 ≤ 0.01 here, allow 4."""
    from tests.test_predictive import mixture_crps_pairs

    rng = np.random.default_rng(5)
    f = 2.0 * rng.standard_normal((1500, 2)) + rng.standard_t(3, (1500, 2))
    noise = np.full((1500, 1), 0.3)
    y = np.array([0.5, -4.0])
    exact = float(np.mean(mixture_crps_pairs(f, noise, y)))
    for draws in (f, np.sort(f, 0)):
        assert br.Predictive(draws, noise).metrics(y)["crps"] == pytest.approx(exact, rel=2e-5)
    pred = br.Predictive(f, noise)
    ys = pred.sample_y(60_000, seed=1)
    assert float(np.mean(metrics.crps_sample(ys, y))) == pytest.approx(exact, abs=0.04)
