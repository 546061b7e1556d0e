"""NUTS, the Laplace approximation and VI against the closed-form posterior of a conjugate
polynomial problem (fixed noise, Gaussian prior)."""

import arviz as az
import numpy as np
import pytest

import bayesreg as br

SIGMA, SCALE = 0.3, 3.0


@pytest.fixture(scope="module")
def problem(book_data):
    X, y = book_data
    X = X - 0.5  # centred inputs: a well-conditioned posterior for the samplers
    kw = {"prior": br.Gaussian(SCALE), "likelihood": br.GaussianLikelihood(SIGMA)}
    exact = br.fit(br.Polynomial(2), X, y, method=br.Exact(), **kw)
    return X, y, kw, exact


def _flat(post):
    return np.column_stack([post.params["weights"][0][:, :, 0], post.params["biases"][0]])


@pytest.mark.slow
def test_laplace_is_exact_to_numerical_precision(problem):
    X, y, kw, exact = problem
    for hessian in ("full", "ggn"):
        lap = br.fit(br.Polynomial(2), X, y, method=br.LaplaceApprox(hessian=hessian), **kw)
        np.testing.assert_allclose(lap.gaussian.mean, exact.gaussian.mean, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(lap.gaussian.cov, exact.gaussian.cov, rtol=1e-9, atol=1e-14)
        assert lap.log_evidence == pytest.approx(exact.log_evidence, rel=1e-12)
        grid = np.linspace(-0.5, 0.5, 11)
        a, b = lap.predict(grid), exact.predict(grid)
        np.testing.assert_allclose(a.std, b.std, rtol=1e-6)
        np.testing.assert_allclose(a.interval(0.9)[0], b.interval(0.9)[0], rtol=1e-6)


@pytest.mark.slow
def test_nuts_matches_the_closed_form_within_monte_carlo_error(problem):
    X, y, kw, exact = problem
    post = br.fit(br.Polynomial(2), X, y, method=br.NUTS(num_warmup=500, num_samples=1000,
                                                          progress_bar=False), seed=1, **kw)
    assert post.diagnostics["divergences"] == 0
    assert post.diagnostics["r_hat"] < 1.01
    draws = _flat(post).astype(np.float64)
    sd = np.sqrt(np.diag(exact.gaussian.cov))

    def ess(x):
        return az.ess(x.reshape(post.num_chains, -1))

    # mean: standard error sd/√ESS(x); variance: sd((x−m)²)/√ESS((x−m)²) — NUTS can be far
    # more efficient for means than for second moments, so each uses its own ESS
    for j in range(3):
        x = draws[:, j]
        assert abs(x.mean() - exact.gaussian.mean[j]) < 4 * sd[j] / np.sqrt(ess(x))
        sq = (x - exact.gaussian.mean[j]) ** 2
        assert abs(sq.mean() - sd[j] ** 2) < 4 * sq.std() / np.sqrt(ess(sq))


@pytest.mark.slow
def test_vi_reaches_the_mean_field_optimum(problem):
    """For a Gaussian target N(m, A⁻¹) mean-field VI converges to μ = m, ρⱼ² = 1/Aⱼⱼ."""
    X, y, kw, exact = problem
    post = br.fit(br.Polynomial(2), X, y,
                  method=br.VI(steps=10_000, num_particles=4, progress_bar=False), **kw)
    A = np.linalg.inv(exact.gaussian.cov)
    loc, scale = post.diagnostics["variational_loc"], post.diagnostics["variational_scale"]
    order = [1, 2, 0]  # the latent vector is [bias, w₁, w₂]
    mf_sd = 1 / np.sqrt(np.diag(A))
    np.testing.assert_allclose(loc[order], exact.gaussian.mean, atol=0.05 * mf_sd.min())
    np.testing.assert_allclose(scale[order], mf_sd, rtol=0.05)
    assert np.mean(post.diagnostics["elbo"][-500:]) > np.mean(post.diagnostics["elbo"][:500])
    # the weights mean field counts as determined: Σⱼ (1 − α/Aⱼⱼ) at the optimum; ρⱼ within
    # 5% puts each term within 0.1 α/Aⱼⱼ of it
    share = (1 / SCALE**2) / np.diag(A)
    assert post.diagnostics["mean_field_dof"] == pytest.approx(np.sum(1 - share),
                                                               abs=0.1 * np.sum(share))


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.slow
def test_every_method_exports_the_same_arviz_groups(problem):
    X, y, kw, _ = problem
    methods = [br.MAP(steps=500), br.LaplaceApprox(num_samples=200),
               br.VI(steps=500, num_samples=200, progress_bar=False),
               br.NUTS(num_warmup=100, num_samples=100, progress_bar=False)]
    for method in methods:
        idata = br.fit(br.Polynomial(2), X, y, method=method, **kw).to_arviz()
        assert {"posterior", "log_likelihood", "observed_data"} <= set(idata.groups())
        assert {"weights_0", "biases_0"} <= set(idata.posterior.data_vars)
    assert "diverging" in idata.sample_stats
    assert np.isfinite(az.loo(idata).elpd_loo)
