"""Timed comparisons against the code a user would otherwise write (``bayesreg bench``).

Each comparison runs both sides in the same process on the same data and reports the median
of ``repeats`` warm runs (after one run that compiles), the compile time separately, and the
ratio bayesreg / baseline. ``make bench`` runs the full set, adding NUTS against NumPyro and
the ensemble against scikit-learn (``benchmarks/``).

* ``map``: MAP on a 1-50-1 MLP vs a hand-written optax Adam + ``lax.scan`` loop (goal ≤ 1.1);
* ``exact``: ``Exact`` vs scikit-learn ``BayesianRidge`` with pinned precisions (goal ≤ 1.5);
* ``ensemble``: ``Ensemble(10)`` vs a hand-written ``vmap`` of the optax loop (goal ≤ 1.2);
* ``dropout_predict``: MC dropout predictive (1000 masks) vs a hand-written ``vmap``;
* ``scaling``: MAP fit and Exact predict time as N grows.

Progress: one "bench: ..." line on stderr as each comparison starts, and the fits' own
reports (``bayesreg._progress``: only for a fit longer than 2 s); ``bayesreg bench --quiet``
or ``BAYESREG_PROGRESS=0`` silences them. The timed bayesreg fits run with the default
``progress_bar=None``, so the ratios include the cost of the progress callbacks.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax

import bayesreg as br
from bayesreg import _progress

# the hand-written loop's N(0, 1) prior, given explicitly: an omitted prior would be learned
# by the evidence, which the baseline does not do
PRIOR = br.Gaussian(1.0)


def _timed(fn, repeats: int) -> dict:
    start = time.perf_counter()
    jax.block_until_ready(fn(0))
    first = time.perf_counter() - start
    times = []
    for r in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(r + 1))
        times.append(time.perf_counter() - start)
    med = statistics.median(times)
    return {"median_seconds": med, "first_seconds": first, "compile_seconds": max(0.0, first - med)}


def _data(n: int, d: int = 1, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, d))
    return X, np.sin(3 * X[:, 0]) + 0.1 * rng.standard_normal(n)


def _mlp_loss(p, X, y):
    f = (jax.nn.relu(X @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"])[:, 0]
    l2 = sum(jnp.sum(v**2) for v in jax.tree_util.tree_leaves(p))
    return 0.5 * jnp.mean((y - f) ** 2) / 0.01 + 0.5 * l2 / X.shape[0]


def _hand_train(steps, hidden=50, lr=0.01, schedule="cosine"):
    """A hand-written training loop (the baseline): init, loss, optax Adam, ``lax.scan``."""
    rate = optax.cosine_decay_schedule(lr, steps) if schedule == "cosine" else lr
    tx = optax.adam(rate)

    def train(key, X, y):
        k1, k2 = jax.random.split(key)
        p = {"w1": jax.random.normal(k1, (X.shape[1], hidden)) * jnp.sqrt(2.0 / X.shape[1]),
             "b1": jnp.zeros(hidden),
             "w2": jax.random.normal(k2, (hidden, 1)) * jnp.sqrt(2.0 / hidden),
             "b2": jnp.zeros(1)}

        def step(carry, _):
            p, s = carry
            val, g = jax.value_and_grad(_mlp_loss)(p, X, y)
            u, s = tx.update(g, s, p)
            return (optax.apply_updates(p, u), s), val

        (p, _), losses = jax.lax.scan(step, (p, tx.init(p)), None, length=steps)
        return p, losses

    return train


def bench_map(n=1000, steps=3000, repeats=5) -> dict:
    X, y = _data(n)
    train = jax.jit(_hand_train(steps))
    method = br.MAP(lr=0.01, steps=steps)
    lik = br.GaussianLikelihood(0.1)
    hand = _timed(lambda s: train(jax.random.key(s), jnp.asarray(X, jnp.float32),
                                  jnp.asarray(y, jnp.float32)), repeats)
    ours = _timed(lambda s: br.fit(br.MLP((50,)), X, y, method=method, likelihood=lik,
                                   prior=PRIOR, seed=s).params, repeats)
    return {"bayesreg": ours, "hand_written": hand,
            "ratio": ours["median_seconds"] / hand["median_seconds"], "goal": 1.1,
            "what": f"MAP, 1-50-1 MLP, N={n}, {steps} Adam updates"}


def bench_ensemble(n=1000, steps=3000, members=10, repeats=5) -> dict:
    X, y = _data(n)
    train = jax.jit(jax.vmap(_hand_train(steps), in_axes=(0, None, None)))
    method = br.Ensemble(members=members, training=br.MAP(lr=0.01, steps=steps))
    lik = br.GaussianLikelihood(0.1)
    hand = _timed(lambda s: train(jax.random.split(jax.random.key(s), members),
                                  jnp.asarray(X, jnp.float32), jnp.asarray(y, jnp.float32)),
                  repeats)
    ours = _timed(lambda s: br.fit(br.MLP((50,)), X, y, method=method, likelihood=lik,
                                   prior=PRIOR, seed=s).params, repeats)
    return {"bayesreg": ours, "hand_written_vmap": hand,
            "ratio": ours["median_seconds"] / hand["median_seconds"], "goal": 1.2,
            "what": f"Ensemble({members}) of 1-50-1 MLPs, N={n}, {steps} Adam updates each"}


def bench_exact(n=100_000, d=50, repeats=3) -> dict:
    from sklearn.linear_model import BayesianRidge  # an optional dependency, 1.3 s

    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d))
    y = X @ rng.standard_normal(d) + 0.5 * rng.standard_normal(n)
    sigma, s, big = 0.5, 1.0, 1e14
    ridge = BayesianRidge(max_iter=1, fit_intercept=False, alpha_1=big / sigma**2, alpha_2=big,
                          lambda_1=big / s**2, lambda_2=big, alpha_init=1 / sigma**2,
                          lambda_init=1 / s**2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = _timed(lambda _: ridge.fit(X, y).coef_, repeats)
        ours = _timed(lambda seed: br.fit(br.Linear(), X, y, method=br.Exact(num_samples=100),
                                          prior=br.Gaussian(s), seed=seed,
                                          likelihood=br.GaussianLikelihood(sigma)).gaussian.mean,
                      repeats)
    return {"bayesreg": ours, "sklearn_bayesian_ridge": base,
            "ratio": ours["median_seconds"] / base["median_seconds"], "goal": 1.5,
            "what": f"Exact vs BayesianRidge (fixed precisions), {n} x {d}"}


def bench_dropout_predict(n=1000, samples=1000, repeats=5) -> dict:
    X, y = _data(200)
    post = br.fit(br.MLP((50,)), X, y, method=br.MCDropout(num_samples=samples,
                                                           training=br.MAP(steps=300)),
                  likelihood=br.GaussianLikelihood(0.1))
    grid = np.linspace(-1, 1, n)[:, None]
    params = jax.tree_util.tree_map(jnp.asarray, post.params)

    @jax.jit
    def hand(p, Xg):
        def one(q):
            return (jax.nn.relu(Xg @ q["weights"][0] + q["biases"][0]) @ q["weights"][1]
                    + q["biases"][1])[:, 0]

        f = jax.vmap(one)(p)
        return f.mean(0), f.std(0)

    base = _timed(lambda _: hand(params, jnp.asarray(grid, jnp.float32)), repeats)
    ours = _timed(lambda _: post.predict(grid).epistemic_std, repeats)
    return {"bayesreg": ours, "hand_written_vmap": base,
            "ratio": ours["median_seconds"] / base["median_seconds"],
            "what": f"MC dropout predictive mean and std, {samples} masks x {n} points"}


def bench_scaling(sizes=(100, 1000, 10_000, 100_000), steps=500) -> dict:
    rows = []
    method = br.MAP(lr=0.01, steps=steps)
    lik = br.GaussianLikelihood(0.1)
    for n in sizes:
        X, y = _data(n)
        fit = _timed(lambda s, X=X, y=y: br.fit(br.MLP((50,)), X, y, method=method,
                                                likelihood=lik, prior=PRIOR, seed=s).params, 2)
        post = br.fit(br.Polynomial(3), X, y, method=br.Exact(num_samples=200), likelihood=lik)
        pred = _timed(lambda _, X=X, post=post: post.predict(X).std, 2)
        rows.append({"n": n, "map_fit_seconds": fit["median_seconds"],
                     "exact_predict_seconds": pred["median_seconds"]})
    return {"rows": rows, "what": f"MAP MLP(50) fit ({steps} updates), Exact predict (200 draws)"}


def say(text: str) -> None:
    """A progress line on stderr, unless silenced (``--quiet``, ``BAYESREG_PROGRESS=0``)."""
    if not _progress.is_silenced():
        print(text, file=sys.stderr, flush=True)


def _needs_sklearn(fn):
    try:
        import sklearn  # noqa: F401
    except ImportError:
        return {"skipped": "scikit-learn is not installed (pip install 'bayesreg[bench]')"}
    return fn()


def run(quick: bool = True, out: str | None = None) -> dict:
    """The quick subset (``bayesreg bench``) or everything in this module."""
    results = {"device": str(jax.devices()[0]), "machine": f"{platform.machine()}, "
               f"{os.cpu_count()} cores", "quick": quick}
    if quick:
        todo = {"map": lambda: bench_map(n=500, steps=1000, repeats=3),
                "ensemble": lambda: bench_ensemble(n=500, steps=1000, repeats=3),
                "exact": lambda: _needs_sklearn(lambda: bench_exact(n=20_000, d=50, repeats=3)),
                "dropout_predict": lambda: bench_dropout_predict(n=1000, samples=500, repeats=3)}
    else:
        todo = {"map": bench_map, "ensemble": bench_ensemble,
                "exact": lambda: _needs_sklearn(bench_exact),
                "dropout_predict": bench_dropout_predict, "scaling": bench_scaling}
    start = time.perf_counter()
    for k, (name, fn) in enumerate(todo.items(), start=1):
        say(f"bench: {name} ({k}/{len(todo)}), {time.perf_counter() - start:.0f} s so far ...")
        results[name] = fn()
    text = to_markdown(results)
    print(text)
    if out:
        os.makedirs(out, exist_ok=True)
        name = "quick" if quick else "full"
        with open(os.path.join(out, f"bench_{name}.json"), "w") as fh:
            json.dump(results, fh, indent=2)
        with open(os.path.join(out, f"bench_{name}.md"), "w") as fh:
            fh.write(text + "\n")
    return results


def to_markdown(results: dict) -> str:
    lines = [f"Device: {results['device']} ({results['machine']}).", "",
             "| comparison | bayesreg median s | baseline median s | ratio | goal | "
             "bayesreg compile s |", "|---|---|---|---|---|---|"]
    for r in results.values():
        if not isinstance(r, dict) or "ratio" not in r:
            continue
        base = next(v for k, v in r.items() if k not in ("bayesreg", "ratio", "goal", "what")
                    and isinstance(v, dict))
        goal = f"≤ {r['goal']}" if "goal" in r else "—"
        lines.append(f"| {r['what']} | {r['bayesreg']['median_seconds']:.3f} | "
                     f"{base['median_seconds']:.3f} | {r['ratio']:.2f} | {goal} | "
                     f"{r['bayesreg']['compile_seconds']:.2f} |")
    if "scaling" in results:
        lines += ["", f"Scaling — {results['scaling']['what']}:", "",
                  "| N | MAP fit s | Exact predict s |", "|---|---|---|"]
        lines += [f"| {r['n']} | {r['map_fit_seconds']:.3f} | {r['exact_predict_seconds']:.3f} |"
                  for r in results["scaling"]["rows"]]
    return "\n".join(lines)
