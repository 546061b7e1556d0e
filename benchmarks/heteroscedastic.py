"""A heteroscedastic network on the UCI protocol's Boston splits: test RMSE, test
log-likelihood and 95% coverage of MAP, LaplaceApprox and Ensemble(5) under
``HeteroscedasticGaussian()`` with the library's defaults (10% of the training rows held
out, the best weights on them kept). Same splits, standardisation and MLP(50) as
``benchmarks/uci.py``.

Run:  .venv/bin/python benchmarks/heteroscedastic.py [--splits 5]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import uci

import bayesreg as br


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--splits", type=int, default=5)
    args = ap.parse_args()
    X, y = uci.load("boston")
    for name, method in (("MAP", br.MAP()), ("LaplaceApprox", br.LaplaceApprox()),
                         ("Ensemble(5)", br.Ensemble(members=5))):
        rows = []
        for k, (Xtr, ytr, Xte, test, sy, my) in enumerate(
                uci.protocol_splits(X, y, args.splits)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                post = br.fit(br.MLP((50,)), Xtr, ytr, method=method,
                              likelihood=br.HeteroscedasticGaussian(), seed=k)
            pred = post.predict(Xte).affine(sy, my)
            yt = y[test]
            rows.append((pred.metrics(yt)["rmse"], float(np.mean(pred.log_prob(yt))),
                         float(np.mean(np.abs(yt - pred.mean) < 1.96 * pred.std))))
            print(f"{name} split {k + 1}: rmse {rows[-1][0]:.3f} ll {rows[-1][1]:.3f} "
                  f"coverage_95 {rows[-1][2]:.3f}", flush=True)
        mean = np.mean(rows, 0)
        print(f"{name} mean over {args.splits} splits: rmse {mean[0]:.3f} ll {mean[1]:.3f} "
              f"coverage_95 {mean[2]:.3f}")


if __name__ == "__main__":
    main()
