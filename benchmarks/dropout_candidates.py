"""MC dropout's rate choice with the candidates trained for all or half of the final fit's
updates, side by side on the UCI protocol (``benchmarks/uci.py``'s splits and defaults).

For every split both settings fit ``br.MCDropout()`` (the rate chosen on held-out rows over
{0.005, 0.01, 0.05, 0.1}, then refitted on every row) with the same seed; printed per data
set: test RMSE and log-likelihood (mean ± standard error over the splits), the paired
difference of the log-likelihoods, the median seconds per fit and the rates chosen.

Run:  .venv/bin/python benchmarks/dropout_candidates.py [--splits 20]
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import numpy as np
import uci

import bayesreg as br
import bayesreg.methods.dropout as dropout

SHARES = (1.0, 0.5)


def run(splits: int) -> dict:
    out = {}
    for name in ("boston", "concrete"):
        X, y = uci.load(name)
        res = {s: {"rmse": [], "ll": [], "rate": [], "seconds": []} for s in SHARES}
        for k, (Xtr, ytr, Xte, test, sy, my) in enumerate(uci.protocol_splits(X, y, splits)):
            for share in SHARES:
                dropout.CANDIDATE_SHARE = share
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    post = br.fit(br.MLP((50,)), Xtr, ytr, method=br.MCDropout(), seed=k)
                pred = post.predict(Xte).affine(sy, my)
                r = res[share]
                r["seconds"].append(time.perf_counter() - start)
                r["rmse"].append(pred.metrics(y[test])["rmse"])
                r["ll"].append(float(np.mean(pred.log_prob(y[test]))))
                r["rate"].append(post.diagnostics["rate"])
        for share, r in res.items():
            n = len(r["rmse"])
            rates, counts = np.unique(r["rate"], return_counts=True)
            print(f"{name} candidates at {share:.0%} of the updates: "
                  f"RMSE {np.mean(r['rmse']):.3f} ± {np.std(r['rmse']) / math.sqrt(n):.3f}, "
                  f"log-likelihood {np.mean(r['ll']):.3f} ± {np.std(r['ll']) / math.sqrt(n):.3f}, "
                  f"{np.median(r['seconds']):.2f} s per fit, rates chosen "
                  f"{dict(zip(rates.tolist(), counts.tolist(), strict=True))}")
        d = np.asarray(res[SHARES[1]]["ll"]) - np.asarray(res[SHARES[0]]["ll"])
        print(f"{name} paired log-likelihood difference (half - all): "
              f"{d.mean():.4f} ± {d.std() / math.sqrt(len(d)):.4f}", flush=True)
        out[name] = res
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=20)
    run(parser.parse_args().splits)
