"""Pooled heads (``bayesreg.training.heads``) on the multi-task problem of docs/multitask.md:
``br.datasets.multitask_example``, task 2 with 12 labels, tasks 0 and 1 with 300. Task 2's test
RMSE (500 rows) as one output of ``MLP((32,), tanh)`` fitted with the prior left out, with the
heads pooled (the library's default) and without (the per-array prior the evidence learned
alone: the pooling switched off for this run), against the same network fitted to the 12
labels alone; the 95% coverage of task 2's test rows.

Run:  .venv/bin/python benchmarks/multitask_pooled.py [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

import bayesreg as br
from bayesreg.training import heads


def _fit(net, X, Y, method, pooled: bool):
    """``br.fit`` with the pooling of the heads on or off (for the comparison only)."""
    saved = heads.poolable
    if not pooled:
        heads.poolable = lambda *_: False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return br.fit(net, X, Y, method=method)
    finally:
        heads.poolable = saved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()
    net = br.MLP((32,), activation="tanh")
    print("| seed | method | task 2 RMSE, pooled | per-array prior | alone | ratio pooled | "
          "ratio per-array | coverage pooled |\n" + "|---" * 8 + "|")
    for seed in args.seeds:
        X, Y, Xt, Yt = br.datasets.multitask_example(seed=seed)
        mask = np.zeros(Y.shape, bool)
        mask[12:, 2] = True
        for name, method in (("MAP()", br.MAP()), ("Ensemble(5)", br.Ensemble(5))):
            pooled = _fit(net, X, np.ma.masked_array(Y, mask), method, True).predict(Xt)
            plain = _fit(net, X, np.ma.masked_array(Y, mask), method, False).predict(Xt)
            alone = _fit(net, X[:12], Y[:12, 2], method, True).predict(Xt)
            a, b = pooled.metrics(Yt), plain.metrics(Yt)
            c = alone.metrics(Yt[:, 2])["rmse"]
            print(f"| {seed} | {name} | {a['rmse_task2']:.3f} | {b['rmse_task2']:.3f} | {c:.3f} "
                  f"| {a['rmse_task2'] / c:.2f} | {b['rmse_task2'] / c:.2f} "
                  f"| {a['coverage_95_task2']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
