"""VI's settings (its numbers are checked against the exact posterior in test_bayes_conjugate)."""

import pytest

import bayesreg as br


def test_num_samples_is_the_draw_count_and_num_draws_warns():
    with pytest.warns(DeprecationWarning, match="num_samples") as caught:
        old = br.VI(num_draws=20)
    assert caught[0].filename == __file__
    assert old == br.VI(num_samples=20) and old.num_samples == 20
    assert old.to_dict()["num_samples"] == 20
    with pytest.raises(TypeError, match="both"):
        br.VI(num_draws=20, num_samples=30)


@pytest.mark.slow  # three VI fits with their L-BFGS starts: ~8 s
def test_fits_on_other_row_counts_share_nothing_stale():
    """VI's program is built once per configuration and traced once per shape; NumPyro's
    guide keeps a prototype trace, so a guide shared across traces leaked the first trace's
    tracers into the second (UnexpectedTracerError on a new N)."""
    import numpy as np

    X = np.linspace(-1, 1, 24)
    y = np.sin(3 * X)
    method = br.VI(steps=50, num_samples=5, progress_bar=False)
    for n in (24, 20, 24):
        post = br.fit(br.MLP((4,)), X[:n], y[:n], method=method, prior=br.Gaussian(1.0),
                      likelihood=br.GaussianLikelihood(0.2))
        assert np.all(np.isfinite(post.predict(X).mean))
