"""Each plot renders to a PNG with the Agg backend and holds the artists it should."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import PolyCollection

import bayesreg as br
from bayesreg import plots

GRID = np.linspace(0, 1, 50)


@pytest.fixture(scope="module")
def post(book_data):
    X, y = book_data
    return br.fit(br.Polynomial(3), X, y, method=br.Exact(num_samples=100),
                  prior=br.Gaussian(10.0), likelihood=br.GaussianLikelihood(0.3))


def _saved(fig, path):
    fig.savefig(path)
    img = mpimg.imread(path)
    assert img.shape[0] > 100 and img.shape[1] > 100 and img.std() > 0.01
    plt.close(fig)


def test_bands(post, book_data, tmp_path):
    X, y = book_data
    ax = plots.bands(post.predict(GRID), GRID, X=X, y=y, truth=br.datasets.book_function)
    fills = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(fills) == 2 and len(ax.lines) == 2  # two intervals; mean and truth
    _saved(ax.figure, tmp_path / "bands.png")


def test_draws(post, tmp_path):
    ax = plots.draws(post.predict(GRID), GRID, n=12)
    assert len(ax.lines) == 13
    _saved(ax.figure, tmp_path / "draws.png")


def test_compare_grid(book_data, tmp_path):
    X, y = book_data
    res = br.compare(br.Polynomial(3), X, y, methods=[br.MAP(steps=500), br.Exact()],
                     likelihood=br.GaussianLikelihood(0.3))
    fig = plots.compare(res)
    visible = [a for a in fig.axes if a.get_visible()]
    assert [a.get_title() for a in visible] == ["MAP", "Exact"]
    assert visible[0].get_shared_y_axes().joined(visible[0], visible[1])
    _saved(fig, tmp_path / "compare.png")


def test_calibration(post, book_data, tmp_path):
    X, y = book_data
    ax = plots.calibration(post.predict(X), y)
    assert len(ax.lines) == 2 and "area" in ax.get_legend().get_texts()[0].get_text()
    _saved(ax.figure, tmp_path / "calibration.png")


@pytest.mark.parametrize("prior", [br.Gaussian(1.0), br.Laplace(1.0), br.StudentT(3.0, 1.0)])
def test_prior_vs_penalty(prior, tmp_path):
    axes = plots.prior_vs_penalty(prior)
    density = axes[0].lines[0].get_ydata()
    penalty = axes[1].lines[0].get_ydata()
    # the penalty is −log density up to a constant
    np.testing.assert_allclose(penalty - penalty.min(), -np.log(density / density.max()),
                               atol=1e-4)
    _saved(axes[0].figure, tmp_path / "prior.png")


def test_regularization_path(book_data, tmp_path):
    X, y = book_data
    ax = plots.regularization_path(br.Polynomial(3), X, y, np.logspace(-2, 2, 9),
                                   likelihood=br.GaussianLikelihood(0.3))
    assert len(ax.lines) == 3
    first = ax.lines[0].get_ydata()
    assert abs(first[0]) < abs(first[-1])  # coefficients shrink towards 0 as s → 0
    _saved(ax.figure, tmp_path / "path.png")


def _labelled(ax):
    assert ax.get_xlabel().strip() and ax.get_ylabel().strip(), "axis labels missing"
    assert ax.get_legend() is not None and ax.get_legend().get_texts(), "legend missing"


def test_every_plot_labels_its_axes_and_has_a_legend(post, book_data):
    X, y = book_data
    pred = post.predict(GRID)
    _labelled(plots.bands(pred, GRID, X=X, y=y))
    _labelled(plots.draws(pred, GRID, n=5))
    _labelled(plots.calibration(post.predict(X), y))
    for ax in plots.prior_vs_penalty(br.Gaussian(1.0)):
        _labelled(ax)
    _labelled(plots.regularization_path(br.Polynomial(3), X, y, np.logspace(-1, 1, 3),
                                        likelihood=br.GaussianLikelihood(0.3)))
    res = br.compare(br.Polynomial(3), X, y, methods=[br.MAP(steps=300), br.Exact()],
                     likelihood=br.GaussianLikelihood(0.3))
    for ax in [a for a in plots.compare(res).axes if a.get_visible()]:
        _labelled(ax)
    plt.close("all")


def test_band_legend_says_what_the_band_is(post, book_data):
    X, y = book_data
    one = br.fit(br.Polynomial(3), X, y, method=br.MAP(steps=300), prior=br.Gaussian(10.0),
                 likelihood=br.GaussianLikelihood(0.3))
    texts = [t.get_text() for t in
             plots.bands(one.predict(GRID), GRID).get_legend().get_texts()]
    assert "95% noise band (point estimate)" in texts
    assert not any(t.endswith("% interval") for t in texts)
    texts = [t.get_text() for t in
             plots.bands(post.predict(GRID), GRID).get_legend().get_texts()]
    assert "95% predictive interval" in texts
    plt.close("all")
