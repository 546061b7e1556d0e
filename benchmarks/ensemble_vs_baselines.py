"""br.Ensemble(10) of MLP(50) members against the loops a user would otherwise write.

Baselines, same data (1000 points, 1 feature), same network (1-50-1 ReLU), same number of
full-batch Adam updates:
* a hand-written optax + ``lax.scan`` training loop, ``vmap``ped over 10 members (goal: br
  within 1.2x of it);
* 10 scikit-learn ``MLPRegressor`` fits (goal: br at least 5x faster);
* and ``br.Ensemble(10)`` with every default (σ and the prior scales learned by the evidence,
  the default rate and 3 000 updates: ``bayesreg_defaults``) against the same 10 scikit-learn
  fits (issue 21's goal: faster than them).

Times are medians over repeats after one warm-up fit (compilation reported separately).

Run:  .venv/bin/python benchmarks/ensemble_vs_baselines.py [--quick] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

import bayesreg as br
from bayesreg import bench

MEMBERS, HIDDEN, N, LR = 10, 50, 1000, 0.01


def data(seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (N, 1))
    return x, np.sin(3 * x[:, 0]) + 0.1 * rng.standard_normal(N)


def hand_written(steps):
    """The loop a JAX user writes (init, MSE + L2 loss, optax Adam, lax.scan), vmapped over
    members: the same one ``bayesreg bench`` times, with a constant learning rate."""
    run = jax.jit(jax.vmap(bench._hand_train(steps, HIDDEN, LR, schedule="constant"),
                           in_axes=(0, None, None)))

    def fit(X, y, seed):
        out = run(jax.random.split(jax.random.key(seed), MEMBERS), jnp.asarray(X, jnp.float32),
                  jnp.asarray(y, jnp.float32))
        jax.block_until_ready(out)
        return out

    return fit


def bayesreg_fit(steps):
    method = br.Ensemble(members=MEMBERS, training=br.MAP(lr=LR, steps=steps,
                                                          schedule="constant"))

    def fit(X, y, seed):
        return br.fit(br.MLP((HIDDEN,)), X, y, method=method, prior=br.Gaussian(1.0),
                      likelihood=br.GaussianLikelihood(0.1), seed=seed)

    return fit


def bayesreg_defaults():
    method = br.Ensemble(members=MEMBERS)

    def fit(X, y, seed):
        return br.fit(br.MLP((HIDDEN,)), X, y, method=method, seed=seed)

    return fit


def sklearn_fit(steps):
    from sklearn.neural_network import MLPRegressor

    def fit(X, y, seed):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning: we fix the step count
            return [MLPRegressor(hidden_layer_sizes=(HIDDEN,), solver="adam", learning_rate_init=LR,
                                 batch_size=N, max_iter=steps, tol=0.0, n_iter_no_change=steps,
                                 alpha=0.01, shuffle=False, random_state=seed + m).fit(X, y)
                    for m in range(MEMBERS)]

    return fit


def timed(fit, repeats):
    bench.say(f"ensemble_vs_baselines: {getattr(fit, '__qualname__', 'fit').split('.')[0]}, "
        f"1 cold + {repeats} warm fits ...")
    X, y = data(100)
    start = time.perf_counter()
    fit(X, y, 0)
    first = time.perf_counter() - start
    times = []
    for r in range(repeats):
        X, y = data(r)
        start = time.perf_counter()
        fit(X, y, r + 1)
        times.append(time.perf_counter() - start)
    med = statistics.median(times)
    return {"first_seconds": first, "median_seconds": med,
            "compile_seconds": max(0.0, first - med)}


def run(quick: bool, out: str | None) -> dict:
    steps = 1000 if quick else 3000
    repeats = 2 if quick else 5
    res = {"hand_written_vmap": timed(hand_written(steps), repeats),
           "bayesreg": timed(bayesreg_fit(steps), repeats),
           "bayesreg_defaults": timed(bayesreg_defaults(), repeats),
           "sklearn_10_fits": timed(sklearn_fit(steps), 1 if quick else 2)}
    res["ratio_vs_hand_written"] = (res["bayesreg"]["median_seconds"]
                                    / res["hand_written_vmap"]["median_seconds"])
    res["speedup_vs_sklearn"] = (res["sklearn_10_fits"]["median_seconds"]
                                 / res["bayesreg"]["median_seconds"])
    res["sklearn_vs_defaults"] = (res["sklearn_10_fits"]["median_seconds"]
                                  / res["bayesreg_defaults"]["median_seconds"])
    res["settings"] = {"members": MEMBERS, "hidden": HIDDEN, "n": N, "steps": steps,
                       "repeats": repeats, "device": str(jax.devices()[0]),
                       "cores": os.cpu_count()}
    print(f"Ensemble of {MEMBERS} x MLP({HIDDEN}), N={N}, {steps} full-batch Adam updates")
    for k in ("hand_written_vmap", "bayesreg", "bayesreg_defaults", "sklearn_10_fits"):
        r = res[k]
        print(f"  {k:18s} median {r['median_seconds']:.2f}s"
              f"  (first call {r['first_seconds']:.2f}s)")
    print(f"  bayesreg / hand-written: {res['ratio_vs_hand_written']:.3f} (goal <= 1.2)")
    print(f"  sklearn / bayesreg:      {res['speedup_vs_sklearn']:.1f}x (goal >= 5)")
    print(f"  sklearn / br defaults:   {res['sklearn_vs_defaults']:.1f}x (goal > 1)")
    if out:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "ensemble_vs_baselines.json"), "w") as fh:
            json.dump(res, fh, indent=2)
    return res


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    run(args.quick, args.out)
