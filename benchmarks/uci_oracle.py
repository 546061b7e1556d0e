"""How far a homoscedastic Gaussian predictive can go on a UCI table: per split, the test
log-likelihood, the 95% coverage, and the log-likelihood an oracle gets by rescaling the
predictive std by the best factor for the test rows themselves.

Same splits, standardisation and model as ``benchmarks/uci.py``. The oracle is a diagnostic
(it looks at the test rows), not a method: if even it stays below a published number, no
calibration of these predictive means and stds can reach that number honestly.

Run:  .venv/bin/python benchmarks/uci_oracle.py [--data boston] [--method ensemble|dropout]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import uci
from scipy import stats

import bayesreg as br

FACTORS = np.linspace(0.5, 3.0, 51)  # the oracle's std multipliers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="boston", choices=("boston", "concrete"))
    ap.add_argument("--method", default="ensemble", choices=("ensemble", "dropout"))
    ap.add_argument("--splits", type=int, default=20)
    args = ap.parse_args()
    method = (br.Ensemble(members=5) if args.method == "ensemble"
              else br.MCDropout(rate=0.05))  # the fixed rate: one network per split
    X, y = uci.load(args.data)
    rows = []
    print("split  rmse     ll  oracle_ll  coverage_95")
    for k, (Xtr, ytr, Xte, test, sy, my) in enumerate(uci.protocol_splits(X, y, args.splits)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            post = br.fit(br.MLP((50,)), Xtr, ytr, method=method, seed=k)
        pred = post.predict(Xte).affine(sy, my)
        yt = y[test]
        oracle = max(float(np.mean(stats.norm.logpdf(yt, pred.mean, c * pred.std)))
                     for c in FACTORS)
        cover = float(np.mean(np.abs(yt - pred.mean) < 1.96 * pred.std))
        rows.append((pred.metrics(yt)["rmse"], float(np.mean(pred.log_prob(yt))), oracle,
                     cover))
        print(f"{k + 1:>5} " + " ".join(f"{v:8.3f}" for v in rows[-1]), flush=True)
    print("mean  " + " ".join(f"{v:8.3f}" for v in np.mean(rows, 0)))


if __name__ == "__main__":
    main()
