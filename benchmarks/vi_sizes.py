"""VI's learned σ and test RMSE with the library's defaults on networks that mean field prunes
(docs/methods/vi.md, "When mean field prunes the network").

Each row fits ``br.fit(br.MLP(hidden), X, y, method=br.VI(), seed=seed)`` (a given prior where
named) on ``evidence_sizes.sin_problem(n, seed)`` (sin(3x) + 0.3·ε, truth σ = 0.3) and prints
the ELBO's σ, the σ the fit returns, where it was set (q's mean or the mode VI started from),
q's residual over the mode's, the RMSE of the predictive mean against the noiseless curve on
1 000 points, and the share of 1 000 fresh noisy targets there (the curve + 0.3·ε) inside
the 95% band.

    python benchmarks/vi_sizes.py            # the docs' rows but MLP((200, 200)) (~1 min)
    python benchmarks/vi_sizes.py --large    # and MLP((200, 200)) on 200 points (~40 s more)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

import bayesreg as br

sys.path.insert(0, os.path.dirname(__file__))
from evidence_sizes import sin_problem

ROWS = [((64, 64), 50, 0, None), ((64, 64), 50, 1, None), ((50,), 50, 0, None),
        ((50,), 50, 1, None), ((50,), 200, 0, None), ((64, 64), 50, 0, "student"),
        ((64, 64), 50, 1, "laplace")]
PRIORS = {None: None, "student": br.StudentT(3.0, 1.0), "laplace": br.Laplace(1.0)}


def run(rows):
    print("| network, rows, seed, prior | σ: ELBO's | σ (set at) | RSS / mode's | RMSE | "
          "coverage_95 | s |")
    print("|---|---|---|---|---|---|---|")
    for hidden, n, seed, prior in rows:
        X, y, Xt, ft = sin_problem(n, seed)
        kw = {} if prior is None else {"prior": PRIORS[prior]}
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            post = br.fit(br.MLP(hidden), X, y, method=br.VI(progress_bar=False), seed=seed, **kw)
        seconds = time.perf_counter() - start
        d = post.diagnostics
        pred = post.predict(Xt)
        rmse = float(np.sqrt(np.mean((np.asarray(pred.mean) - ft) ** 2)))
        yt = ft + 0.3 * np.random.default_rng(100 + seed).standard_normal(len(ft))
        coverage = pred.metrics(yt)["coverage_95"]
        warned = " (warned)" if any("pruned" in str(w.message) for w in caught) else ""
        print(f"| `MLP({hidden})`, {n}, {seed}, {prior or 'default'} | "
              f"{float(np.ravel(d['sigma_elbo'])[0]):.3f} | "
              f"{float(np.mean(post.noise_std())):.3f} ({d['noise_at'] or '—'}) | "
              f"{d['rss_mean'] / d['rss_mode']:.2f} | {rmse:.3f}{warned} | {coverage:.3f} | "
              f"{seconds:.1f} |",
              flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="add MLP((200, 200)) on 200 rows")
    args = parser.parse_args()
    run(ROWS + ([((200, 200), 200, 0, None)] if args.large else []))


if __name__ == "__main__":
    main()
