"""The W₁-to-NUTS column and its Monte Carlo floor."""

import warnings

import numpy as np
import pytest
from scipy import integrate, stats

import bayesreg as br
from bayesreg.compare import W1_DRAWS, Comparison, w1_floor, wasserstein1


def test_w1_floor_of_a_gaussian_predictive_is_the_two_sample_value():
    """Two independent n-samples of N(0, 1): E W₁ → √(2/n) ∫ E|B(Φ(z))| dz with B a
    Brownian bridge, = √(2/n) √(2/π) ∫ √(Φ(1 − Φ)) dz (0.0407 at n = 2000; about 1 % low at
    finite n). Averaged over 400 points the estimate's sd is 0.0139/√400; allow 4 of them
    plus 2 % for the finite-n bias."""
    n_points, n = 400, W1_DRAWS
    pred = br.Predictive(np.zeros((1, n_points)), np.ones((1, 1)))
    integral = integrate.quad(lambda z: np.sqrt(stats.norm.cdf(z) * stats.norm.sf(z)), -40, 40,
                              limit=200)[0]
    expected = np.sqrt(2 / n) * np.sqrt(2 / np.pi) * integral
    ref = pred.sample_y(n, seed=0)
    floor = w1_floor(pred, ref, seed=1)
    assert floor == pytest.approx(expected, abs=4 * 0.0139 / np.sqrt(n_points) + 0.02 * expected)
    # it is what a second, independent sample of the same predictive scores
    assert floor == pytest.approx(wasserstein1(pred.sample_y(n, seed=5), ref), rel=0.1)


@pytest.fixture(scope="module")
def comparison():
    # 200 test points: the floor (a mean over points) has a relative sd of about 3 %
    X, y, _ = br.datasets.linear_example(n=260, d=2, noise=0.5, seed=1)
    return br.compare(br.Linear(), X[:60], y[:60], X_test=X[60:], y_test=y[60:],
                      methods=[br.Exact(), br.NUTS(num_warmup=100, num_samples=300,
                                                   num_chains=1, progress_bar=False)],
                      prior=br.Gaussian(1.0), likelihood=br.GaussianLikelihood(0.5))


@pytest.mark.slow
def test_compare_reports_the_w1_floor_beside_w1_to_nuts(comparison):
    rows = {r["method"]: r for r in comparison.rows}
    floor = rows["NUTS"]["w1_floor"]
    assert floor > 0 and all(r["w1_floor"] == floor for r in rows.values())
    # NUTS against itself with fresh draws is another sample of the floor
    assert rows["NUTS"]["w1_to_nuts"] == pytest.approx(floor, rel=0.15)
    # the exact posterior is the one NUTS samples: its distance is at the floor too
    assert rows["Exact"]["w1_to_nuts"] < 1.5 * floor
    table = comparison.to_markdown()
    header = table.splitlines()[0]
    assert "w1_to_nuts | w1_floor" in header


def test_methods_say_what_they_support_and_compare_asks_them_first():
    gauss, bern = br.GaussianLikelihood(), br.Bernoulli()
    het = br.HeteroscedasticGaussian()
    assert br.Exact().supports(br.Polynomial(2), gauss)
    assert not br.Exact().supports(br.MLP((5,)), gauss)
    assert not br.Exact().supports(br.Linear(), bern)
    assert not br.Exact().supports(br.Linear(), het)
    assert br.MCDropout().supports(br.MLP((5,)), gauss)
    assert not br.MCDropout().supports(br.Linear(), gauss)
    assert br.Ensemble(training=br.MAP()).supports(br.Linear(), bern)
    assert br.LaplaceApprox(subset="last_layer").supports(br.MLP((5,)), gauss)
    assert not br.LaplaceApprox(subset="last_layer").supports(br.MLP((5,)), bern)
    assert not br.LaplaceApprox(subset="last_layer").supports(br.MLP((5,)), het)
    for method in (br.MAP(), br.LaplaceApprox(), br.VI(), br.NUTS()):
        assert method.supports(br.MLP((5,)), bern)
    X, y = br.datasets.gap_example(n=20)
    with pytest.raises(ValueError, match="Exact cannot fit MLP with GaussianLikelihood"):
        br.compare(br.MLP((5,)), X, y, methods=[br.MAP(steps=10), br.Exact()])


