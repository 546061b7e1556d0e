"""Learned σ and test RMSE of MAP's evidence updates, with the library's defaults, from 4 000 to
50 000 parameters (issue: "honest at every size").

Problems (truth σ = 0.3 everywhere):

- ``sin50``: MLP((64, 64)) (4 353 parameters) on 50 points of sin(3x) + 0.3·ε, x ~ U(−2, 2);
- ``sin200``: MLP((200, 200)) (40 801 parameters) on 200 points of the same curve;
- ``wide80``: MLP((50,)) (4 101 parameters) on 1 000 rows of 80 standard-normal features,
  y = sin(x·a) + 0.5·x·b + 0.3·ε with a, b of norm 1;
- ``sin50-laplace`` / ``sin50-student``: ``sin50`` under a given ``br.Laplace(1.0)`` /
  ``br.StudentT(3, 1.0)`` prior (σ still learned).

Test RMSE is against the noiseless truth on 1 000 fresh inputs.

    python benchmarks/evidence_sizes.py            # every problem, seed 0
    python benchmarks/evidence_sizes.py sin50 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import bayesreg as br


def sin_problem(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, (n, 1))
    xt = np.linspace(-2, 2, 1000)[:, None]
    return x, np.sin(3 * x[:, 0]) + 0.3 * rng.standard_normal(n), xt, np.sin(3 * xt[:, 0])


def wide_problem(n, seed, d=80):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(d), rng.standard_normal(d)
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)

    def f(X):
        return np.sin(X @ a) + 0.5 * X @ b

    X, Xt = rng.standard_normal((n, d)), rng.standard_normal((1000, d))
    return X, f(X) + 0.3 * rng.standard_normal(n), Xt, f(Xt)


PROBLEMS = {
    "sin50": (lambda s: sin_problem(50, s), br.MLP((64, 64)), None),
    "sin200": (lambda s: sin_problem(200, s), br.MLP((200, 200)), None),
    "wide80": (lambda s: wide_problem(1000, s), br.MLP((50,)), None),
    "sin50-laplace": (lambda s: sin_problem(50, s), br.MLP((64, 64)), br.Laplace(1.0)),
    "sin50-student": (lambda s: sin_problem(50, s), br.MLP((64, 64)), br.StudentT(3.0, 1.0)),
}


def run(name, seed):
    data, model, prior = PROBLEMS[name]
    X, y, Xt, ft = data(seed)
    t = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        post = br.fit(model, X, y, prior=prior, seed=seed)
    seconds = time.perf_counter() - t
    rmse = float(np.sqrt(np.mean((np.asarray(post.predict(Xt).mean) - ft) ** 2)))
    sigma = float(np.ravel(post.noise_std())[0])
    warned = sorted({str(w.message).split(".")[0][:60] for w in caught})
    return sigma, rmse, seconds, warned


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("names", nargs="*", default=list(PROBLEMS))
    parser.add_argument("--seeds", type=int, nargs="*", default=[0])
    args = parser.parse_args()
    print("| problem | seed | learned σ (truth 0.3) | test RMSE | seconds | warnings |")
    print("|---|---|---|---|---|---|")
    for name in args.names:
        for seed in args.seeds:
            sigma, rmse, seconds, warned = run(name, seed)
            print(f"| {name} | {seed} | {sigma:.3f} | {rmse:.3f} | {seconds:.1f} | "
                  f"{'; '.join(warned) or '-'} |", flush=True)


if __name__ == "__main__":
    main()
