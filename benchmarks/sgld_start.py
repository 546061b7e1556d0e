"""Where SGLD's chains start and its step size, against NUTS, on the diabetes table with
``MLP((50,))`` under the prior ``bayesreg compare`` learns (the same 354 training and 88
test rows, features and target standardised on the training rows): the median σ, the
training RMS of the draws, the mean epistemic sd, 95% coverage and test NLL, in the
target's units. The table of docs/methods/sgld.md.

Run:  .venv/bin/python benchmarks/sgld_start.py
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
from sklearn.datasets import load_diabetes

import bayesreg as br
from bayesreg.compare import holdout
from bayesreg.selection import learn_prior
from bayesreg.training import langevin

STIFF = langevin.STIFF_LIKELIHOOD

# (name, method, whether the step is capped at the mode's stable range): the rows without the
# cap switch it off (langevin.STIFF_LIKELIHOOD = inf) to show what it prevents
SAMPLERS = [
    ("NUTS (2 x 500 draws)", br.NUTS(num_warmup=500, num_samples=500, num_chains=2), True),
    ("SGLD eps 5e-3 from the model's initialisation", br.SGLD(init="model"), True),
    ("the same, 20 000 warm-up steps", br.SGLD(init="model", num_warmup=20_000), True),
    ("SGLD eps 5e-3 from the mode, no cap", br.SGLD(), False),
    ("SGLD eps 2.5e-3 from the mode, no cap", br.SGLD(step_size=2.5e-3), False),
    ("SGLD eps 1e-3 from the mode, no cap", br.SGLD(step_size=1e-3), False),
    ("SGLD from the mode, eps capped (the default)", br.SGLD(), True),
]


def diabetes():
    """(X_train, z_train, X_test, y_test, mean, sd of y, the learned prior): the rows and the
    prior of ``bayesreg compare`` on diabetes with ``--model mlp:50`` (seed 0)."""
    X, y = load_diabetes(return_X_y=True)
    test, train = holdout(len(y), 0.2, 0)
    mu, sd = X[train].mean(0), X[train].std(0)
    ym, ys = y[train].mean(), y[train].std()
    z = (y[train] - ym) / ys
    prior, how = learn_prior(br.MLP((50,)), (X[train] - mu) / sd, z)
    print(how)
    return (X[train] - mu) / sd, z, (X[test] - mu) / sd, y[test], ym, ys, prior


def row(name, method, data, extra=()) -> None:
    """Fit ``method`` on ``data`` (:func:`diabetes`) and print its row of the table: median
    σ, training RMS of the draws, mean epistemic sd, 95% coverage, test NLL, seconds, and
    the diagnostics named in ``extra``."""
    Xtr, z, Xte, yte, ym, ys, prior = data
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        post = br.fit(br.MLP((50,)), Xtr, z, method=method, prior=prior)
    seconds = time.perf_counter() - start
    pred = post.predict(Xte).affine(ys, ym)
    metrics = pred.metrics(yte)
    f = np.asarray(post.function_draws(Xtr).outputs)[..., 0] + post.offset
    train_rms = float(np.sqrt(np.mean((f - z) ** 2))) * ys
    sigma = float(np.median(np.asarray(post.noise_std()))) * ys
    more = "".join(f" {post.diagnostics[k]:.3g} |" for k in extra)
    print(f"| {name} | {sigma:.1f} | {train_rms:.1f} | {np.mean(pred.epistemic_std):.1f} "
          f"| {metrics['coverage_95']:.3f} | {metrics['nll']:.3f} | {seconds:.1f} |{more}",
          flush=True)


HEADER = ("| method | σ (median) | training RMS of the draws | epistemic sd | 95% coverage "
          "| test NLL | seconds |")


def main() -> None:
    data = diabetes()
    print(f"{HEADER} step used |\n|---|---|---|---|---|---|---|---|")
    for name, method, capped in SAMPLERS:
        langevin.STIFF_LIKELIHOOD = STIFF if capped else math.inf
        row(name, method, data, ("step_size_used",) if isinstance(method, br.SGLD) else ())


if __name__ == "__main__":
    main()