def test_the_reference_is_named_or_found_by_is_reference():
    X, y = br.datasets.gap_example(n=20)
    lik = br.GaussianLikelihood(0.1)
    res = br.compare(br.Polynomial(2), X, y, methods=[br.MAP(steps=200), br.Exact()],
                     likelihood=lik, reference="Exact")
    assert res.rows[1]["w1_to_exact"] == pytest.approx(res.rows[1]["w1_floor"], rel=0.5)
    assert "w1_to_exact" in res.to_markdown()
    assert "w1_to_exact" not in br.compare(br.Polynomial(2), X, y, methods=[br.Exact()],
                                           likelihood=lik).rows[0]
    with pytest.raises(ValueError, match="reference must name one of"):
        br.compare(br.Polynomial(2), X, y, methods=[br.Exact()], likelihood=lik,
                   reference="NUTS")


def test_with_the_prior_left_out_every_method_fits_under_one_learned_prior():
    """The issue's check: on the standardised diabetes table with the prior left out, Exact
    and MAP fit under the same prior (learned once, exactly, by type-II maximum likelihood)
    and score the same RMSE; each row says which prior it used. Without the shared prior MAP
    learned its own scales and Exact used its own, so the rows compared two priors."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X, y = (X - X.mean(0)) / X.std(0), (y - y.mean()) / y.std()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = br.compare(br.Linear(), X, y, methods=[br.MAP(), br.Exact()], seed=0)
    rmse = {r["method"]: r["rmse"] for r in res.rows}
    assert abs(rmse["MAP"] - rmse["Exact"]) < 0.01 * rmse["Exact"], rmse
    assert res.prior_note.startswith("learned once by the exact evidence")
    assert all(r["prior"] == res.prior_note for r in res.rows)
    for post in res.posteriors.values():  # the learned prior, used as given
        assert float(post.prior["weights"].scale) == float(res.prior["weights"].scale)
    assert "Prior, the same for every row: learned once" in res.to_markdown()
    given = br.compare(br.Linear(), X, y, methods=[br.Exact()], prior=br.Gaussian(1.0))
    assert given.rows[0]["prior"] == "given"


def _ten_rows():
    names = ["MAP", "Exact", "LaplaceApprox", "VI", "NUTS", "MCDropout", "Ensemble", "SWAG",
             "SGLD", "MAP_9"]
    rows = [{"method": n, "rmse": 0.5 + i / 100, "nll": 0.7, "coverage_95": 0.95, "crps": 0.3,
             "fit_seconds": 12.345 * i, "prior": "given", "w1_to_nuts": 0.04, "w1_floor": 0.03}
            for i, n in enumerate(names)]
    X = np.zeros((200, 3))
    # posteriors stand in as arrays: a repr that printed them would show "array"
    return Comparison(
        rows, {n: np.arange(1000.0) for n in names}, X[:160], np.zeros(160), X[160:],
        np.zeros(40), None, "given")


def test_comparison_repr_is_a_few_lines_and_no_arrays():
    res = _ten_rows()
    text = repr(res)
    lines = text.splitlines()
    assert lines[0] == "Comparison of 10 methods on 160 training and 40 test rows; prior: given"
    assert len(lines) == 12 and "array" not in text and max(map(len, lines)) < 110
    assert lines[1].split() == ["method", "rmse", "nll", "coverage_95", "crps", "fit_seconds",
                                "w1_to_nuts", "w1_floor"]
    assert lines[3].split()[:2] == ["Exact", "0.51"] and str(res) == text


def test_the_markdown_table_says_what_each_column_means():
    table = _ten_rows().to_markdown()
    notes = table[table.index("Columns:"):]
    for column in ("rmse", "nll", "coverage_95", "crps", "fit_seconds", "w1_to_nuts",
                   "w1_floor"):
        assert f"- `{column}`: " in notes, column
    assert "Monte Carlo floor" in notes and "including JAX's tracing and compilation" in notes
    assert "Columns:" not in _ten_rows().to_markdown(notes=False)
