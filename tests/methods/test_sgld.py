"""SGLD / cSG-MCMC / SGHMC (bayesreg.methods.sgld) against closed forms and NUTS."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayesreg as br
from bayesreg.latent import init_latent, latent_log_joint
from bayesreg.priors import as_prior_spec
from bayesreg.problem import Problem
from bayesreg.training import langevin_chains as langevin
from bayesreg.training.loop import train_members

SIGMA = 0.5
PRIOR = br.Gaussian(1.0)


@pytest.fixture(scope="module")
def linear():
    X, y, _ = br.datasets.linear_example(n=100, d=3, noise=SIGMA, seed=0)
    exact = br.fit(br.Linear(), X, y, method=br.Exact(), prior=PRIOR,
                   likelihood=br.GaussianLikelihood(SIGMA))
    return X, y, exact


def coefficients(post):
    """Draws of the flat coefficients [w, b], as Exact orders them: (S, D + 1)."""
    w, b = post.params["weights"][0], post.params["biases"][0]
    return np.concatenate([w.reshape(post.num_draws, -1), b.reshape(post.num_draws, -1)], 1)


@pytest.mark.parametrize("method", [
    br.SGLD(step_size=1e-2),
    br.SGLD(step_size=1e-2, batch_size=20),
    br.SGLD(cyclical=True, step_size=0.1, num_samples=2000),
    br.SGLD(momentum=0.9),
], ids=["sgld", "minibatch", "cyclical", "sghmc"])
def test_draws_match_the_conjugate_posterior(linear, method):
    X, y, exact = linear
    post = br.fit(br.Linear(), X, y, method=method, prior=PRIOR,
                  likelihood=br.GaussianLikelihood(SIGMA))
    m, sd = exact.approximation.mean, np.sqrt(np.diag(exact.approximation.cov))
    d = coefficients(post)
    # Tolerances (issue 12): mean within sd/4, sd within 30%. With an effective sample size
    # E the Monte Carlo sd of the mean is sd/√E and of the sd about sd/√(2E); E ≥ 150
    # (asserted) puts sd/4 at > 3 MC sds (0.08 sd) and 30% at > 5 MC sds (6%). The
    # step-size bias is far inside: per data point h ≈ ‖x‖²/σ² ≈ 4 here, so the variance is
    # inflated by 1/(1 − εh/(2(1 + m))) ≤ 1.02 (sd ≤ 1%; cyclical: sampling steps
    # ≤ ε/2 = 0.05, ≤ 1.13, sd ≤ 6%),
    # and a batch of 20 adds about εhN/(2|B|) ≈ 10% variance (5% sd) at ε = 1e-2.
    assert post.diagnostics["ess_bulk"] >= 150
    np.testing.assert_array_less(np.abs(d.mean(0) - m), sd / 4)
    np.testing.assert_allclose(d.std(0), sd, rtol=0.3)


def test_stationary_covariance_is_the_predicted_step_size_bias(linear):
    """Full batch, a fixed noise: the chain is linear-Gaussian and its stationary covariance
    is exactly (H − ηH²/(2(1 + m)))⁻¹ (H: posterior precision, η = ε/N), not H⁻¹."""
    X, y, exact = linear
    n, eps = len(y), 0.15
    cov = exact.approximation.cov
    H = np.linalg.inv(cov)
    eta = eps / n
    for m in (0.0, 0.5):
        predicted = np.linalg.inv(H - eta * H @ H / (2 * (1 + m)))
        post = br.fit(br.Linear(), X, y, method=br.SGLD(step_size=eps, momentum=m,
                                                        num_samples=2000, num_chains=2),
                      prior=PRIOR, likelihood=br.GaussianLikelihood(SIGMA))
        var = coefficients(post).var(0)
        # the largest inflation here is ~1.3× (εh ≈ 0.15 · 4.5 per point); the variance
        # estimate from E ≥ 1000 effective draws has relative sd √(2/E) ≤ 4.5%: 12% is
        # > 2.5 MC sds yet far below the 30% that separates the two answers
        assert post.diagnostics["ess_bulk"] >= 1000
        np.testing.assert_allclose(var, np.diag(predicted), rtol=0.12)
        assert np.max(var / np.diag(cov)) > 1.2  # the bias is really there at this step


def test_gradient_is_the_latent_log_joint_of_nuts_and_vi():
    X, y = br.datasets.gap_example(n=12)
    lik = br.GaussianLikelihood().resolved(y)  # learned noise: log σ in the latent state
    prior = as_prior_spec(br.Gaussian(1.0))
    problem = Problem(br.MLP((4,)), lik, prior, X, y, jax.random.key(0))
    z = init_latent(problem, jax.random.key(1), 0.5)
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    full = langevin.minibatch_log_joint(problem.model, lik, prior, z, Xj, yj)
    assert float(full) == pytest.approx(float(latent_log_joint(problem.model, lik, prior, z,
                                                               Xj, yj)), rel=1e-6)
    # N/|B| times a batch's likelihood: unbiased for the full one; for a batch that is the
    # whole data shuffled twice over (scale 1/2), the same number
    twice = jnp.concatenate([Xj, Xj[::-1]]), jnp.concatenate([yj, yj[::-1]])
    half = langevin.minibatch_log_joint(problem.model, lik, prior, z, *twice, scale=0.5)
    assert float(half) == pytest.approx(float(full), rel=1e-5)


@pytest.mark.slow
def test_thinning_keeps_every_kth_state_of_one_trajectory():
    # step t's randomness is fold_in(key, t): the trajectory does not depend on thinning
    X, y = br.datasets.gap_example(n=12)
    kw = dict(prior=PRIOR, likelihood=br.GaussianLikelihood(0.1), seed=3)
    every = br.fit(br.MLP((4,)), X, y, method=br.SGLD(num_samples=20, thinning=1,
                                                      num_warmup=0, num_chains=1), **kw)
    fifth = br.fit(br.MLP((4,)), X, y, method=br.SGLD(num_samples=4, thinning=5,
                                                      num_warmup=0, num_chains=1), **kw)
    for a, b in zip(jax.tree_util.tree_leaves(every.params),
                    jax.tree_util.tree_leaves(fifth.params), strict=True):
        np.testing.assert_allclose(b, a[4::5], rtol=1e-6, atol=1e-7)


def test_cyclical_schedule_explores_without_noise_then_samples():
    plan = br.SGLD(num_samples=40, cyclical=True, num_cycles=4, thinning=2,
                   exploration=0.5).plan(100)
    assert plan.cycles == 4 and plan.draws == 10 and plan.explore == 20
    kept = plan.kept_steps()
    assert kept.tolist()[:3] == [21, 23, 25] and kept[10] == plan.cycle_length + 21
    eps = plan.step_size(np.arange(plan.steps, dtype=float), 1.0)
    assert eps[0] == 1.0 and eps[plan.cycle_length] == 1.0  # each cycle restarts at ε
    np.testing.assert_array_less(plan.kept_step_sizes(1.0), 0.5 + 1e-9)  # sampled in the tail


@pytest.mark.slow
def test_epistemic_std_grows_away_from_the_data():
    X, y = br.datasets.gap_example(n=40, noise=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # R-hat of a network's weights
        post = br.fit(br.MLP((16,)), X, y, method=br.SGLD(num_samples=200),
                      prior=PRIOR, likelihood=br.GaussianLikelihood(0.1), seed=0)
    inside = post.predict(X).epistemic_std.mean()
    far = post.predict(np.array([-2.5, 2.5])).epistemic_std
    assert far.min() > 1.5 * inside


@pytest.mark.slow
def test_predict_save_load_arviz_compare_and_no_recompile(linear, tmp_path):
    import arviz as az

    X, y, _ = linear
    method = br.SGLD(num_samples=300, batch_size=25, step_size=2e-2, log_joint=True)
    kw = dict(prior=PRIOR, likelihood=br.GaussianLikelihood())  # σ sampled too
    post = br.fit(br.Linear(), X, y, method=method, **kw)
    size = train_members._cache_size()  # the chains are the loop's members
    again = br.fit(br.Linear(), X, y + 0.1, method=method, seed=1, **kw)
    assert train_members._cache_size() == size  # same shapes: no new program
    assert not np.allclose(again.params["biases"][0], post.params["biases"][0])

    pred = post.predict(X[:7])
    assert pred.draws.shape == (600, 7) and post.theta["log_noise"].shape == (600,)
    assert 0.3 < np.median(post.noise_std()) < 0.8  # true σ = 0.5
    post.save(tmp_path / "sgld")
    loaded = br.load(tmp_path / "sgld")
    assert loaded.method == "SGLD" and loaded.num_chains == 2
    np.testing.assert_array_equal(loaded.predict(X[:7]).draws, pred.draws)
    np.testing.assert_array_equal(loaded.predict(X[:7]).std, pred.std)

    idata = post.to_arviz()
    assert idata.posterior.sizes["chain"] == 2 and idata.posterior.sizes["draw"] == 300
    assert float(az.rhat(idata)["noise"]) < 1.1  # ArviZ sees the 2 chains
    assert "lp" in idata.sample_stats and "step_size" in idata.sample_stats

    res = br.compare(br.Linear(), X, y, methods=[method, br.Exact()], **kw)
    assert [r["method"] for r in res.rows] == ["SGLD", "Exact"]


def test_divergence_is_an_error_that_names_the_step_size(linear):
    X, y, _ = linear
    with pytest.raises(ValueError, match="step_size"):
        br.fit(br.Linear(), X, y, method=br.SGLD(step_size=5.0, num_samples=10, init="model"),
               prior=PRIOR, likelihood=br.GaussianLikelihood(SIGMA))


@pytest.mark.parametrize("kwargs, match", [
    (dict(momentum=1.0), "momentum"), (dict(step_size=0.0), "step_size"),
    (dict(schedule="cosine"), "schedule"), (dict(cyclical=True, num_samples=10), "multiple"),
    (dict(exploration=1.0), "exploration"), (dict(thinning=0), "thinning"),
])
def test_bad_settings_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        br.SGLD(**kwargs)


@pytest.mark.slow  # NUTS on a network, and SGLD long enough to compare with it
def test_predictive_matches_nuts_on_a_small_network():
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, 20)
    y = np.sin(X) + 0.2 * rng.standard_normal(20)
    grid = np.linspace(-2.5, 2.5, 11)
    kw = dict(prior=br.Gaussian(1.0), likelihood=br.GaussianLikelihood(0.2))
    model = br.MLP((5,), activation="tanh")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # R-hat of the weights (symmetries)
        nuts = br.fit(model, X, y, method=br.NUTS(num_warmup=500, num_samples=1000,
                                                  progress_bar=False), **kw).predict(grid)
        post = br.fit(model, X, y, method=br.SGLD(num_samples=2000), **kw).predict(grid)
    # Tolerance: both are Monte Carlo estimates of the same predictive. Each mean has MC
    # error epistemic_sd/√ESS; with ESS ≥ 100 for both (2000-4000 draws) the difference has
    # sd ≤ 0.14 epistemic sd ≤ 0.14 std, so 0.25 std is > 1.7 sd of it at the worst point
    # of 11 (measured 0.06). The step-size bias is O(εh): ε = 5e-3 and h ≲ 1/σ² = 25 per
    # point inflate a variance by ≤ 1/(1 − 0.06) along the best-determined direction. The
    # total std is dominated by σ = 0.2, so its ratio is checked at 15% (measured 0-5%,
    # 11% at the grid's far end), and the epistemic part, the hard one, at 35%.
    np.testing.assert_array_less(np.abs(post.mean - nuts.mean), 0.25 * nuts.std)
    np.testing.assert_allclose(post.std, nuts.std, rtol=0.15)
    np.testing.assert_allclose(post.epistemic_std, nuts.epistemic_std, rtol=0.35)


SAME_SEED = """
import hashlib, sys, warnings
import jax, numpy as np
if sys.argv[1] == "other":  # a process with another history: 64-bit mode on, a fit before
    jax.config.update("jax_enable_x64", True)
