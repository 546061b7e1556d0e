"""How far the default training ends from the mode the evidence assumes, and what the
Gauss–Newton steps at the end of a fit recover (bayesreg.training.convergence).

For each problem, library defaults (prior omitted, σ learned): a linear model's Newton
decrement λ² where Adam left it and after the default Newton step; for networks, which take
no steps by default, the nats each of 5 forced Gauss–Newton steps (with a line search)
gained. For the network, the true mode under the
learned hyperparameters is found by saddle-free Newton steps in float64 and the gap
measured in nats and in posterior standard deviations of the true Hessian (the GGN's λ² is
no guide there).

    python benchmarks/convergence.py
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from sklearn.datasets import load_diabetes
from uci import load

import bayesreg as br
from bayesreg.priors import log_prior
from bayesreg.training import convergence


def fit(model, X, y, forced: int | None = None, zero_step: bool = False, **kw):
    """br.fit with the library's steps (``forced`` None), or ``forced`` Gauss–Newton steps
    taken whatever the model (a network takes none by default); ``zero_step``: the step of
    a linear model has length 0, so its decrement is measured where Adam left it."""
    jax.clear_caches()  # the steps are planned when the loop is traced
    saved = convergence.polish_steps, convergence.STEP_FRACTIONS
    if forced is not None:
        convergence.polish_steps = lambda objective, watch: 0 if watch else forced
    if zero_step:
        convergence.STEP_FRACTIONS = np.zeros(1)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            post = br.fit(model, X, y, **kw)
    finally:
        convergence.polish_steps, convergence.STEP_FRACTIONS = saved
    warned = any("above the mode" in str(w.message) for w in caught)
    return post, warned


def true_mode_gap(post, X, y):
    """(nats the float64 BFGS mode lies below the fit, distance in true-Hessian sds)."""
    with jax.enable_x64(True):
        d = post.diagnostics
        sigma = float(d["noise_std"])
        prior = {g: br.Gaussian([float(v) for v in d["prior_scales"][g]])
                 for g in ("weights", "biases")}
        params = jax.tree_util.tree_map(lambda a: jnp.asarray(a[0], jnp.float64), post.params)
        flat, unravel = ravel_pytree(params)
        Xj, yj = jnp.asarray(X, jnp.float64), jnp.asarray((y - post.offset) / post.scale)

        def loss(v):
            p = unravel(v)
            return 0.5 * jnp.sum((yj - post.model.apply(p, Xj)[:, 0]) ** 2) / sigma**2 \
                - log_prior(prior, p)

        value, grad, hess = jax.jit(loss), jax.jit(jax.grad(loss)), jax.jit(jax.hessian(loss))
        # saddle-free Newton (the exact Hessian's eigenvalues by their magnitude) with a
        # backtracking line search: scipy's BFGS and trust-exact stop at once here (a clipped
        # bias of prior precision 1e8 makes the Hessian's condition number ~1e10)
        v, best = flat, float(value(flat))
        for _ in range(500):
            lam, Q = jnp.linalg.eigh(hess(v))
            lam = jnp.maximum(jnp.abs(lam), 1e-10 * jnp.max(jnp.abs(lam)))
            step = Q @ ((Q.T @ grad(v)) / lam)
            for t in 0.5 ** np.arange(30):
                trial = float(value(v - t * step))
                if trial < best:
                    v, best = v - t * step, trial
                    break
            else:
                break
        res = type("Result", (), {"x": v, "fun": best})
        delta = flat - jnp.asarray(res.x)
        H = jax.hessian(loss)(jnp.asarray(res.x))
        return float(loss(flat)) - res.fun, float(jnp.sqrt(jnp.abs(delta @ H @ delta)))


def row(name, post, warned, extra="", forced=False):
    d = post.diagnostics
    lam = np.atleast_1d(d.get("newton_decrement", np.nan))
    gains = np.round(np.atleast_2d(d.get("polish_gains", np.full(1, np.nan)))[0], 2)
    sigma = np.atleast_1d(d["noise_std"])
    warns = "—" if forced else "yes" if warned else "no"
    print(f"| {name} | {np.max(lam):.3g} | {', '.join(f'{g:g}' for g in gains)} | "
          f"{', '.join(f'{s:.3f}' for s in sigma)} | {warns} |{extra}", flush=True)


def main():
    print("| fit | λ² at the end (GGN) | nats each Gauss–Newton step gained | σ | warns | "
          "notes |")
    print("|---|---|---|---|---|---|")
    X, y = load_diabetes(return_X_y=True)
    post, warned = fit(br.Linear(), X, y, zero_step=True)
    row("diabetes, `Linear()`, Adam's weights", post, warned, " |")
    post, warned = fit(br.Linear(), X, y)
    row("diabetes, `Linear()`, after the Newton step (default)", post, warned, " |")
    exact = br.fit(br.Linear(), X, y, method=br.Exact(), standardize=True)
    post, _ = fit(br.Linear(), X, y, standardize=True)
    gap = np.max(np.abs(exact.predict(X).mean - post.predict(X).mean)) / np.std(y)
    scales = [float(post.diagnostics["prior_scales"]["weights"][0]),
              float(np.ravel(exact.prior["weights"].scale)[0])]
    rng = np.random.default_rng(0)
    Xs = rng.uniform(-1, 1, (200, 1))
    ys = np.sin(3 * Xs[:, 0]) + 0.3 * rng.standard_normal(200)
    # a step of length 0: λ² measured where Adam left the weights, which stay there
    post, warned = fit(br.MLP((50,)), Xs, ys, forced=1, zero_step=True)
    nats, sds = true_mode_gap(post, Xs, ys)
    row("200 rows of sin(3x), `MLP((50,))`, Adam's weights (the default)", post, warned,
        f" true mode {nats:.3g} nats lower, {sds:.2f} sd away |", forced=True)
    post, warned = fit(br.MLP((50,)), Xs, ys, forced=5)
    row("the same, 5 steps forced", post, warned, " |", forced=True)
    post, warned = fit(br.MLP((50,)), Xs, ys, forced=5, method=br.MAP(steps=30))
    row("the same, `MAP(steps=30)`, 5 steps forced", post, warned, " |", forced=True)
    for name in ("boston", "concrete"):
        Xb, yb = load(name)
        Xb = (Xb - Xb.mean(0)) / Xb.std(0)
        for steps in (3000, 10_000):
            post, warned = fit(br.MLP((50,)), Xb, yb, forced=5, standardize=True,
                               method=br.MAP(steps=steps))
            row(f"{name}, `MLP((50,))`, `MAP(steps={steps})`, 5 steps forced", post, warned,
                " |", forced=True)
    print(f"\nStandardised diabetes, `Linear()`: MAP's weight scale {scales[0]:.4g}, Exact's "
          f"{scales[1]:.4g}; largest difference of the predictive means {gap:.2e} std(y).")


if __name__ == "__main__":
    main()
