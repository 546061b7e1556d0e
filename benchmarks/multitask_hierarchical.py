"""The multi-task problem of docs/multitask.md (``br.datasets.multitask_example``: three tasks
reading the same two features, task 2 with 12 labels) under a fixed prior N(0, 1) and under
a sampled weight scale s ~ HalfNormal(1): task 2's test RMSE as one output of the shared
network against the same network fitted to its 12 labels alone, 95% coverage of task 2,
and the posterior median of s. MLP((32,), tanh); NUTS 500 + 500 draws (one chain), VI and
MAP at their defaults.

Run:  .venv/bin/python benchmarks/multitask_hierarchical.py [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import bayesreg as br

FIXED = br.Gaussian(1.0)
SAMPLED = {"weights": br.Gaussian(br.HalfNormal(1.0)), "biases": br.Gaussian(1.0)}


def fits():
    nuts = br.NUTS(num_warmup=500, num_samples=500, num_chains=1, progress_bar=False)
    vi = br.VI(progress_bar=False)
    return [("MAP", br.MAP(steps=3000), FIXED, "N(0, 1)"),
            ("NUTS", nuts, FIXED, "N(0, 1)"), ("NUTS", nuts, SAMPLED, "s ~ HalfNormal(1)"),
            ("VI", vi, FIXED, "N(0, 1)"), ("VI", vi, SAMPLED, "s ~ HalfNormal(1)")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()
    print("| seed | method | weight prior | task 2 RMSE, shared | alone | ratio | coverage "
          "shared | alone | median s | seconds |\n" + "|---" * 10 + "|")
    net = br.MLP((32,), activation="tanh")
    for seed in args.seeds:
        X, Y, Xt, Yt = br.datasets.multitask_example(seed=seed)
        mask = np.zeros(Y.shape, bool)
        mask[12:, 2] = True
        for name, method, prior, label in fits():
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                shared = br.fit(net, X, np.ma.masked_array(Y, mask), method=method,
                                prior=prior)
                alone = br.fit(net, X[:12], Y[:12, 2], method=method, prior=prior)
            seconds = time.perf_counter() - start
            a = shared.predict(Xt).metrics(Yt)
            b = alone.predict(Xt).metrics(Yt[:, 2])
            s = (shared.hyper or {}).get("weights_scale")
            scale = "" if s is None else f"{np.median(np.asarray(s)):.2f}"
            print(f"| {seed} | {name} | {label} | {a['rmse_task2']:.3f} | {b['rmse']:.3f} | "
                  f"{a['rmse_task2'] / b['rmse']:.2f} | {a['coverage_95_task2']:.3f} | "
                  f"{b['coverage_95']:.3f} | {scale} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
