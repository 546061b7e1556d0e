"""What the defaults cost: each default method against the same method with its choices given.

Issue 21's pairs, on 300 rows x 8 features, an MLP(50), in one warm process, side by side:

* ``Ensemble(5)`` with σ and the prior left out (learned by the evidence during training)
  against ``Ensemble(5)`` with ``GaussianLikelihood(σ)`` and ``Gaussian(s)`` given (goal <= 2x);
* ``MCDropout()`` (the rate chosen on held-out rows over four candidates) against
  ``MCDropout(rate=0.05)`` (goal <= 2.5x);
* ``LaplaceApprox()`` at a new training size in the same bucket (301, 302, ... rows) against
  a refit at the size already seen (300 rows): nothing should compile again (goal <= 1.2x).

Each fit runs once to compile (reported as ``first``), then ``repeats`` times alternating
the two sides of a pair, so that both see the same machine load; the ratio is of the
medians.

Run:  .venv/bin/python benchmarks/defaults_cost.py [--repeats 5] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import jax
import numpy as np

import bayesreg as br

N, D, HIDDEN, MEMBERS = 300, 8, 50, 5


def data(seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, D)).astype(np.float32)
    w = rng.standard_normal(D)
    y = np.tanh(X @ w / np.sqrt(D)) + 0.3 * np.sin(2 * X[:, 0]) + 0.1 * rng.standard_normal(N)
    return X, y.astype(np.float32)


def pairs():
    """{pair name: {side name: fit(X, y, seed)}}."""
    model = br.MLP((HIDDEN,))

    def fit(method, **given):
        def run(X, y, seed):
            post = br.fit(model, X, y, method=method, seed=seed, **given)
            jax.block_until_ready(jax.tree_util.tree_leaves(post.params))
            return post
        return run

    given = {"likelihood": br.GaussianLikelihood(0.1), "prior": br.Gaussian(1.0)}
    return {
        "ensemble": {"default": fit(br.Ensemble(MEMBERS)),
                     "given": fit(br.Ensemble(MEMBERS), **given)},
        "dropout": {"default": fit(br.MCDropout()),
                    "given": fit(br.MCDropout(rate=0.05))},
        "laplace": {"new_size": fit(br.LaplaceApprox()), "given": fit(br.LaplaceApprox())},
    }


def timed_pair(sides: dict, repeats: int) -> dict:
    out = {}
    X, y = data(100)
    for name, fit in sides.items():
        start = time.perf_counter()
        fit(X, y, 0)
        out[name] = {"first_seconds": time.perf_counter() - start, "seconds": []}
    for r in range(repeats):
        X, y = data(r)
        for name, fit in sides.items():
            rows = r + 1 if name == "new_size" else 0  # one more row each time: a new N
            Xr, yr = (X, y) if not rows else (np.concatenate([X, X[:rows]]),
                                              np.concatenate([y, y[:rows]]))
            start = time.perf_counter()
            fit(Xr, yr, r + 1)
            out[name]["seconds"].append(time.perf_counter() - start)
    for name in sides:
        out[name]["median_seconds"] = statistics.median(out[name]["seconds"])
    first = "default" if "default" in sides else "new_size"
    out["ratio"] = out[first]["median_seconds"] / out["given"]["median_seconds"]
    return out


GOALS = {"ensemble": 2.0, "dropout": 2.5, "laplace": 1.2}


def run(repeats: int = 5, out: str | None = None, only: tuple[str, ...] = ()) -> dict:
    res = {"settings": {"n": N, "features": D, "hidden": HIDDEN, "members": MEMBERS,
                        "repeats": repeats, "device": str(jax.devices()[0]),
                        "cores": os.cpu_count()}}
    for name, sides in pairs().items():
        if only and name not in only:
            continue
        res[name] = r = timed_pair(sides, repeats)
        first = "default" if "default" in sides else "new_size"
        print(f"{name:8s} {first} {r[first]['median_seconds']:.2f}s  "
              f"given {r['given']['median_seconds']:.2f}s  ratio {r['ratio']:.2f} "
              f"(goal <= {GOALS[name]})  first calls {r[first]['first_seconds']:.1f}s / "
              f"{r['given']['first_seconds']:.1f}s", flush=True)
    if out:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "defaults_cost.json"), "w") as fh:
            json.dump(res, fh, indent=2)
    return res


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", nargs="*", default=())
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    run(args.repeats, args.out, tuple(args.only))
