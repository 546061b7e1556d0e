import json
import math
import zipfile

import arviz as az
import jax
import numpy as np
import pytest

import bayesreg as br
from bayesreg.posterior import predictive_draws

GRID = np.linspace(-1, 1, 9)


def _fits():
    X, y = br.datasets.gap_example(n=30)
    lik = br.GaussianLikelihood(0.1)
    return {
        "map_mlp": br.fit(br.MLP((8,)), X, y, method=br.MAP(steps=200)),
        "exact": br.fit(br.Polynomial(3), X, y, method=br.Exact(num_samples=50),
                        prior=br.Gaussian(2.0), likelihood=lik),
        "exact_learned": br.fit(br.relu_basis(5, -1, 1), X, y, method=br.Exact(num_samples=20)),
        "map_studentt": br.fit(br.Linear(), X, y, method=br.MAP(steps=100),
                               prior={"weights": br.StudentT(4.0, 2.0), "biases": br.Cauchy(3.0)},
                               likelihood=lik),
        "map_l2sp": br.fit(br.Linear(), X, y, method=br.MAP(steps=100), likelihood=lik,
                           prior=br.Gaussian(0.5, loc={"weights": [np.ones((1, 1))],
                                                       "biases": [np.zeros(1)]})),
    }


FITS = _fits()


@pytest.mark.parametrize("name", sorted(FITS))
def test_save_then_load_reads_exactly_what_was_written(name, tmp_path):
    post = FITS[name]
    path = tmp_path / "posterior"  # no suffix: the exact name must be used
    post.save(path)
    assert path.exists() and not (tmp_path / "posterior.npz").exists()
    back = br.load(path)
    for a, b in zip(np.asarray(post.params["weights"][0]), np.asarray(back.params["weights"][0]),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    a, b = post.predict(GRID), back.predict(GRID)
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.std, b.std)
    np.testing.assert_array_equal(a.draws, b.draws)
    assert back.method == post.method and back.config == post.config
    assert (math.isnan(back.log_evidence) and math.isnan(post.log_evidence)) or (
        back.log_evidence == post.log_evidence)
    assert type(back.prior["weights"]) is type(post.prior["weights"])


def test_saved_file_is_npz_with_json_config_and_no_pickle(tmp_path):
    path = tmp_path / "p.npz"
    FITS["exact"].save(path)
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(data["meta"].tobytes().decode())
        assert all(data[k].dtype != object for k in data.files)
    assert meta["model"] == {"type": "Polynomial", "degree": 3}
    assert zipfile.is_zipfile(path)


def test_basis_needs_its_function_back(tmp_path):
    X, y = br.datasets.book_example()
    model = br.Basis(lambda X: X**2, name="square")
    post = br.fit(model, X, y, method=br.Exact(num_samples=5))
    post.save(tmp_path / "b")
    with pytest.raises(ValueError, match="pass model="):
        br.load(tmp_path / "b")
    back = br.load(tmp_path / "b", model=model)
    np.testing.assert_allclose(back.predict(X).mean, post.predict(X).mean)


@pytest.mark.parametrize("name", ["map_mlp", "exact"])
@pytest.mark.filterwarnings("ignore:MAP is a point estimate:UserWarning")
def test_to_arviz_groups_and_loo(name):
    post = FITS[name]
    idata = post.to_arviz()
    assert {"posterior", "log_likelihood", "observed_data"} <= set(idata.groups())
    assert idata.posterior.sizes["draw"] == post.num_draws
    assert "noise" in idata.posterior
    ll = idata.log_likelihood["y"].values
    assert ll.shape == (1, post.num_draws, len(post.y_train))
    # the parameters predict (y − ȳ)/s (br.fit centres and standardises the target):
    # s = post.scale and ȳ = post.offset map them back
    expected = br.Predictive(predictive_draws(post.model, post.params, post.X_train)
                             * post.scale + post.offset, post.noise_std()[:, None])
    # the pointwise log-likelihood of draw s is log N(y | f_s(x), σ_s²)
    from scipy import stats
    ref = stats.norm.logpdf(post.y_train, expected.draws, post.noise_std()[:, None])
    np.testing.assert_allclose(ll[0], ref, rtol=1e-4, atol=1e-5)
    if name == "exact":
        loo = az.loo(idata)
        assert np.isfinite(loo.elpd_loo)


