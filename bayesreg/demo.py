"""``bayesreg demo``: the book's 15-point example under every method, one figure and one table.

Prince, *Understanding Deep Learning*, the Bayesian approach of chapter 9: the exact
posterior of a model with fixed ReLU features under three prior variances, then MAP,
Laplace, VI and NUTS under one of them, and MC dropout and a deep ensemble on a small network.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings

import numpy as np

import bayesreg as br
from bayesreg import methods, plots
from bayesreg._report import column_notes, compile_clock, json_rows, messages, say
from bayesreg._report import table as markdown_table

# The book's Bayesian figure: prior variances σ_φ² = 1000, 100, 10.
DEMO_PRIOR_VARIANCES = (1000.0, 100.0, 10.0)
DEMO_NOISE = 0.3


def demo(out: str = "bayesreg-demo", seed: int = 0, knots: int = 10, quick: bool = False):
    """The book's 15-point example under every method: one PNG of bands, one table.

    Row 1: the exact posterior under prior variances 1000, 100, 10 (the book's figure).
    Rows 2–3: MAP, Laplace, VI, NUTS on the same fixed ReLU features (prior variance 100),
    and MC dropout and a deep ensemble on a 1-50-1 ReLU network with a N(0, 3²) prior.
    Test metrics are on 500 fresh points.
    """
    import matplotlib  # deferred with pyplot below: 0.33 s, paid only by the demo

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    os.makedirs(out, exist_ok=True)
    X, y = br.datasets.book_example(n=15, noise=DEMO_NOISE, seed=seed)
    X_test, y_test = br.datasets.book_example(n=500, noise=DEMO_NOISE, seed=seed + 1)
    grid = np.linspace(0, 1, 200)
    basis, lik = br.relu_basis(knots), br.GaussianLikelihood(DEMO_NOISE)
    runs = [(f"Exact, σ_φ² = {v:g}", basis, br.Exact(), br.Gaussian(math.sqrt(v)), v)
            for v in DEMO_PRIOR_VARIANCES]
    # L-BFGS: overlapping ReLU features under a weak prior are ill-conditioned, and the
    # demo should show MAP landing on the posterior mode, as the theory says it does.
    runs += [(f"{name}, σ_φ² = 100", basis, method, br.Gaussian(10.0), 100.0)
             for name, method in (("MAP", br.MAP(optimizer="lbfgs")),
                                  ("Laplace", br.LaplaceApprox()),
                                  ("VI", methods.command_line(quick)["vi"]),
                                  ("NUTS", methods.command_line(quick)["nuts"]))]
    # a 1-50-1 ReLU net needs slopes of ~15 on x ∈ [0, 1]: a N(0, 3²) prior allows them
    net, train = br.MLP((50,)), br.MAP(lr=0.03, steps=1000 if quick else 3000)
    # with one input feature, input dropout zeroes the whole input: keep it (drop_input=False)
    # the masks make the gradient noisy: dropout gets more updates (test RMSE 0.51 → 0.38)
    long = br.MAP(lr=0.03, steps=2000 if quick else 10_000)
    runs += [("MC dropout, MLP(50)", net, br.MCDropout(rate=0.05, drop_input=False,
                                                      training=long), br.Gaussian(3.0), 9.0),
             ("Ensemble(10), MLP(50)", net, br.Ensemble(members=10, training=train),
              br.Gaussian(3.0), 9.0)]
    fig, axes = plt.subplots(3, 3, figsize=(13, 10), sharex=True, sharey=True)
    rows = []
    for ax, (title, model, method, prior, var) in zip(axes.flat, runs, strict=False):
        say(f"fitting {title} ...")
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught, compile_clock() as compiling:
            warnings.simplefilter("always", UserWarning)
            post = br.fit(model, X, y, method=method, prior=prior, likelihood=lik, seed=seed)
        seconds = time.perf_counter() - start
        for message in messages(caught):
            print(f"  warning ({title}): {message}", file=sys.stderr, flush=True)
        metrics = post.predict(X_test).metrics(y_test)
        rows.append({"method": title.split(",")[0], "model": type(model).__name__,
                     "prior_variance": var, **metrics,
                     "log_evidence": None if math.isnan(post.log_evidence) else
                     post.log_evidence, "fit_seconds": seconds,
                     "compile_seconds": compiling[0]})
        plots.bands(post.predict(grid), grid, X=X, y=y, truth=br.datasets.book_function, ax=ax,
                    title=title.replace("σ_φ²", r"$\sigma_\phi^2$"), legend=False,
                    xlabel="x" if ax in axes[-1] else "",
                    ylabel="y" if ax in axes[:, 0] else "")
        ax.set_ylim(-1, 4)
        # each panel names its bands (a MAP band is noise, not posterior); the lines and
        # points, the same in every panel, go in one figure legend below
        handles, labels = ax.get_legend_handles_labels()
        keep = [k for k, lab in enumerate(labels) if "%" in lab]
        ax.legend([handles[k] for k in keep], [labels[k] for k in keep], loc="upper right",
                  fontsize=9, framealpha=0.9)
        if ax is axes[0, 0]:
            common = [(h, lab) for h, lab in zip(handles, labels, strict=True) if "%" not in lab]
    fig.suptitle(f"bayesreg demo: y = exp(sin 2πx) + N(0, {DEMO_NOISE}²), {len(y)} points; "
                 f"{knots} fixed ReLU features max(0, x − k/{knots}) or a 1-50-1 network")
    fig.legend(*zip(*common, strict=True), loc="lower center", ncol=len(common), fontsize=11,
               frameon=False)
    fig.tight_layout(rect=(0, 0.035, 1, 1))
    fig.savefig(os.path.join(out, "bands.png"), dpi=100)
    plt.close(fig)
    cols = ["method", "model", "prior_variance", "rmse", "nll", "coverage_95", "crps",
            "log_evidence", "fit_seconds", "compile_seconds"]
    table = markdown_table(rows, cols)
    notes = "\n".join(column_notes(cols))
    with open(os.path.join(out, "metrics.md"), "w") as fh:
        fh.write(f"Test metrics on 500 fresh points (seed {seed + 1}).\n\n{table}\n\n{notes}\n")
    with open(os.path.join(out, "metrics.json"), "w") as fh:
        json.dump(json_rows(rows), fh, indent=2)
    print(table)
    print(f"\nwrote {out}/bands.png, {out}/metrics.md, {out}/metrics.json")
    return {"rows": rows, "out": out}
