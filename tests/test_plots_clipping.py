"""Every plot helper's figure keeps its labels inside the saved image.

Each helper draws its own figure, which is saved with a plain ``savefig`` (what a user and the
command line do); every drawn artist — tick labels, axis labels, titles, legends — must lie
inside the figure. ``fig.get_tightbbox`` is the box around exactly the artists that are drawn,
so it sticking out of ``fig.bbox_inches`` means something is cut off in the PNG.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest

import bayesreg as br
from bayesreg import plots
from bayesreg.compare import Comparison

GRID = np.linspace(0, 1, 50)


@pytest.fixture(scope="module")
def post(book_data):
    X, y = book_data
    return br.fit(br.Polynomial(3), X, y, method=br.Exact(num_samples=100),
                  prior=br.Gaussian(10.0), likelihood=br.GaussianLikelihood(0.3))


def ten_methods(post, X, y):
    """A comparison result of ten methods (the same posterior under ten names: the layout is
    what is tested, not the fits)."""
    names = ["MAP", "Exact", "LaplaceApprox", "VI", "NUTS", "MCDropout", "Ensemble", "SWAG",
             "SGLD", "MAP_9"]
    return Comparison([{"method": n} for n in names], dict.fromkeys(names, post),
                      X[:12], y[:12], X[12:], y[12:])


def figures(post, X, y):
    """(name, figure) of every helper's own figure."""
    pred = post.predict(GRID)
    yield "bands", plots.bands(pred, GRID, X=X, y=y, truth=br.datasets.book_function).figure
    yield "draws", plots.draws(pred, GRID).figure
    yield "compare", plots.compare(ten_methods(post, X, y))
    yield "calibration", plots.calibration(post.predict(X), y).figure
    yield "prior_vs_penalty", plots.prior_vs_penalty(br.Laplace(1.0))[0].figure
    yield "regularization_path", plots.regularization_path(
        br.Polynomial(3), X, y, np.logspace(-2, 2, 5), likelihood=br.GaussianLikelihood(0.3)
    ).figure


def outside(fig) -> dict:
    """How far (inches) the drawn artists reach past each edge of the figure; {} if none."""
    fig.canvas.draw()
    box = fig.get_tightbbox(fig.canvas.get_renderer())
    w, h = fig.get_size_inches()
    tol = 1.0 / fig.dpi  # one pixel
    past = {"left": -box.x0, "bottom": -box.y0, "right": box.x1 - w, "top": box.y1 - h}
    return {edge: round(d, 3) for edge, d in past.items() if d > tol}


def test_every_helper_keeps_its_labels_inside_the_figure(post, book_data, tmp_path):
    X, y = book_data
    for name, fig in figures(post, X, y):
        assert outside(fig) == {}, name
        fig.savefig(tmp_path / f"{name}.png")
        assert mpimg.imread(tmp_path / f"{name}.png").std() > 0.01, name
        plt.close(fig)


def test_ten_methods_make_a_grid_not_a_strip(post, book_data, tmp_path):
    X, y = book_data
    fig = plots.compare(ten_methods(post, X, y))
    visible = [a for a in fig.axes if a.get_visible()]
    assert len(visible) == 10
    fig.savefig(tmp_path / "compare.png", dpi=100)
    h, w = mpimg.imread(tmp_path / "compare.png").shape[:2]
    # three rows of four panels of 4.2 × 3.2 in: about 1 680 × 960 px, not 4 200 × 320
    assert (w, h) == (1680, 960)
    # every panel keeps its title and tick labels at a readable size
    assert min(a.title.get_fontsize() for a in visible) >= 9
    plt.close(fig)


def test_panel_grid_shapes():
    for n, shape in [(1, (1, 1)), (3, (1, 3)), (4, (2, 3)), (9, (3, 3)), (10, (3, 4)),
                     (12, (3, 4))]:
        fig, axes = plots.panel_grid(n)
        assert axes.shape == shape and sum(a.get_visible() for a in axes.flat) == n
        plt.close(fig)
    with pytest.raises(ValueError, match="at least one panel"):
        plots.panel_grid(0)
