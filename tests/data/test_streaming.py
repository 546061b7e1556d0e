"""The streaming predictive equals the in-memory one and keeps memory bounded."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import bayesreg as br


@pytest.mark.parametrize("method", [br.Ensemble(members=6, training=br.MAP(steps=200)),
                                    br.Exact(num_samples=300)], ids=["ensemble", "exact"])
@pytest.mark.slow
def test_streaming_summaries_equal_the_in_memory_ones(method):
    X, y = br.datasets.gap_example(n=40)
    model = br.MLP((8,)) if isinstance(method, br.Ensemble) else br.Polynomial(3)
    post = br.fit(model, X, y, method=method, likelihood=br.GaussianLikelihood(0.1))
    grid = np.linspace(-1.5, 1.5, 103)
    y_grid = np.sin(3 * grid)
    full, lazy = post.predict(grid, stream=False), post.predict(grid, stream=10)
    assert isinstance(lazy, br.StreamingPredictive)
    for name in ("mean", "std", "epistemic_std", "aleatoric_std", "point"):
        np.testing.assert_allclose(getattr(lazy, name), getattr(full, name), rtol=1e-5,
                                   atol=1e-7)
    for a, b in zip(lazy.interval(0.9), full.interval(0.9), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(lazy.log_prob(y_grid), full.log_prob(y_grid), rtol=1e-5)
    np.testing.assert_allclose(lazy.crps(y_grid), full.crps(y_grid), rtol=1e-5)
    got, want = lazy.metrics(y_grid), full.metrics(y_grid)
    assert got.keys() == want.keys()
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=1e-5, abs=1e-7)
    np.testing.assert_allclose(lazy.draws, full.draws, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(lazy.affine(2.0, 1.0).std, full.affine(2.0, 1.0).std, rtol=1e-5)
    assert lazy.is_gaussian == full.is_gaussian


PEAK = textwrap.dedent("""
    import sys, threading, time, numpy as np, bayesreg as br
    from bayesreg import posterior
    S, N = 2000, 40_000
    X, y = br.datasets.gap_example(n=40)
    post = br.fit(br.MLP((8,)), X, y, method=br.Ensemble(members=8, training=br.MAP(steps=50)),
                  likelihood=br.GaussianLikelihood(0.1))
    # 2000 draws: the 8 members repeated (the cost is in S × N, not in how draws were made)
    post = posterior.Posterior(**{**post.__dict__, "params": {
        g: [np.repeat(a, S // 8, 0) for a in post.params[g]] for g in post.params},
        "theta": {}})
    grid = np.linspace(-2, 2, N)

    def rss():  # resident set size now, in MB (the high-water mark would include the fit)
        with open("/proc/self/status") as fh:
            return next(int(l.split()[1]) for l in fh if l.startswith("VmRSS")) / 1024

    peak, done = [rss()], []

    def watch():
        while not done:
            peak.append(rss())
            time.sleep(0.002)

    before = rss()
    thread = threading.Thread(target=watch)
    thread.start()
    pred = post.predict(grid, stream=sys.argv[1] == "stream")
    mean, std = pred.mean, pred.std
    lp = pred.log_prob(np.sin(3 * grid))
    done.append(1)
    thread.join()
    print(max(peak) - before)
""")


@pytest.mark.slow
def test_peak_memory_of_a_large_predictive_is_bounded_by_the_chunk():
    """2000 draws × 40 000 points: 320 MB of float32 draws (and as much again for the noise
    and log densities) in memory; streamed, chunks of 2²⁴/S points."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")

    def peak(mode):
        out = subprocess.run([sys.executable, "-c", PEAK, mode], env=env, capture_output=True,
                             text=True, timeout=900)
        assert out.returncode == 0, out.stderr[-2000:]
        return float(out.stdout.strip().splitlines()[-1])

    streamed, full = peak("stream"), peak("full")
    print(f"peak memory growth: streamed {streamed:.0f} MB, in memory {full:.0f} MB")
    assert streamed < 0.6 * full


@pytest.mark.slow
def test_streaming_crps_with_many_draws_is_the_all_pairs_value():
    # 1500 draws over 12 points in chunks of 5: every chunk's CRPS pairs all its draws
    from tests.test_predictive import mixture_crps_pairs

    rng = np.random.default_rng(0)
    f = np.sort(rng.standard_normal((1500, 12)) * np.linspace(0.1, 10.0, 12), axis=0)
    noise = rng.uniform(0.2, 1.0, (1500, 1))
    y = rng.standard_normal(12)
    full = br.Predictive(f, noise)
    lazy = br.StreamingPredictive(lambda sl: br.Predictive(f[:, sl], noise), 12, 1500, 5)
    exact = mixture_crps_pairs(f, noise, y)
    np.testing.assert_allclose(lazy.crps(y), exact, rtol=2e-5)
    np.testing.assert_allclose(full.crps(y), exact, rtol=2e-5)
    assert lazy.metrics(y)["crps"] == pytest.approx(np.mean(exact), rel=2e-5)
