"""VI's settings (its numbers are checked against the exact posterior in test_bayes_conjugate)."""

import warnings

import numpy as np
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


def _twelve_rows():
    X, Y, Xt, Yt = br.datasets.multitask_example(seed=1)
    return X[:12], Y[:12, 2], Xt, Yt[:, 2]


@pytest.mark.slow  # ~8 s: in the slow set, which CI runs, to keep the default suite under 10 min
def test_an_interpolating_mode_is_no_start_for_sigma(monkeypatch):
    """12 rows and an MLP(32): the joint mode of weights and σ interpolates (σ = 3e-5 against
    std y 0.35). latent_mode keeps the mode's weights and starts σ where the model's
    initialisation does (std y) instead."""
    import jax

    from bayesreg.methods import vi

    seen, latent_mode = [], vi.latent_mode

    def spy(problem, z0, key, progress_bar=None):  # VI's start, recorded
        seen.append((z0, latent_mode(problem, z0, key, progress_bar)))
        return seen[-1][1]

    monkeypatch.setattr(vi, "latent_mode", spy)
    X, y, _, _ = _twelve_rows()
    br.fit(br.MLP((32,), activation="tanh"), X, y, prior=br.Gaussian(1.0),
           method=br.VI(steps=10, num_samples=5, progress_bar=False))
    (z0, z), = seen
    assert float(z["theta"]["log_noise"]) == float(z0["theta"]["log_noise"])
    moved = [float(np.max(np.abs(a - b))) for a, b in zip(
        jax.tree_util.tree_leaves(z["params"]), jax.tree_util.tree_leaves(z0["params"]),
        strict=True)]
    assert max(moved) > 0.1  # the weights are the mode's


@pytest.mark.slow  # a VI fit of 5 000 steps: ~8 s
def test_vi_from_an_interpolating_mode_does_not_collapse_sigma():
    """Started at the interpolating mode VI kept σ = 2e-4 and covered 0.10 of the test rows
    at an ELBO of −71 426; with σ started at std y it ends at ELBO −47.6 (its own objective
    decides) with σ 1.4 and covers 1.00."""
    X, y, Xt, yt = _twelve_rows()
    post = br.fit(br.MLP((32,), activation="tanh"), X, y, prior=br.Gaussian(1.0),
                  method=br.VI(progress_bar=False))
    assert post.diagnostics["final_elbo"] > -1000
    assert post.predict(Xt).metrics(yt)["coverage_95"] > 0.5


@pytest.mark.slow  # three VI fits of an MLP((64, 64)): ~25 s
def test_a_mean_field_that_prunes_the_network_takes_sigma_from_the_mode():
    """MLP((64, 64)) (4 353 weights) on 50 rows of sin(3x) + 0.3 noise, defaults: the first
    q switches the network off (its mean ~10× the residual of the mode it started from; the
    ELBO's σ 2.8, 3.5 × std y). σ is then set by the evidence at that mode (γ through the
    50 × 50 dual of the curvature) and q fitted from there: σ and the curve near the truth, no
    warning. With ``noise="elbo"`` the pruning stays and is a warning."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, 50)
    y = np.sin(3 * x) + 0.3 * rng.standard_normal(50)
    xt = np.linspace(-2, 2, 400)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither the pruning nor the inflation warns
        post = br.fit(br.MLP((64, 64)), x, y, method=br.VI(progress_bar=False))
    d = post.diagnostics
    assert (d["noise"], d["noise_at"]) == ("evidence", "mode")
    assert d["sigma_elbo"] > 2.0  # what the first q made of σ
    # the bounds for a learned σ (truth 0.3) and for the curve (MAP's RMSE is 0.18;
    # measured here 0.342 and 0.278; the pruned q's mean was 0.73 from the curve)
    assert 0.2 < float(np.mean(post.noise_std())) < 0.45
    assert np.sqrt(np.mean((post.predict(xt).mean - np.sin(3 * xt)) ** 2)) < 0.4
    with pytest.warns(UserWarning, match="pruned units"):
        br.fit(br.MLP((64, 64)), x, y, method=br.VI(noise="elbo", progress_bar=False))