def test_predict_checks_features_and_chunks_draws():
    post = FITS["exact"]
    with pytest.raises(ValueError, match="fitted on 1 features"):
        post.predict(np.ones((3, 2)))
    full = post.predict(GRID, chunk_size=50).draws
    np.testing.assert_allclose(post.predict(GRID, chunk_size=7).draws, full, rtol=1e-6)
    with pytest.raises(ValueError, match="chunk_size"):
        post.predict(GRID, chunk_size=0)


def test_exact_draws_agree_with_the_analytic_predictive():
    X, y = br.datasets.gap_example(n=30)
    post = br.fit(br.Polynomial(3), X, y, method=br.Exact(num_samples=40_000),
                  prior=br.Gaussian(2.0), likelihood=br.GaussianLikelihood(0.1))
    pred = post.predict(GRID)
    sd = pred.epistemic_std
    # 40 000 joint draws: mean within 4 standard errors, std within 2%
    assert np.all(np.abs(pred.draws.mean(0) - pred.mean) < 4 * sd / 200)
    np.testing.assert_allclose(pred.draws.std(0), sd, rtol=0.02)


def test_float64_posterior_honours_stream():
    # a float64 posterior re-enters predict with 64-bit mode on; stream= used to be dropped
    X, y = br.datasets.gap_example(n=30)
    post = br.fit(br.Polynomial(3), X, y, method=br.Exact(num_samples=50),
                  likelihood=br.GaussianLikelihood(0.1), dtype="float64")
    lazy, full = post.predict(GRID, stream=4), post.predict(GRID, stream=False)
    assert isinstance(lazy, br.StreamingPredictive) and isinstance(full, br.Predictive)
    assert lazy.draws.dtype == full.draws.dtype == np.float64
    np.testing.assert_array_equal(lazy.draws, full.draws)
    np.testing.assert_allclose(lazy.std, full.std, rtol=1e-12)
    assert isinstance(post.predict(GRID, stream=True), br.StreamingPredictive)


def _arviz_fits():
    X, y = br.datasets.gap_example(n=30)
    lik = br.GaussianLikelihood(0.1)
    return X, y, lik, {
        "Ensemble": br.fit(br.Linear(), X, y, likelihood=lik,
                           method=br.Ensemble(members=4, training=br.MAP(steps=100))),
        "MCDropout": br.fit(br.MLP((8,)), X, y, likelihood=lik,
                            method=br.MCDropout(num_samples=20, training=br.MAP(steps=100))),
    }


@pytest.mark.slow
def test_to_arviz_warns_where_draws_are_not_posterior_samples():
    # a MAP fit is one draw: ArviZ's LOO failed with IndexError and WAIC read p_waic = 0
    with pytest.warns(UserWarning, match="MAP is a point estimate.*p_waic"):
        idata = FITS["map_mlp"].to_arviz()
    assert idata.attrs["draws"].startswith("a point estimate")
    with pytest.raises(IndexError):  # what the warning is about
        az.loo(idata)
    # without the log_likelihood group on request
    assert "log_likelihood" not in FITS["map_mlp"].to_arviz(log_likelihood=False).groups()
    # ensemble members and dropout masks: draws, but not from a posterior
    _, _, _, fits = _arviz_fits()
    for name, what in (("Ensemble", "independently trained ensemble members"),
                       ("MCDropout", "dropout masks")):
        post = fits[name]
        with pytest.warns(UserWarning, match=f"{name} draws are {what}.*not posterior samples"):
            idata = post.to_arviz()
        assert idata.posterior.sizes["chain"] == 1
        assert idata.posterior.sizes["draw"] == post.num_draws
        assert "log_likelihood" in idata.groups()
        assert "not posterior samples" in idata.attrs["draws"]


@pytest.mark.slow  # fits NUTS, VI, Laplace and Exact
def test_to_arviz_of_posterior_samples_warns_nothing():
    import warnings

    X, y, lik, _ = _arviz_fits()
    for method in (br.Exact(num_samples=200), br.LaplaceApprox(num_samples=200),
                   br.VI(steps=300, num_samples=200, init="model", progress_bar=False),
                   br.NUTS(num_warmup=50, num_samples=50, progress_bar=False)):
        post = br.fit(br.Polynomial(2), X, y, method=method, likelihood=lik)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            idata = post.to_arviz()
        assert idata.attrs["draws"] == "posterior samples"
        assert {"posterior", "log_likelihood", "observed_data"} <= set(idata.groups())
        assert np.isfinite(az.waic(idata).elpd_waic)