import bayesreg as br
warnings.simplefilter("ignore", UserWarning)
X, y = br.datasets.gap_example(n=40)
method = br.SGLD(momentum=0.9, batch_size=16, num_samples=40, num_warmup=40, num_chains=2)
if sys.argv[1] == "other":  # other shapes first: another program in the jit cache
    br.fit(br.MLP((8,)), X[:30], y[:30], method=method, seed=1)
post = br.fit(br.MLP((8,)), X, y, method=method, seed=0)
leaves = jax.tree_util.tree_leaves((post.params, post.theta))
print(hashlib.sha256(b"".join(np.asarray(a).tobytes() for a in leaves)).hexdigest())
"""


@pytest.mark.slow  # two fresh processes: ~20 s
def test_the_same_seed_gives_the_same_draws_in_every_process():
    # issue 21: SGHMC at a step near the edge of stability diverged in one process and ran in
    # another; a chaotic trajectory turns any difference of rounding into another outcome, so
    # the draws must be the same bits whatever the process ran before (one device each)
    import os
    import subprocess
    import sys

    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)  # the device count changes the batch sums' order (one device)
    digests = []
    for history in ("fresh", "other"):
        out = subprocess.run([sys.executable, "-c", SAME_SEED, history], env=env,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        digests.append(out.stdout.strip().splitlines()[-1])
    assert digests[0] == digests[1]


def test_a_diverged_chain_runs_again_at_a_tenth_of_the_step():
    """Full batch on a linear model with σ = 0.5 (h ≈ 1/σ² = 4 per row on standardised
    inputs): the chain is stable for εh < 2 (module docstring), so ε = 2 diverges and ε = 0.2
    does not; ε = 50 diverges at 5 too and is refused, naming both. (From the model's
    initialisation: a chain started at the mode takes the stable step there instead.)"""
    X, y, _ = br.datasets.linear_example(n=50, d=2, noise=0.5, seed=0)
    lik, prior = br.GaussianLikelihood(0.5), br.Gaussian(1.0)
    with pytest.warns(UserWarning, match=r"diverged .* at step_size=2; ran again at 0\.2"):
        post = br.fit(br.Linear(), X, y, method=br.SGLD(num_samples=50, num_warmup=50,
                                                         step_size=2.0, num_chains=1,
                                                         init="model"),
                      likelihood=lik, prior=prior)
    assert post.diagnostics["step_size_used"] == pytest.approx(0.2)
    assert np.all(np.isfinite(post.params["weights"][0]))
    with pytest.raises(ValueError, match=r"diverged .* at step_size=50.0 and at 5"):
        br.fit(br.Linear(), X, y, method=br.SGLD(num_samples=50, num_warmup=50,
                                                  step_size=50.0, num_chains=1,
                                                  init="model"),
               likelihood=lik, prior=prior)


def test_a_chain_started_at_the_mode_takes_the_stable_step_there():
    """ε = 2 on a linear model with σ = 0.5 is past the stability limit (it diverges from the
    model's initialisation, above). Started at the mode, the step is capped at ε h = 1, h the
    largest eigenvalue of the per-row Hessian H/N = (AᵀA/σ² + I/s²)/N, computed here in closed
    form; the chain then samples the Gaussian that full-batch SGLD at that step has for its
    stationary law (module docstring): eigenvalue by eigenvalue, variance 1/(λ(1 − ηλ/2)),
    η = ε/N — twice the posterior's along the stiffest direction (the weights' sd 1.25 times
    the posterior's here). Mean within 5 Monte Carlo errors (ESS ≥ 1 000 of 2 000 draws:
    sd/√1000 each), sd within 5 of its relative Monte Carlo error 1/√(2·ESS) = 0.022
    (measured: ESS 1 800, sd within 1%)."""
    X, y, _ = br.datasets.linear_example(n=50, d=2, noise=0.5, seed=0)
    lik, prior = br.GaussianLikelihood(0.5), br.Gaussian(1.0)
    post = br.fit(br.Linear(), X, y, method=br.SGLD(num_samples=2000, num_warmup=50,
                                                     step_size=2.0, num_chains=1),
                  likelihood=lik, prior=prior, center=False)
    A = np.column_stack([X, np.ones(50)])
    lam, V = np.linalg.eigh(A.T @ A / 0.25 + np.eye(3))
    assert post.diagnostics["curvature"] == pytest.approx(lam.max() / 50, rel=1e-3)
    eps = post.diagnostics["step_size_used"]
    assert eps == pytest.approx(50 / lam.max(), rel=1e-3)
    stationary = (V / (lam * (1 - eps / 50 * lam / 2))) @ V.T
    mean = np.linalg.solve(A.T @ A / 0.25 + np.eye(3), A.T @ y / 0.25)
    w = post.params["weights"][0][:, :, 0]
    sd = np.sqrt(np.diag(stationary))[:2]
    assert post.diagnostics["ess_bulk"] >= 1000
    np.testing.assert_allclose(w.mean(0), mean[:2], atol=5 * sd.min() / np.sqrt(1000))
    np.testing.assert_allclose(w.std(0), sd, rtol=0.11)


def test_a_prior_too_narrow_for_the_step_gets_its_own_smaller_step():
    """A bias prior N(0, (1e-4)²) has precision 1e8: at the default ε = 5e-3 on 50 rows
    η·α = 1e4, far past the stable 2, and the chain diverged (also at ε/10). The prior's own
    curvature now preconditions that coordinate (M = 0.5/(η α)) and leaves the weights' step
    as it was (M = 1 exactly): the chain runs, the bias stays within a few prior sds of 0,
    and the weights' mean is the exact posterior's within one posterior sd: about five Monte
    Carlo errors of a mean over 400 draws whose effective size is at least 25 (sd/5 each)."""
    X, y, _ = br.datasets.linear_example(n=50, d=2, noise=0.5, seed=0)
    lik, prior = br.GaussianLikelihood(0.5), {"weights": br.Gaussian(1.0),
                                                "biases": br.Gaussian(1e-4)}
    post = br.fit(br.Linear(), X, y, method=br.SGLD(num_samples=400, num_chains=1),
                  likelihood=lik, prior=prior)
    assert post.diagnostics["preconditioned"] == 1  # the bias only
    assert post.diagnostics["step_size_used"] == pytest.approx(5e-3)
    bias = post.params["biases"][0][:, 0]
    assert np.all(np.abs(bias) < 6e-4)
    exact = br.fit(br.Linear(), X, y, method=br.Exact(), likelihood=lik, prior=prior)
    w = post.params["weights"][0][:, :, 0]
    sd = np.sqrt(np.diag(exact.approximation.cov))[:2]
    assert post.diagnostics["ess_bulk"] >= 25
    np.testing.assert_allclose(w.mean(0), exact.approximation.mean[:2], atol=sd.min())


def test_a_chain_that_runs_away_with_finite_numbers_is_a_divergence():
    """A constant step 0.5% past the stability limit 2/h (h: the largest eigenvalue of the
    per-point curvature) multiplies the distance to the mode by about 1.01 a step: 4 400
    steps end near 1e9 with every number finite. Before, SGLD returned those draws with an
    R-hat warning only (coefficient 1.2e9 against 1.0); now it is a divergence, run again at a
    tenth of the step."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 1))
    y = X[:, 0] + 0.1 * rng.standard_normal(100)
    A = np.column_stack([X, np.ones(100)])
    h = np.linalg.eigvalsh(A.T @ A / 0.01 / 100 + np.eye(2) / 100).max()
    method = br.SGLD(step_size=2.01 / h, batch_size=None, num_samples=200, num_warmup=200,
                     schedule="constant", init="model")
    with pytest.warns(UserWarning, match="runaway"):
        post = br.fit(br.Linear(), X, y, method=method, likelihood=br.GaussianLikelihood(0.1),
                      prior=br.Gaussian(1.0), center=False)
    assert post.diagnostics["step_size_used"] == pytest.approx(0.201 / h)
    assert np.max(np.abs(post.params["weights"][0])) < 2.0  # the slope is 1.0


