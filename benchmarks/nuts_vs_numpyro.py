"""br.NUTS against NumPyro's NUTS written by hand, same network, prior, data and settings.

Both sides use NumPyro's NUTS kernel; what is measured is what bayesreg adds on top (or
saves). Each side runs `repeats` fits on fresh data of the same shape after one cold fit;
the cold fit includes compilation. Reported: median wall time per fit, ratio br / NumPyro,
bulk ESS of the predictive mean at 5 points, ESS per second and per gradient evaluation.

Run:  .venv/bin/python benchmarks/nuts_vs_numpyro.py [--quick] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import warnings

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.infer import MCMC
from numpyro.infer import NUTS as NumPyroNUTS

import bayesreg as br
from bayesreg.bench import say

HIDDEN, NOISE, N = 20, 0.1, 100
GRID = np.linspace(-1.0, 1.0, 5)


def hand_written_model(X, y=None):
    w1 = numpyro.sample("w1", dist.Normal(0, 1).expand([1, HIDDEN]).to_event(2))
    b1 = numpyro.sample("b1", dist.Normal(0, 1).expand([HIDDEN]).to_event(1))
    w2 = numpyro.sample("w2", dist.Normal(0, 1).expand([HIDDEN, 1]).to_event(2))
    b2 = numpyro.sample("b2", dist.Normal(0, 1).expand([1]).to_event(1))
    f = (jnp.tanh(X @ w1 + b1) @ w2 + b2)[:, 0]
    numpyro.sample("y", dist.Normal(f, NOISE), obs=y)


def numpyro_fit(X, y, settings, seed):
    mcmc = MCMC(NumPyroNUTS(hand_written_model, dense_mass=False), progress_bar=False,
                **settings)
    start = time.perf_counter()
    mcmc.run(jax.random.key(seed), jnp.asarray(X, jnp.float32), jnp.asarray(y, jnp.float32),
             extra_fields=("num_steps",))
    s = mcmc.get_samples()
    jax.block_until_ready(s)
    seconds = time.perf_counter() - start
    f = np.asarray(jnp.tanh(GRID[None, :, None] @ s["w1"] + s["b1"][:, None, :]) @ s["w2"]
                   + s["b2"][:, None, :])[:, :, 0]
    grads = float(np.sum(mcmc.get_extra_fields()["num_steps"]))
    return seconds, f, grads


def br_fit(X, y, settings, seed):
    # bayesreg's default progress (silent under 2 s, lines after): its cost is in the timing
    method = br.NUTS(dense_mass=False, **settings)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        post = br.fit(br.MLP((HIDDEN,), activation="tanh"), X, y, method=method,
                      prior=br.Gaussian(1.0), likelihood=br.GaussianLikelihood(NOISE), seed=seed)
    seconds = time.perf_counter() - start
    f = post.predict(GRID).draws
    return seconds, f, float(np.sum(post.diagnostics["n_steps"]))


def min_ess(f, chains):
    return float(min(az.ess(f[:, j].reshape(chains, -1)) for j in range(f.shape[1])))


def run(quick: bool, out: str | None) -> dict:
    settings = {"num_warmup": 300 if quick else 500, "num_samples": 300 if quick else 1000,
                "num_chains": 1, "chain_method": "sequential"}
    repeats = 2 if quick else 5
    results = {}
    for name, fn in (("numpyro", numpyro_fit), ("bayesreg", br_fit)):
        say(f"nuts_vs_numpyro: {name}, 1 cold + {repeats} warm fits ...")
        X, y = br.datasets.gap_example(n=N, noise=NOISE, seed=100)
        cold, _, _ = fn(X, y, settings, 0)
        times, ess, grads = [], [], []
        for r in range(repeats):
            X, y = br.datasets.gap_example(n=N, noise=NOISE, seed=r)
            t, f, g = fn(X, y, settings, r + 1)
            times.append(t)
            ess.append(min_ess(f, settings["num_chains"]))
            grads.append(g)
        med = statistics.median(times)
        results[name] = {"cold_seconds": cold, "median_seconds": med,
                         "median_min_ess_f": statistics.median(ess),
                         "ess_per_second": statistics.median(e / t for e, t in
                                                             zip(ess, times, strict=True)),
                         "ess_per_gradient": statistics.median(e / g for e, g in
                                                               zip(ess, grads, strict=True))}
    results["ratio_median_time"] = (results["bayesreg"]["median_seconds"]
                                    / results["numpyro"]["median_seconds"])
    results["ratio_cold_time"] = (results["bayesreg"]["cold_seconds"]
                                  / results["numpyro"]["cold_seconds"])
    results["settings"] = {**settings, "repeats": repeats, "model": f"MLP(1-{HIDDEN}-1 tanh)",
                           "n": N, "device": str(jax.devices()[0]),
                           "machine": f"{platform.machine()}, {os.cpu_count()} cores"}
    print(f"NUTS on a 1-{HIDDEN}-1 tanh network, N={N}, {settings}")
    for name in ("numpyro", "bayesreg"):
        r = results[name]
        print(f"  {name:9s} cold {r['cold_seconds']:.2f}s  warm median {r['median_seconds']:.2f}s"
              f"  min ESS(f) {r['median_min_ess_f']:.0f}  ESS/s {r['ess_per_second']:.1f}"
              f"  ESS/grad {r['ess_per_gradient']:.4f}")
    print(f"  ratio bayesreg/numpyro: warm {results['ratio_median_time']:.3f}, "
          f"cold {results['ratio_cold_time']:.3f} (goal <= 1.1)")
    if out:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "nuts_vs_numpyro.json"), "w") as fh:
            json.dump(results, fh, indent=2)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer draws and repeats")
    parser.add_argument("--out", default="benchmarks/results", help="folder for the JSON")
    args = parser.parse_args()
    run(args.quick, args.out)