def test_learned_hyperparameters_survive_a_round_trip(tmp_path):
    post = FITS["map_mlp"]  # prior omitted: layer-wise scales learned by the evidence
    path = tmp_path / "learned.npz"
    post.save(path)
    back = br.load(path)
    for g in ("weights", "biases"):
        np.testing.assert_array_equal(back.diagnostics["prior_scales"][g],
                                      post.diagnostics["prior_scales"][g])
        assert back.prior[g].scale == pytest.approx(post.prior[g].scale)
    assert back.diagnostics["hyperparameters"] == "evidence"
    np.testing.assert_array_equal(back.predict(GRID).mean, post.predict(GRID).mean)


@pytest.mark.slow
def test_predicting_on_many_sizes_compiles_log_many_programs():
    from bayesreg.approximation import _apply_draws
    from bayesreg.data.buckets import bucket
    from bayesreg.linearized import _linearized_chunk

    X, y = br.datasets.gap_example(n=30)
    net = br.fit(br.MLP((8,)), X, y, method=br.Ensemble(members=3, training=br.MAP(steps=50)))
    lap = br.fit(br.MLP((8,)), X, y, method=br.LaplaceApprox(num_samples=20),
                 likelihood=br.GaussianLikelihood(0.1), prior=br.Gaussian(1.0))
    rng = np.random.default_rng(0)
    sizes = range(1, 61)
    before = _apply_draws._cache_size(), _linearized_chunk._cache_size()
    for n in sizes:
        x = rng.uniform(-1, 1, n)
        got = net.predict(x)
        assert got.mean.shape == (n,)
        if n in (1, 7, 60):  # padding rows never change the real ones
            ref = np.stack([np.asarray(net.model.apply(jax.tree_util.tree_map(
                lambda a, s=s: a[s], net.params), x[:, None]))[:, 0] for s in range(3)])
            np.testing.assert_allclose(got.draws, ref * net.scale + net.offset, rtol=1e-5,
                                       atol=1e-6)
        lap.predict(x)
    buckets = len({bucket(n) for n in sizes})  # 8, 12, 16, 24, 32, 48, 64: 7 sizes
    assert _apply_draws._cache_size() - before[0] <= buckets
    assert _linearized_chunk._cache_size() - before[1] <= buckets


def _compiled_programs(run) -> list[str]:
    """The names of the programs JAX compiles while ``run()`` runs."""
    import logging

    names = []

    class Record(logging.Handler):
        def emit(self, record):
            msg = record.getMessage()
            if msg.startswith("Compiling "):
                names.append(msg.split()[1])

    logger, handler = logging.getLogger("jax"), Record()
    logger.addHandler(handler)
    try:
        with jax.log_compiles():
            run()
    finally:
        logger.removeHandler(handler)
    return names


def test_a_new_size_compiles_the_forward_pass_and_the_training_loop_only():
    # jnp.asarray of a NumPy array compiled a copy program per shape (and a cast per dtype):
    # as many programs again as the forward passes, and ~8 MB per training size
    X, y = br.datasets.gap_example(n=30)
    post = br.fit(br.MLP((8,)), X, y, method=br.MAP(steps=20))
    rng = np.random.default_rng(0)
    names = _compiled_programs(lambda: [post.predict(rng.uniform(-1, 1, n)).mean
                                        for n in (3, 50, 100)])  # float64 X, new buckets
    assert names == ["jit(_apply_draws)"] * 3, names
    Xn, yn = br.datasets.gap_example(n=70)  # a new bucket of training rows
    names = _compiled_programs(lambda: br.fit(br.MLP((8,)), Xn, yn, method=br.MAP(steps=20)))
    assert names == ["jit(train_loop)"], names


# -- posterior predictive (ArviZ), posterior mean, summary, repr ----------------------------

def _plot_ppc(idata):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        az.plot_ppc(idata, num_pp_samples=min(20, idata.posterior_predictive.sizes["draw"]))
    finally:
        plt.close("all")


def test_replicated_y_is_each_draw_plus_its_noise():
    post = FITS["exact"]  # σ = 0.1 given, 50 draws
    rep = post.replicated_y(seed=3)
    f = post.predict(post.X_train).draws
    assert rep.shape == f.shape == (50, 30)
    z = (rep - f) / 0.1  # 1 500 standard normals if the noise is the likelihood's
    assert abs(z.mean()) < 0.1 and abs(z.std() - 1) < 0.06
    np.testing.assert_array_equal(rep, post.replicated_y(seed=3))  # same seed, same numbers
    assert not np.array_equal(rep, post.replicated_y(seed=4))


