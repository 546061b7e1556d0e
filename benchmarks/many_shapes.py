"""Resident growth of ``predict`` on 200 batch sizes and ``fit`` on 50 training sizes.

One process: a small unrelated fit first (so JAX's runtime and XLA's compiler are set up
and not counted), then, measured from there, an MLP(8) MAP fit (100 steps) on 100 rows,
``predict`` on every batch size 1-200, and MAP fits on every training size 20-69. Rows are
padded to bucketed counts (:mod:`bayesreg.data.buckets`), so this compiles 11 forward passes
and 5 training loops, not 250 programs. VmRSS after each phase above where it started.

Run:  .venv/bin/python benchmarks/many_shapes.py
"""

from __future__ import annotations

import time

import numpy as np

import bayesreg as br


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def main():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (400, 1))
    y = np.sin(3 * X[:, 0]) + 0.1 * rng.normal(size=400)
    br.fit(br.MLP((4,)), X[:30], y[:30], method=br.MAP(steps=10)).predict(X[:5])
    start, t = rss_mb(), time.perf_counter()
    post = br.fit(br.MLP((8,)), X[:100], y[:100], method=br.MAP(steps=100))
    for n in range(1, 201):
        assert post.predict(X[:n]).mean.shape == (n,)
    after_predict = rss_mb()
    for n in range(20, 70):
        br.fit(br.MLP((8,)), X[:n], y[:n], method=br.MAP(steps=100))
    end = rss_mb()
    print(f"fit + predict on 200 batch sizes: +{after_predict - start:.0f} MB; "
          f"then fit on 50 training sizes: +{end - after_predict:.0f} MB; "
          f"total +{end - start:.0f} MB in {time.perf_counter() - t:.0f} s")


if __name__ == "__main__":
    main()