@pytest.mark.slow  # the prior learned by MAP, then SGLD and the Laplace approximation: ~25 s
def test_sgld_on_a_stiff_network_stays_near_the_posterior():
    """diabetes, MLP(50), under the prior `bayesreg compare` learns: the curvature at the mode
    is ~1 800 per row, so ε = 5e-3 (8.6× it, past the limit 2) left the mode for flatter
    regions (σ 60.3, 1.13 × the Laplace approximation's 53.3) and from the model's
    initialisation the warm-up never reached the posterior (σ 55.6, 1.043 ×). Started at the
    mode with the capped step: σ 52.5 (0.985 ×; NUTS 51.2). The bound 1.03 sits between;
    the median σ's Monte Carlo error is ~0.5% (posterior sd 1.8 over an ESS above 50)."""
    from sklearn.datasets import load_diabetes

    from bayesreg.compare import holdout
    from bayesreg.selection import learn_prior

    X, y = load_diabetes(return_X_y=True)
    _, train = holdout(len(y), 0.2, 0)
    X = (X[train] - X[train].mean(0)) / X[train].std(0)
    z = (y[train] - y[train].mean()) / y[train].std()
    prior, _ = learn_prior(br.MLP((50,)), X, z)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # R-hat of two chains in two modes
        post = br.fit(br.MLP((50,)), X, z, method=br.SGLD(), prior=prior)
    laplace = br.fit(br.MLP((50,)), X, z, method=br.LaplaceApprox(), prior=prior)
    assert post.diagnostics["curvature"] > 1000
    assert post.diagnostics["step_size_used"] < 1e-3
    ratio = np.median(np.asarray(post.noise_std())) / float(np.median(laplace.noise_std()))
    assert ratio < 1.03, ratio


def test_a_new_step_size_or_momentum_compiles_nothing(linear):
    """The chains' step size, momentum and N are values in the transform's state
    (langevin_chains.ChainState), not settings of the compiled loop: fits that differ only
    in them share the program (a momentum held by the method compiled one per value)."""
    X, y, _ = linear
    kw = dict(prior=PRIOR, likelihood=br.GaussianLikelihood(0.5))
    br.fit(br.Linear(), X, y, method=br.SGLD(num_samples=20, num_warmup=20, batch_size=25,
                                              momentum=0.5), **kw)
    size = train_members._cache_size()
    for step_size, momentum in ((5e-3, 0.6), (1e-2, 0.0)):
        br.fit(br.Linear(), X, y, seed=1, method=br.SGLD(
            num_samples=20, num_warmup=20, batch_size=25, step_size=step_size,
            momentum=momentum), **kw)
    assert train_members._cache_size() == size