def test_replicated_labels_follow_each_draws_probabilities():
    X, y = br.datasets.gap_example(n=30)
    labels = (y > 0).astype(float)
    post = br.fit(br.Linear(), X, labels, method=br.LaplaceApprox(num_samples=400),
                  likelihood=br.Bernoulli(), prior=br.Gaussian(1.0))
    rep = post.replicated_y(seed=0)
    assert rep.shape == (400, 30) and set(np.unique(rep)) <= {0, 1}
    probs = post.predict(post.X_train).probs[:, 1]
    # 400 Bernoulli draws per row: the frequency of 1 within 5 standard errors of p̄
    assert np.all(np.abs(rep.mean(0) - probs) < 5 * np.sqrt(probs * (1 - probs) / 400) + 1e-3)
    idata = post.to_arviz()
    assert idata.observed_data["y"].dtype.kind == "i"
    np.testing.assert_array_equal(idata.observed_data["y"].values, labels.astype(int))
    _plot_ppc(idata)


@pytest.mark.slow  # a MAP and an ensemble fit and four figures: ~6 s
@pytest.mark.filterwarnings("ignore:MAP is a point estimate:UserWarning")
@pytest.mark.filterwarnings("ignore:Ensemble draws are:UserWarning")
def test_plot_ppc_runs_for_map_and_ensemble_at_training_and_other_rows():
    X, y, _, fits = _arviz_fits()
    for post in (FITS["map_mlp"], fits["Ensemble"]):
        idata = post.to_arviz()
        assert {"posterior_predictive", "observed_data", "log_likelihood"} <= set(idata.groups())
        pp = idata.posterior_predictive["y"]
        assert pp.shape == (1, post.num_draws, 30)
        np.testing.assert_array_equal(idata.observed_data["y"].values, post.y_train)
        _plot_ppc(idata)
        # at other rows: every data group at those rows
        other = post.to_arviz(X=X[:7] + 0.01, y=y[:7])
        assert other.posterior_predictive["y"].shape == (1, post.num_draws, 7)
        assert other.log_likelihood["y"].shape == (1, post.num_draws, 7)
        np.testing.assert_allclose(other.observed_data["y"].values, y[:7], rtol=1e-6)
        _plot_ppc(other)
    with pytest.raises(ValueError, match="without y"):
        fits["Ensemble"].to_arviz(X=X[:3])
    with pytest.raises(ValueError, match="without X"):
        fits["Ensemble"].to_arviz(y=y[:3])
    assert "posterior_predictive" not in fits["Ensemble"].to_arviz(
        posterior_predictive=False).groups()


@pytest.mark.slow  # NUTS
def test_plot_ppc_runs_for_nuts():
    X, y, lik, _ = _arviz_fits()
    post = br.fit(br.Polynomial(2), X, y, likelihood=lik,
                  method=br.NUTS(num_warmup=50, num_samples=40, num_chains=2,
                                 progress_bar=False))
    idata = post.to_arviz()
    assert idata.posterior_predictive["y"].shape == (2, 40, 30)
    _plot_ppc(idata)
    s = post.summary()
    assert {"R-hat (max)", "ESS bulk (min)", "divergences"} <= set(s.diagnostics)
    assert s.diagnostics["R-hat (max)"] == post.diagnostics["r_hat"]
    assert "2 chains × 40" in str(s)


def test_mean_params_is_the_analytic_mean_where_there_is_one():
    post = FITS["exact"]  # 50 draws: their average is off the mean by ~ std/7
    mean = post.approximation.mean
    got = post.mean_params()
    # (in the units of y: the standardised target's coefficients times post.scale)
    np.testing.assert_allclose(got["weights"][0][:, 0], mean[:-1] * post.scale, rtol=1e-12)
    np.testing.assert_allclose(got["biases"][0], mean[-1:] * post.scale + post.offset,
                               rtol=1e-6)
    assert got["weights"][0].shape == post.params["weights"][0].shape[1:]
    drawn = np.asarray(post.params["weights"][0]).mean(0)[:, 0] * post.scale
    assert np.max(np.abs(drawn - mean[:-1])) > 1e-4  # the draws' average is not it
    # without an analytic mean: the average of the draws (MAP: its one point)
    # (the output bias in the units of y: the fitted one plus the target's mean)
    fitted = FITS["map_mlp"]
    point = fitted.mean_params()
    # (and the output layer times post.scale)
    np.testing.assert_allclose(point["biases"][-1], np.asarray(fitted.params["biases"][-1])[0]
                               * fitted.scale + fitted.offset, rtol=1e-6)
    np.testing.assert_allclose(point["weights"][-1], np.asarray(fitted.params["weights"][-1])[0]
                               * fitted.scale, rtol=1e-6)
    for a, b in zip([*point["weights"][:-1], *point["biases"][:-1]],
                    [*fitted.params["weights"][:-1], *fitted.params["biases"][:-1]],
                    strict=True):
        np.testing.assert_array_equal(a, np.asarray(b)[0])


