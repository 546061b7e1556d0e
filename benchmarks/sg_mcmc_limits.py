"""What SGHMC's and SWAG's draws can and cannot represent, against the exact posterior
(``br.Exact``) of a linear-Gaussian model.

1. Mini-batch SGHMC's bias grows with the momentum m: the sd of the slope's draws over the
   exact posterior sd, one feature, N = 100, σ = 0.5 given, prior N(0, 1), batch 10, step
   1e-2, 4 chains × 2 000 draws, for m = 0 (SGLD), 0.5, 0.9.
2. SWAG's correlation: two features of correlation ρ = 0.95, N = 100; the posterior
   correlation of the two slopes under Exact, SWAG with its default per-parameter rates
   (rank 20) and SWAG with one rate (``lr=`` a float).

    python benchmarks/sg_mcmc_limits.py
"""

from __future__ import annotations

import warnings

import numpy as np

import bayesreg as br

LIK, PRIOR = br.GaussianLikelihood(0.5), br.Gaussian(1.0)


def sghmc_bias(seed=0):
    X, y, _ = br.datasets.linear_example(n=100, d=1, noise=0.5, seed=seed)
    exact = br.fit(br.Linear(), X, y, method=br.Exact(), prior=PRIOR, likelihood=LIK)
    sd = np.sqrt(exact.approximation.cov[0, 0])
    print("| momentum m | sd ratio (mini-batch 10 of 100, step 1e-2) | 1/(1 − m) |")
    print("|---|---|---|")
    for m in (0.0, 0.5, 0.9):
        post = br.fit(br.Linear(), X, y, prior=PRIOR, likelihood=LIK, seed=seed,
                      method=br.SGLD(step_size=1e-2, momentum=m, batch_size=10,
                                     num_samples=2000, num_chains=4))
        w = np.asarray(post.params["weights"][0]).reshape(-1)
        print(f"| {m} | {w.std() / sd:.2f} | {1 / (1 - m):.0f} |", flush=True)


def swag_correlation(seed=0, rho=0.95):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((100, 2))
    X = np.column_stack([z[:, 0], rho * z[:, 0] + np.sqrt(1 - rho**2) * z[:, 1]])
    y = X @ np.array([1.0, -0.5]) + 0.5 * rng.standard_normal(100)
    exact = br.fit(br.Linear(), X, y, method=br.Exact(), prior=PRIOR, likelihood=LIK)
    cov = exact.approximation.cov[:2, :2]
    print("| posterior of the two slopes | correlation | sd ratio (slope 1) |")
    print("|---|---|---|")
    print(f"| Exact | {cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1]):.3f} | 1 |")
    for name, method in (("SWAG, per-parameter rates (default)", br.SWAG()),
                         ("SWAG, one rate lr=0.01", br.SWAG(lr=0.01))):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            post = br.fit(br.Linear(), X, y, prior=PRIOR, likelihood=LIK, seed=seed,
                          method=method)
        draws = post.function_draws(np.eye(2)).outputs[..., 0]  # f(e_k) = w_k + b
        w = draws - post.function_draws(np.zeros((1, 2))).outputs[..., 0]
        c = np.corrcoef(w.T)[0, 1]
        print(f"| {name} | {c:.3f} | {w[:, 0].std() / np.sqrt(cov[0, 0]):.2f} |", flush=True)


if __name__ == "__main__":
    sghmc_bias()
    print()
    swag_correlation()
