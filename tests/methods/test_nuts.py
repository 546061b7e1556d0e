import os
import warnings

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.infer import MCMC
from numpyro.infer import NUTS as NumPyroNUTS

import bayesreg as br

QUIET = {"progress_bar": False}


@pytest.mark.slow  # a NUTS run of several seconds
def test_hierarchical_scale_recovers_a_known_scale():
    rng = np.random.default_rng(0)
    n, d, true_scale = 200, 30, 0.5
    w = true_scale * rng.standard_normal(d)
    X = rng.standard_normal((n, d))
    y = X @ w + 0.2 + 0.3 * rng.standard_normal(n)
    prior = {"weights": br.Gaussian(scale=br.HalfNormal(1.0)), "biases": br.Gaussian(1.0)}
    post = br.fit(br.Linear(), X, y, method=br.NUTS(num_warmup=400, num_samples=500, **QUIET),
                  prior=prior, likelihood=br.GaussianLikelihood(0.3))
    s = post.hyper["weights_scale"]
    realised = np.sqrt(np.mean(w**2))  # the scale these 30 weights actually have
    # posterior sd of s is about s/√(2d) ≈ 0.065 here; 3 posterior sds
    assert abs(s.mean() - realised) < 3 * s.std()
    assert 0.3 < s.mean() < 0.7
    assert "weights_scale" in post.to_arviz().posterior


@pytest.mark.slow
def test_hierarchical_scale_needs_a_sampler():
    X, y = br.datasets.book_example()
    prior = br.Gaussian(scale=br.HalfNormal(1.0))
    for method in (br.MAP(), br.Exact(), br.LaplaceApprox()):
        with pytest.raises(ValueError, match=r"NUTS or br\.VI"):
            br.fit(br.Linear(), X, y, method=method, prior=prior)
    post = br.fit(br.Linear(), X, y, method=br.VI(steps=300, **QUIET), prior=prior)
    assert post.hyper["weights_scale"].shape == (1000,)


@pytest.mark.slow  # a NUTS run of several seconds
def test_hard_posterior_warns_with_the_fix():
    X, y = br.datasets.gap_example(n=20)
    with pytest.warns(UserWarning) as record:
        post = br.fit(br.MLP((10,)), X, y, likelihood=br.GaussianLikelihood(0.1),
                      method=br.NUTS(num_warmup=20, num_samples=50, target_accept=0.05, **QUIET))
    messages = " ".join(str(r.message) for r in record)
    assert "divergent" in messages and "target_accept" in messages
    assert "R-hat" in messages and "run longer" in messages
    assert post.diagnostics["divergences"] > 0
    assert post.diagnostics["diverging"].shape == (100,)


@pytest.mark.slow
def test_learned_noise_is_sampled_with_its_prior():
    X, y = br.datasets.gap_example(n=40, noise=0.1)
    post = br.fit(br.Polynomial(5), X, y, method=br.NUTS(num_warmup=300, num_samples=300,
                                                          **QUIET))
    sigma = post.noise_std()
    assert sigma.std() > 0  # a distribution, not a point
    assert 0.06 < np.median(sigma) < 0.16
    assert post.likelihood.noise_prior == pytest.approx(np.std(y))


def test_settings_are_checked():
    with pytest.raises(ValueError, match="chain_method"):
        br.NUTS(chain_method="threads")
    with pytest.raises(ValueError, match="target_accept"):
        br.NUTS(target_accept=1.0)
    with pytest.raises(ValueError, match="num_samples"):
        br.NUTS(num_samples=0)


@pytest.mark.filterwarnings("ignore:NUTS. max R-hat")
@pytest.mark.slow  # a NUTS run of several seconds
def test_vectorized_chains_give_the_same_kind_of_answer():
    X, y = br.datasets.book_example()
    kw = {"prior": br.Gaussian(3.0), "likelihood": br.GaussianLikelihood(0.3)}
    post = br.fit(br.Linear(), X, y, method=br.NUTS(num_warmup=300, num_samples=300,
                                                     num_chains=3, chain_method="vectorized",
                                                     **QUIET), **kw)
    exact = br.fit(br.Linear(), X, y, method=br.Exact(), **kw)
    assert post.num_draws == 900 and post.num_chains == 3
    flat = np.column_stack([post.params["weights"][0][:, :, 0], post.params["biases"][0]])
    sd = np.sqrt(np.diag(exact.gaussian.cov))
    assert np.all(np.abs(flat.mean(0) - exact.gaussian.mean) < 0.25 * sd)