@pytest.mark.slow  # ~8 s: in the slow set, which CI runs, to keep the default suite under 10 min
def test_mean_params_of_the_laplace_approximation_is_its_mode():
    X, y = br.datasets.gap_example(n=30)
    post = br.fit(br.MLP((4,)), X, y, method=br.LaplaceApprox(num_samples=10),
                  likelihood=br.GaussianLikelihood(0.1), prior=br.Gaussian(1.0))
    got, mode = post.mean_params(), post.approximation.mode
    for a, b in zip([*got["weights"][:-1], *got["biases"][:-1]],
                    [*mode["weights"][:-1], *mode["biases"][:-1]], strict=True):
        np.testing.assert_array_equal(a, b)
    # the output layer in the units of y: times post.scale, plus post.offset for the bias
    np.testing.assert_allclose(got["weights"][-1], np.asarray(mode["weights"][-1]) * post.scale,
                               rtol=1e-6)
    np.testing.assert_allclose(got["biases"][-1],
                               np.asarray(mode["biases"][-1]) * post.scale + post.offset,
                               rtol=1e-6)
    # last-layer Laplace: the body at the mode, the last layer at its posterior mean
    post = br.fit(br.MLP((4,)), X, y, method=br.LaplaceApprox(num_samples=10,
                                                              subset="last_layer"),
                  likelihood=br.GaussianLikelihood(0.1), prior=br.Gaussian(1.0))
    approx, got = post.approximation, post.mean_params()
    np.testing.assert_array_equal(got["weights"][0], approx.mode["weights"][0])
    np.testing.assert_allclose(got["weights"][-1][:, 0], approx.mean[:-1] * post.scale,
                               rtol=1e-6)
    np.testing.assert_allclose(got["biases"][-1], approx.mean[-1:] * post.scale + post.offset,
                               rtol=1e-6)
    assert got["weights"][-1].shape == approx.mode["weights"][-1].shape


def test_summary_is_a_few_readable_lines():
    post = FITS["map_mlp"]  # learned σ, layer-wise scales learned by the evidence
    s = post.summary()
    sigma = float(post.noise_std()[0])
    assert (s.method, s.noise_source) == ("MAP", "learned")
    assert s.noise == pytest.approx(sigma)
    scales = post.diagnostics["prior_scales"]["weights"]
    np.testing.assert_allclose(s.prior_scales["weights"], scales, rtol=1e-6)
    np.testing.assert_allclose(s.l2_strength["weights"], sigma**2 / scales**2, rtol=1e-5)
    np.testing.assert_allclose(s.l2_strength["weights"],
                               post.diagnostics["l2_strength"]["weights"], rtol=1e-4)
    assert s.diagnostics["final loss"] == pytest.approx(post.diagnostics["final_loss"])
    assert s.hyperparameters == "evidence"
    text = str(s)
    assert len(text.splitlines()) <= 10 and "array" not in text and "\n\n" not in text
    assert "λ = σ²/s²" in text and "learned by evidence" in text
    assert repr(s) == text and s._repr_markdown_().count("\n") == len(text.splitlines()) + 1
    # a given σ, a non-Gaussian prior (no λ), the analytic evidence
    s = FITS["exact"].summary()
    assert (s.noise, s.noise_source) == (0.1, "given")
    assert s.l2_strength == {"weights": (0.1**2 / 2.0**2,), "biases": (0.1**2 / 2.0**2,)}
    assert s.log_evidence == FITS["exact"].log_evidence and "log evidence" in str(s)
    s = FITS["map_studentt"].summary()
    assert s.l2_strength == {} and s.prior["weights"] == "StudentT(df=4, s=2)"


def test_posterior_and_predictive_reprs_are_one_line():
    for post in FITS.values():
        text = repr(post)
        assert "\n" not in text and "array" not in text and len(text) < 120
    pred = FITS["exact"].predict(GRID)
    assert "\n" not in repr(pred) and len(repr(pred)) < 80
