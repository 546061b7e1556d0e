import dataclasses
import warnings

import numpy as np
import pytest

import bayesreg as br
from bayesreg.training.loop import train_members
from bayesreg.training.swag_phase import _rates_compiled

QUICK = br.MAP(steps=800)
FAR = np.array([-2.5, 2.5])


@pytest.fixture(scope="module")
def learned():
    """SWAG on a network with the noise and the prior scales left to the evidence."""
    X, y = br.datasets.gap_example(n=40)
    method = br.SWAG(rank=10, num_samples=30, epochs=30, training=QUICK)
    return br.fit(br.MLP((8,)), X, y, method=method, seed=0), X, y


@pytest.mark.parametrize("stream, members", [
    (False, 1),
    pytest.param(True, 1, marks=pytest.mark.slow),  # ~4 s; the default suite under 10 min
    pytest.param(True, 2, marks=pytest.mark.slow)],  # two streamed pretrainings: ~8 s
    ids=["memory", "stream", "stream-multiswag"])
def test_swag_mean_is_the_exact_posterior_mean_on_a_linear_model(stream, members, tmp_path,
                                                                  monkeypatch):
    """On a linear-Gaussian model the per-point objective is quadratic, so the minibatch
    gradient is unbiased and linear in θ: E[θₜ₊₁ − m] = (I − ηH) E[θₜ − m] with m the
    posterior mean (= the mode, where the MAP pretraining leaves θ₀). Every SGD iterate
    then has mean m and θ_SWA is unbiased; only Monte Carlo error is left.

    Tolerance, per eigendirection uⱼ of the per-point Hessian H = (ΦᵀΦ/σ² + I/s²)/N (eigen-
    value hⱼ): the iterates are AR(1) with coefficient 1 − ηhⱼ per update, so two collected
    iterates c updates apart correlate aⱼ = (1 − ηhⱼ)ᶜ, and the mean of K of them has
    variance vⱼ (1 + aⱼ)/(K (1 − aⱼ)), vⱼ the iterates' variance. SWAG's draws have about
    the iterates' covariance (½ diag + ½ low rank, each ≈ the iterates' covariance), so vⱼ
    is estimated from the draws, whose own mean adds vⱼ/S. At a test point x the error of
    the predictive mean is φ(x)ᵀ(θ̄ − m): we allow 4 standard deviations of it.

    Streamed (a memmap read 4 batches a chunk, 3 chunks an epoch): the pretraining is
    mini-batch MAP, each epoch deals the rows into 10 disjoint batches, and the iterate is
    collected at the end of each epoch; batches without replacement within an epoch only
    lower the iterates' variance, so the same tolerance holds. Streamed MultiSWAG (2
    members sharing the stream, each its own pretraining) averages two such means: the same
    tolerance is then √2 wider than it needs to be."""
    X, y, _ = br.datasets.linear_example(n=100, d=3, noise=0.5, seed=1)
    sigma, s, lr, batch, every, epochs, S = 0.5, 1.0, 0.05, 10, 10, 200, 2000
    lik, prior = br.GaussianLikelihood(sigma), br.Gaussian(s)
    exact = br.fit(br.Linear(), X, y, method=br.Exact(), prior=prior, likelihood=lik)
    training = br.MAP(batch_size=batch, epochs=300) if stream else br.MAP(steps=1000)
    method = br.SWAG(rank=20, num_samples=S, epochs=epochs, batch_size=batch, lr=lr,
                     collect_every=every, training=training, members=members)
    data = X
    if stream:
        from bayesreg.data import stream as _stream

        monkeypatch.setattr(_stream, "CHUNK_BYTES", 4 * batch * 3 * 4)
        np.save(tmp_path / "X.npy", X.astype(np.float32))
        data = np.load(tmp_path / "X.npy", mmap_mode="r")
    post = br.fit(br.Linear(), data, y, method=method, prior=prior, likelihood=lik, seed=0)
    assert isinstance(post.X_train, np.memmap) == stream
    assert post.num_chains == members and post.num_draws == members * S
    K = post.diagnostics["num_collected"]
    assert K == epochs * (100 // batch) // every == 200

    Phi = np.column_stack([X, np.ones(len(y))])  # the weights, then the bias
    theta = np.column_stack([post.params["weights"][0][:, :, 0], post.params["biases"][0]])
    h, U = np.linalg.eigh((Phi.T @ Phi / sigma**2 + np.eye(4) / s**2) / len(y))
    assert np.all(lr * h < 1)  # stable: 0 < 1 − ηh < 1
    a = (1 - lr * h) ** every
    v = np.var(theta @ U, axis=0)  # the draws' variance along each uⱼ
    err_var = v * (1 + a) / (K * (1 - a)) + v / S
    X_test = np.random.default_rng(0).standard_normal((50, 3))
    Phi_test = np.column_stack([X_test, np.ones(50)]) @ U
    tol = 4 * np.sqrt(Phi_test**2 @ err_var)
    got, want = post.predict(X_test).mean, exact.predict(X_test).mean
    assert np.all(np.abs(got - want) < tol), (np.abs(got - want) / tol).max()
    # the check is sharp: a mean off by 0.4 posterior sd would fail it (tol measured 0.3 sd)
    assert np.all(tol < 0.4 * exact.predict(X_test).epistemic_std)


@pytest.mark.slow
def test_epistemic_std_grows_away_from_the_data():
    X, y = br.datasets.gap_example(n=40, noise=0.1)
    post = br.fit(br.MLP((16,)), X, y, method=br.SWAG(num_samples=100, training=QUICK),
                  prior=br.Gaussian(1.0), likelihood=br.GaussianLikelihood(0.1), seed=0)
    inside = post.predict(X).epistemic_std.mean()
    far = post.predict(FAR).epistemic_std
    assert far.min() > 1.5 * inside


@pytest.mark.slow
def test_learned_noise_and_scales_are_the_pretrainings_and_reported(learned):
    post, X, y = learned
    pre = br.fit(br.MLP((8,)), X, y, method=QUICK, seed=0)  # the same pretraining
    assert post.method == "SWAG" and post.num_draws == 30 and post.num_chains == 1
    # σ of every draw is the one the evidence chose in pretraining
    np.testing.assert_array_equal(post.theta["log_noise"],
                                  np.repeat(pre.theta["log_noise"], 30))
    d = post.diagnostics
    for key in ("noise_std", "prior_scales", "l2_strength", "hyperparameters"):
        assert key in d
    np.testing.assert_array_equal(d["noise_std"], pre.diagnostics["noise_std"])
    assert d["num_collected"] == 30 and d["rank_used"] == 10
    assert np.isfinite(d["swa_loss"]) and d["swag_losses"].shape == (30 * 2,)  # B=32 of 40
    assert d["swag_lr"] > 0
    # the SWA point fits about as well as the mode it started from
    assert d["swa_loss"] < pre.diagnostics["final_loss"] + 0.1


@pytest.mark.slow
def test_predict_save_load_arviz_and_compare(learned, tmp_path):
    post, X, y = learned
    pred = post.predict(FAR)
    assert pred.draws.shape == (30, 2) and np.all(pred.epistemic_std > 0)
    post.save(tmp_path / "swag")
    back = br.load(tmp_path / "swag")
    again = back.predict(FAR)
    np.testing.assert_array_equal(again.draws, pred.draws)
    np.testing.assert_array_equal(again.std, pred.std)
    assert back.method == "SWAG" and back.config == post.config
    with pytest.warns(UserWarning, match="SWAG's Gaussian"):
        idata = post.to_arviz()
    assert idata.posterior.sizes["chain"] == 1 and idata.posterior.sizes["draw"] == 30
    res = br.compare(br.MLP((8,)), X, y, methods=[
        QUICK, br.SWAG(rank=5, num_samples=20, epochs=10, training=QUICK)])
    assert [r["method"] for r in res.rows] == ["MAP", "SWAG"]
    assert np.isfinite(res.rows[1]["rmse"])


@pytest.mark.slow
def test_multiswag_members_differ_and_a_second_fit_does_not_recompile():
    X, y = br.datasets.gap_example(n=40)
    method = br.SWAG(rank=5, num_samples=20, members=3, epochs=10, training=QUICK)
    lik = br.GaussianLikelihood(0.1)
    post = br.fit(br.MLP((8,)), X, y, method=method, likelihood=lik, seed=0)
    assert post.method == "MultiSWAG" and post.num_draws == 60 and post.num_chains == 3
    f = post.predict(FAR).draws.reshape(3, 20, 2)
    means, spread = f.mean(1), f.std(1)
    # three pretrainings from three initialisations end in different modes: their SWAG
    # means differ by more than each member's own spread would explain
    gaps = np.abs(means[:, None] - means[None]).max(-1)[np.triu_indices(3, 1)]
    assert np.all(gaps > 3 * spread.max() / np.sqrt(20))
    assert post.diagnostics["swa_loss"].shape == (3,)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        compiled = train_members._cache_size(), _rates_compiled._cache_size()
        br.fit(br.MLP((8,)), X, y + 0.1, method=method, likelihood=lik, seed=1)
        assert (train_members._cache_size(), _rates_compiled._cache_size()) == compiled


def test_configuration_is_checked():
    with pytest.raises(ValueError, match="rank"):
        br.SWAG(rank=1)
    with pytest.raises(ValueError, match="schedule"):
        br.SWAG(schedule="cosine")
    with pytest.raises(TypeError, match="training"):
        br.SWAG(training=br.Exact())
    # what streams a memmap, and why not otherwise
    streams = br.SWAG(batch_size=10, training=br.MAP(batch_size=10))
    assert streams.why_not_streamed(100, br.GaussianLikelihood()) is None
    assert "pretraining" in br.SWAG(batch_size=10).why_not_streamed(100, None)
    assert dataclasses.replace(streams, members=2).why_not_streamed(100, None) is None
    assert "multiple of" in dataclasses.replace(streams, collect_every=15).why_not_streamed(
        100, None)
    X, y = br.datasets.gap_example(n=20)
    with pytest.raises(ValueError, match="at least 2 collected"):
        br.fit(br.Linear(), X, y, method=br.SWAG(epochs=1, training=br.MAP(steps=10)))


@pytest.mark.slow
def test_the_cli_compares_swag(tmp_path):
    import json

    from bayesreg import cli

    X, y = br.datasets.gap_example(n=40)
    data = tmp_path / "d.csv"
    np.savetxt(data, np.column_stack([X[:, 0], y]), delimiter=",", header="x,y", comments="")
    out = tmp_path / "o"
    assert cli.main(["compare", str(data), "--target", "y", "--methods", "map,swag",
                     "--model", "mlp:8", "--quick", "--out", str(out)]) == 0
    rows = json.loads((out / "metrics.json").read_text())["rows"]
    assert [r["method"] for r in rows] == ["map", "swag"]
    assert np.isfinite(rows[1]["rmse"])


def test_the_sgd_phase_of_a_dropout_network_drops_nothing():
    """The draws are pushed through the network without dropout, so the SGD phase, its rates
    and ``swa_loss`` use that network too: with a full batch and a negligible rate the
    iterates stay at the pretrained mode and every update's loss is the same number (with
    units dropped, each update would see another mask: spread ~0.1 here)."""
    X, y = br.datasets.gap_example(n=40)
    method = br.SWAG(rank=3, num_samples=5, epochs=6, batch_size=None, lr=1e-12,
                     training=br.MAP(steps=200))
    post = br.fit(br.MLP((8,), dropout=0.3), X, y, method=method,
                  likelihood=br.GaussianLikelihood(0.1), prior=br.Gaussian(1.0), seed=0)
    losses = post.diagnostics["swag_losses"]
    assert losses.shape == (6,)
    np.testing.assert_allclose(losses, losses[0], rtol=1e-6)
    np.testing.assert_allclose(post.diagnostics["swa_loss"], losses[0], rtol=1e-5)


@pytest.mark.slow  # a streamed ensemble's evidence and SGD phase: ~13 s
def test_streamed_multiswag_keeps_each_members_learned_scales(tmp_path):
    """MultiSWAG on a memmap with the prior left to the evidence: the streamed ensemble
    pretrains two members, each learns its own prior scales, and the SGD phase (one shared
    stream) evaluates each member's objective under its own scales: swa_loss is each
    member's full-data objective at its θ_SWA, which the pretraining's mode bounds."""
    X, y = br.datasets.gap_example(n=200)
    np.save(tmp_path / "X.npy", X.astype(np.float32))
    lazy = np.load(tmp_path / "X.npy", mmap_mode="r")
    method = br.SWAG(rank=3, num_samples=10, epochs=6, batch_size=20, members=2,
                     training=br.MAP(batch_size=20, epochs=60))
    post = br.fit(br.MLP((8,)), lazy, y, method=method, likelihood=br.GaussianLikelihood(0.1),
                  seed=0)
    assert isinstance(post.X_train, np.memmap) and post.num_chains == 2
    scales = np.asarray(post.diagnostics["prior_scales"]["weights"])
    assert scales.shape == (2, 2) and not np.allclose(scales[0], scales[1])
    d = post.diagnostics
    assert d["swa_loss"].shape == (2,) and np.all(np.isfinite(d["swa_loss"]))
    assert d["swag_losses"].shape == (2, 6 * 10)
    f = post.predict(FAR).draws.reshape(2, 10, 2)
    assert not np.allclose(f[0].mean(0), f[1].mean(0))  # two modes, two Gaussians