@pytest.mark.slow
def test_mlp_posterior_agrees_with_numpyro_written_directly():
    """The same 1-5-1 tanh network, prior N(0, 1), noise 0.1, sampled by br.NUTS and by
    NumPyro's NUTS on a hand-written NumPyro model with another seed: predictive means and
    stds agree within Monte Carlo error (standard errors from each run's ESS)."""
    X, y = br.datasets.gap_example(n=24, noise=0.1, seed=3)
    grid = np.linspace(-1.2, 1.2, 9)
    settings = {"num_warmup": 1000, "num_samples": 1000, "num_chains": 4,
                "chain_method": "sequential"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # R-hat of weights: label switching
        post = br.fit(br.MLP((5,), activation="tanh"), X, y, prior=br.Gaussian(1.0),
                      likelihood=br.GaussianLikelihood(0.1), seed=0,
                      method=br.NUTS(**settings, **QUIET))
    ours = post.predict(grid).draws

    def model(X, y=None):
        w1 = numpyro.sample("w1", dist.Normal(0, 1).expand([1, 5]).to_event(2))
        b1 = numpyro.sample("b1", dist.Normal(0, 1).expand([5]).to_event(1))
        w2 = numpyro.sample("w2", dist.Normal(0, 1).expand([5, 1]).to_event(2))
        b2 = numpyro.sample("b2", dist.Normal(0, 1).expand([1]).to_event(1))
        f = (jnp.tanh(X @ w1 + b1) @ w2 + b2)[:, 0]
        numpyro.deterministic("f", f)
        numpyro.sample("y", dist.Normal(f, 0.1), obs=y)

    mcmc = MCMC(NumPyroNUTS(model), progress_bar=False, **settings)
    mcmc.run(jax.random.key(123), jnp.asarray(X, jnp.float32), jnp.asarray(y, jnp.float32))
    s = mcmc.get_samples()
    ref = np.asarray(jnp.tanh(grid[None, :, None] @ s["w1"] + s["b1"][:, None, :])
                     @ s["w2"] + s["b2"][:, None, :])[:, :, 0]

    def mean_se(draws):
        chains = draws.reshape(4, -1, draws.shape[1])
        ess = np.array([az.ess(chains[:, :, j]) for j in range(draws.shape[1])])
        return draws.mean(0), draws.std(0), draws.std(0) / np.sqrt(ess), ess

    m1, s1, se1, e1 = mean_se(ours)
    m2, s2, se2, e2 = mean_se(ref)
    assert np.all(np.abs(m1 - m2) < 4 * np.hypot(se1, se2))
    # std of the predictive mean: relative standard error about 1/√(2 ESS)
    rel = np.hypot(1 / np.sqrt(2 * e1), 1 / np.sqrt(2 * e2))
    assert np.all(np.abs(s1 / s2 - 1) < 4 * rel)


@pytest.mark.slow
def test_second_fit_with_same_shapes_reuses_the_compiled_model():
    """Count XLA compilations during a second fit with new data values and prior scale.

    The log joint, its gradient, the sampler's initialisation and the sampling loop
    (bayesreg.training.chains) are all reused: nothing compiles. (NumPyro's ``MCMC.run``
    compiled its ``fori_collect`` loop again on every call, once per sequential chain.)"""
    from jax import monitoring

    X, y = br.datasets.book_example()
    method = br.NUTS(num_warmup=50, num_samples=50, **QUIET)
    lik = br.GaussianLikelihood(0.3)
    br.fit(br.Polynomial(2), X, y, method=method, prior=br.Gaussian(1.0), likelihood=lik)
    compiles = []

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(duration)

    monitoring.register_event_duration_secs_listener(listener)
    try:
        br.fit(br.Polynomial(2), X, y * 2 + 1, method=method, prior=br.Gaussian(5.0),
               likelihood=br.GaussianLikelihood(0.5), seed=7)
    finally:
        monitoring.unregister_event_duration_listener(listener)
    assert compiles == []


@pytest.mark.slow
@pytest.mark.parametrize("method", ["nuts", "vi"])
def test_repeated_fits_hold_no_more_memory(method):
    # 19 more fits of one shape: NUTS grew the resident set by 300 MB (MCMC.run compiled and
    # kept a sampling loop per call), VI by 0.3 MB; the budget is 40 MB
    import gc

    def resident_mb():
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    X = np.linspace(-1, 1, 50)
    y = np.sin(3 * X)
    make = {"nuts": lambda: br.NUTS(num_warmup=100, num_samples=100, num_chains=1, **QUIET),
            "vi": lambda: br.VI(steps=300, num_samples=50, progress_bar=False)}[method]
    sizes = []
    for seed in range(20):
        br.fit(br.MLP((8,)), X, y, method=make(), prior=br.Gaussian(1.0),
               likelihood=br.GaussianLikelihood(0.1), seed=seed)
        gc.collect()
        sizes.append(resident_mb())
    assert sizes[-1] - sizes[0] < 40, sizes


@pytest.mark.slow
def test_one_chain_reports_split_rhat_without_arviz_noise(caplog, capfd):
    X = np.linspace(-1, 1, 20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a short chain may warn about R-hat
        post = br.fit(br.Linear(), X, X + 0.1 * np.sin(5 * X), method=br.NUTS(
            num_warmup=100, num_samples=100, num_chains=1, progress_bar=False))
    assert np.isfinite(post.diagnostics["r_hat"])  # the two halves of the chain compared
    out = capfd.readouterr()
    assert "Shape validation failed" not in caplog.text + out.out + out.err
