"""SGLD and SGHMC end to end: ``br.fit(method=br.SGLD(...))`` + ``predict`` against blackjax.

The same posterior (an MLP with one hidden layer of 50 ReLU units on 455 rows × 13 features,
the size of the Boston housing training split: 751 weights; Gaussian likelihood with σ = 0.3
fixed; prior N(0, 1) on every weight), the same step (η = ε/N with ε = 5e-3 per data point),
the same batch (32 rows drawn with replacement at every step), the same number of steps
(2 chains × (1000 warm-up + 1000 × 10) steps, every 10th state kept) and the same predictive
(mean and sd of the 2000 draws' outputs plus σ at 100 test rows). Both are timed warm (each
compiled once before), in one process, one after the other; medians of the repeats. Also
the sampler's scaling in N (the issue-21 goal: N = 20 000 at most 1.5× N = 1 000).

SGHMC (``br.SGLD(momentum=m)``) against ``blackjax.sghmc`` on the same posterior, steps and
predictive. The two are one discretisation written in two parameterisations: bayesreg's
v ← m·v − η∇U + √(2(1 − m)η)ξ, z ← z + v is blackjax's p ← (1 − αh)p − h∇U + √(2αh)ξ,
z ← z + h·p with v = h·p, η = h² and m = 1 − αh (β = 0, T = 1). blackjax resamples p at each
of its steps and runs ``num_integration_steps`` = THIN inner steps on one batch, so one
blackjax step is one kept draw; both take 1000 × 10 + 1000 gradient steps a chain.

Run:  .venv/bin/python benchmarks/sgld_vs_blackjax.py [--repeats 5]
(needs ``pip install blackjax``, in the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import time
import warnings

import blackjax
import jax
import jax.numpy as jnp
import numpy as np

import bayesreg as br

SIGMA, EPS, BATCH, WARMUP, DRAWS, THIN, CHAINS, HIDDEN = 0.3, 5e-3, 32, 1000, 1000, 10, 2, 50


def data(n, d=13, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    w = rng.standard_normal(d)
    y = np.tanh(X @ w / 3) + SIGMA * rng.standard_normal(n)
    return X, ((y - y.mean()) / y.std()).astype(np.float32)


def bayesreg_fit(X, y, Xt, seed, batch=BATCH, momentum=0.0):
    method = br.SGLD(step_size=EPS, batch_size=batch, num_warmup=WARMUP, num_samples=DRAWS,
                     thinning=THIN, num_chains=CHAINS, momentum=momentum)
    post = br.fit(br.MLP((HIDDEN,)), X, y, method=method, seed=seed,
                  likelihood=br.GaussianLikelihood(SIGMA), prior=br.Gaussian(1.0))
    pred = post.predict(Xt)
    return np.asarray(pred.mean), np.asarray(pred.std), post


def forward(p, X):
    return (jax.nn.relu(X @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"])[:, 0]


def blackjax_program(n, d, momentum=0.0):
    def logprior(p):
        return sum(-0.5 * jnp.sum(a ** 2) for a in jax.tree_util.tree_leaves(p))

    def loglik(p, row):  # one row (x, y): blackjax maps it over the batch, scales by N/B
        x, y = row
        return -0.5 * (y - forward(p, x[None])[0]) ** 2 / SIGMA ** 2

    grad = blackjax.sgmcmc.gradients.grad_estimator(logprior, loglik, n)
    h = float(np.sqrt(EPS / n))  # η = h², m = 1 − αh (module docstring)
    if momentum:
        sampler = blackjax.sghmc(grad, num_integration_steps=THIN, alpha=(1 - momentum) / h)
        step_size, inner = h, 1  # one blackjax step: THIN gradient steps on one batch
    else:
        sampler, step_size, inner = blackjax.sgld(grad), EPS / n, THIN

    @jax.jit
    def run(key, X, y, Xt):
        def chain(key):
            init_key, key = jax.random.split(key)
            k1, k2 = jax.random.split(init_key)
            p = {"w1": jax.random.normal(k1, (d, HIDDEN)) / np.sqrt(d), "b1": jnp.zeros(HIDDEN),
                 "w2": jax.random.normal(k2, (HIDDEN, 1)) / np.sqrt(HIDDEN), "b2": jnp.zeros(1)}
            p = sampler.init(p)

            def step(p, t):
                bk, nk = jax.random.split(jax.random.fold_in(key, t))
                rows = jax.random.randint(bk, (BATCH,), 0, n)
                return sampler.step(nk, p, (X[rows], y[rows]), step_size), None

            def block(p, b):
                p = jax.lax.scan(step, p, b * inner + jnp.arange(inner))[0]
                return p, p

            p = jax.lax.scan(block, p, jnp.arange(WARMUP // THIN))[0]
            _, kept = jax.lax.scan(block, p, WARMUP // THIN + jnp.arange(DRAWS))
            return kept

        kept = jax.vmap(chain)(jax.random.split(key, CHAINS))
        out = jax.vmap(jax.vmap(lambda p: forward(p, Xt)))(kept).reshape(-1, len(Xt))
        return out.mean(0), jnp.sqrt(out.var(0) + SIGMA ** 2)

    return run


def blackjax_fit(run, X, y, Xt, seed):
    m, s = run(jax.random.key(seed), jnp.asarray(X), jnp.asarray(y), jnp.asarray(Xt))
    return np.asarray(m), np.asarray(s)


def timed(fn, repeats):
    fn(0)  # compile
    times = []
    for r in range(repeats):
        start = time.perf_counter()
        fn(r + 1)
        times.append(time.perf_counter() - start)
    return float(np.median(times)), times


def sghmc_pair(X, y, Xt, repeats: int, momentum: float) -> None:
    run = blackjax_program(*X.shape, momentum=momentum)
    ours, ours_all = timed(lambda s: bayesreg_fit(X, y, Xt, s, momentum=momentum), repeats)
    theirs, theirs_all = timed(lambda s: blackjax_fit(run, X, y, Xt, s), repeats)
    m1, s1, post = bayesreg_fit(X, y, Xt, 0, momentum=momentum)
    m2, s2 = blackjax_fit(run, X, y, Xt, 0)
    print(f"SGHMC m = {momentum}, end to end, median of {repeats}: bayesreg {ours:.2f} s "
          f"{np.round(ours_all, 2).tolist()}, blackjax {theirs:.2f} s "
          f"{np.round(theirs_all, 2).tolist()}, ratio {ours / theirs:.2f}")
    print(f"  bayesreg sampler alone {post.diagnostics['sampling_seconds']:.2f} s; "
          f"predictive mean differs by {np.abs(m1 - m2).mean() / s2.mean():.2f} sd (mean), "
          f"sd ratio {np.median(s1 / s2):.2f}")


def main(repeats: int, momentum: float) -> None:
    warnings.simplefilter("ignore", UserWarning)  # R-hat of so short a run on a network
    X, y = data(555)
    X, y, Xt = X[:455], y[:455], X[455:]
    run = blackjax_program(*X.shape)
    ours, ours_all = timed(lambda s: bayesreg_fit(X, y, Xt, s), repeats)
    theirs, theirs_all = timed(lambda s: blackjax_fit(run, X, y, Xt, s), repeats)
    m1, s1, post = bayesreg_fit(X, y, Xt, 0)
    m2, s2 = blackjax_fit(run, X, y, Xt, 0)
    print(f"end to end (fit + predictive), median of {repeats}: bayesreg {ours:.2f} s "
          f"{np.round(ours_all, 2).tolist()}, blackjax {theirs:.2f} s "
          f"{np.round(theirs_all, 2).tolist()}, ratio {ours / theirs:.2f}")
    print(f"  bayesreg sampler alone {post.diagnostics['sampling_seconds']:.2f} s; "
          f"predictive mean differs by {np.abs(m1 - m2).mean() / s2.mean():.2f} sd (mean), "
          f"sd ratio {np.median(s1 / s2):.2f}")
    sghmc_pair(X, y, Xt, repeats, momentum)
    for n in (1000, 20000):
        Xn, yn = data(n, seed=1)
        t, all_t = timed(lambda s, Xn=Xn, yn=yn: bayesreg_fit(Xn, yn, Xt, s), repeats)
        print(f"N = {n}: bayesreg fit + predict {t:.2f} s {np.round(all_t, 2).tolist()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--momentum", type=float, default=0.9, help="SGHMC's m")
    args = parser.parse_args()
    main(args.repeats, args.momentum)
