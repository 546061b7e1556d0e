"""br.NUTS against blackjax's NUTS on the same posterior: seconds per effective sample.

The posterior: an MLP(10) (tanh) on the first 100 rows of scikit-learn's diabetes table
(10 standardised features, standardised target), N(0, 1) on every weight and bias, the noise
fixed at σ = 0.7. blackjax samples bayesreg's own log density
(:func:`bayesreg.latent.latent_log_joint`), so both sides target the same density exactly.
Both run one chain: ``num_warmup`` steps of window adaptation (blackjax's
``window_adaptation``, its defaults: diagonal mass matrix, target acceptance 0.8; br.NUTS
its defaults, NumPyro's warmup) and then ``num_samples`` draws. Reported per side: wall
seconds of the whole fit (adaptation included, after one compiling fit), the minimum bulk
ESS of f over 20 training inputs, seconds per effective sample, divergences. The fits
alternate between the sides, on fresh seeds; medians over ``repeats``.

Run:  .venv/bin/python benchmarks/nuts_vs_blackjax.py [--repeats 5] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import warnings

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np

import bayesreg as br
from bayesreg.latent import latent_log_joint
from bayesreg.priors import as_prior_spec

HIDDEN, N, NOISE, WARMUP, SAMPLES = 10, 100, 0.7, 500, 1000


def data():
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X, y = X[:N], y[:N]
    X = (X - X.mean(0)) / X.std(0)
    return X.astype(np.float32), ((y - y.mean()) / y.std()).astype(np.float32)


MODEL = br.MLP((HIDDEN,), activation="tanh")
PRIOR, LIK = br.Gaussian(1.0), br.GaussianLikelihood(NOISE)


def min_ess(f):
    """Minimum bulk ESS over the columns of f (S, K), one chain."""
    return float(min(az.ess(np.asarray(f[:, k])[None]) for k in range(f.shape[1])))


def bayesreg_fit(X, y, seed):
    method = br.NUTS(num_warmup=WARMUP, num_samples=SAMPLES, num_chains=1, progress_bar=False)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        post = br.fit(MODEL, X, y, method=method, prior=PRIOR, likelihood=LIK, seed=seed,
                      center=False)
    f = post.predict(X[:20]).draws
    seconds = time.perf_counter() - start
    return seconds, min_ess(f), int(np.sum(post.diagnostics.get("divergences", 0)))


def blackjax_runner(X, y):
    import blackjax

    prior = as_prior_spec(PRIOR)
    Xj, yj = jnp.asarray(X), jnp.asarray(y)

    def logdensity(params):
        z = {"params": params, "theta": {}, "hyper": {}}
        return latent_log_joint(MODEL, LIK, prior, z, Xj, yj)

    @jax.jit
    def run(key):
        init_key, warm_key, sample_key = jax.random.split(key, 3)
        params0 = MODEL.init(init_key, X.shape[1])
        adapt = blackjax.window_adaptation(blackjax.nuts, logdensity)
        (state, parameters), _ = adapt.run(warm_key, params0, num_steps=WARMUP)
        kernel = blackjax.nuts(logdensity, **parameters).step

        def one(state, k):
            state, info = kernel(k, state)
            return state, (state.position, info.is_divergent)

        _, (positions, divergent) = jax.lax.scan(one, state,
                                                 jax.random.split(sample_key, SAMPLES))
        f = jax.vmap(lambda p: MODEL.apply(p, Xj[:20])[:, 0])(positions)
        return f, jnp.sum(divergent)

    def fit(seed):
        start = time.perf_counter()
        f, div = jax.block_until_ready(run(jax.random.key(seed)))
        seconds = time.perf_counter() - start
        return seconds, min_ess(f), int(div)

    return fit


def run(repeats: int = 5, out: str | None = None) -> dict:
    X, y = data()
    bj = blackjax_runner(X, y)
    sides = {"bayesreg": lambda s: bayesreg_fit(X, y, s), "blackjax": bj}
    res = {side: {"first_seconds": fit(100)[0], "runs": []} for side, fit in sides.items()}
    for r in range(repeats):
        for side, fit in sides.items():
            seconds, ess, div = fit(r)
            res[side]["runs"].append({"seconds": seconds, "min_ess": ess, "divergences": div})
    for side in sides:
        runs = res[side]["runs"]
        res[side]["median_seconds"] = statistics.median(r["seconds"] for r in runs)
        res[side]["median_min_ess"] = statistics.median(r["min_ess"] for r in runs)
        res[side]["median_seconds_per_ess"] = statistics.median(
            r["seconds"] / r["min_ess"] for r in runs)
        res[side]["divergences"] = [r["divergences"] for r in runs]
    res["ratio_seconds_per_ess"] = (res["bayesreg"]["median_seconds_per_ess"]
                                    / res["blackjax"]["median_seconds_per_ess"])
    res["settings"] = {"hidden": HIDDEN, "n": N, "noise": NOISE, "num_warmup": WARMUP,
                       "num_samples": SAMPLES, "repeats": repeats,
                       "device": str(jax.devices()[0]), "cores": os.cpu_count()}
    for side in sides:
        r = res[side]
        print(f"{side:9s} median {r['median_seconds']:.2f}s  min ESS {r['median_min_ess']:.0f}  "
              f"s/ESS {r['median_seconds_per_ess']:.5f}  divergences {r['divergences']}  "
              f"(first {r['first_seconds']:.1f}s)", flush=True)
    print(f"bayesreg / blackjax seconds per ESS: {res['ratio_seconds_per_ess']:.2f} (goal <= 1.0)")
    if out:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "nuts_vs_blackjax.json"), "w") as fh:
            json.dump(res, fh, indent=2)
    return res


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    run(args.repeats, args.out)
