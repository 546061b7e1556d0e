"""Last-layer Laplace: ``LaplaceApprox(subset="last_layer")`` (bayesreg/last_layer.py)."""

import warnings

import numpy as np
import pytest

import bayesreg as br
from bayesreg import curvature, last_layer
from bayesreg.conjugate import conjugate_update

FAR = np.array([-2.5, 2.5])
# one plain gradient step: the last layer is far from its mode, so only the float64 Newton
# step of last_layer.py can make the posterior match Exact
ONE_STEP = br.MAP(optimizer="gd", steps=1, lr=1e-3)


@pytest.fixture(scope="module")
def gap():
    return br.datasets.gap_example(n=40, noise=0.1)


@pytest.fixture(scope="module")
def mlp_post(gap):
    """Library defaults: σ and the prior scales learned by the evidence during training."""
    X, y = gap
    return br.fit(br.MLP((16,)), X, y, method=br.LaplaceApprox(subset="last_layer"), seed=0)


@pytest.mark.parametrize("hessian", ["full", "kron"])
@pytest.mark.slow
def test_no_hidden_layer_equals_exact(hessian):
    # float64 algebra on both sides (same Φ, σ, prior): only the order of the float64
    # operations differs, so 1e-9 relative is loose (measured ~1e-15)
    X = np.linspace(0, 1, 15)
    y = np.sin(6 * X)
    lik, prior = br.GaussianLikelihood(0.3), br.Gaussian(1.0)
    ll = br.fit(br.Polynomial(3), X, y, likelihood=lik, prior=prior,
                method=br.LaplaceApprox(subset="last_layer", hessian=hessian, training=ONE_STEP))
    ex = br.fit(br.Polynomial(3), X, y, method=br.Exact(), likelihood=lik, prior=prior)
    assert ll.diagnostics["newton_shift"] > 0.1  # the training left it far from the mode
    Xs = np.linspace(-0.5, 1.5, 9)
    a, b = ll.predict(Xs), ex.predict(Xs)
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-9)
    np.testing.assert_allclose(a.std, b.std, rtol=1e-9)
    np.testing.assert_allclose(a.epistemic_std, b.epistemic_std, rtol=1e-9)
    np.testing.assert_allclose(ll.log_evidence, ex.log_evidence, rtol=1e-9)
    assert ll.diagnostics["hessian"] == hessian


def test_linear_with_flat_bias_equals_exact():
    # weights and bias with different prior precisions (a Flat bias: precision 0), 3 inputs
    X, y, _ = br.datasets.linear_example(n=30, d=3, noise=0.5)
    lik, prior = br.GaussianLikelihood(0.5), {"weights": br.Gaussian(0.7), "biases": br.Flat()}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ll = br.fit(br.Linear(), X, y, likelihood=lik, prior=prior, method=br.LaplaceApprox(
            subset="last_layer", hessian="kron", training=ONE_STEP))
        ex = br.fit(br.Linear(), X, y, method=br.Exact(), likelihood=lik, prior=prior)
    assert any("improper" in str(w.message) for w in caught)
    assert np.isnan(ll.log_evidence)
    np.testing.assert_allclose(ll.diagnostics["log_evidence_improper"],
                               ex.diagnostics["log_evidence_improper"], rtol=1e-9)
    Xs = np.random.default_rng(1).standard_normal((7, 3)) * 3
    a, b = ll.predict(Xs), ex.predict(Xs)
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-9)
    np.testing.assert_allclose(a.std, b.std, rtol=1e-9)


@pytest.mark.slow
def test_kron_equals_full_for_a_gaussian_likelihood():
    # K = 1 and Λₙ = 1/σ² for every row: A ⊗ B = ΦᵀΦ/σ² exactly; the prior diagonal differs
    # between weights and bias and is added exactly in both
    rng = np.random.default_rng(0)
    phi = np.concatenate([rng.standard_normal((25, 6)), np.ones((25, 1))], axis=1)
    y, theta = rng.standard_normal(25), rng.standard_normal(7)
    prec0 = np.concatenate([np.full(6, 2.0), [0.1]])
    m0 = np.zeros(7)
    full = curvature.last_layer("full", phi, y, 0.3, 1, prec0, m0, theta)
    kron = curvature.last_layer("kron", phi, y, 0.3, 1, prec0, m0, theta)
    closed = phi.T @ phi / 0.3**2 + np.diag(prec0)
    np.testing.assert_allclose(full, closed, rtol=1e-12)
    np.testing.assert_allclose(kron, closed, rtol=1e-12)


@pytest.mark.slow
def test_kron_and_full_fits_agree(gap, mlp_post):
    X, y = gap
    kron = br.fit(br.MLP((16,)), X, y, seed=0,
                  method=br.LaplaceApprox(subset="last_layer", hessian="kron"))
    a, b = mlp_post.predict(FAR), kron.predict(FAR)
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-10)
    np.testing.assert_allclose(a.std, b.std, rtol=1e-10)
    np.testing.assert_allclose(mlp_post.log_evidence, kron.log_evidence, rtol=1e-10)


def test_mean_is_the_conjugate_posterior_of_the_features(gap, mlp_post):
    # an independent computation of φ(x) (NumPy ReLU of the body at the mode) and of the
    # conjugate posterior N(A⁻¹Φᵀy/σ², A⁻¹) of the last layer given φ and the learned σ, s
    X, y = gap
    post = mlp_post
    mode = post.approximation.mode
    phi = np.maximum(X @ np.asarray(mode["weights"][0], np.float64) + mode["biases"][0], 0)
    phi = np.concatenate([phi, np.ones((len(y), 1))], axis=1)
    sigma = float(post.diagnostics["noise_std"])
    s_w, s_b = post.prior["weights"].scale[-1], post.prior["biases"].scale[-1]
    prec0 = np.concatenate([np.full(16, 1 / s_w**2), [1 / s_b**2]])
    # (br.fit centred the target: the last layer is the posterior given y − ȳ)
    mean, chol_prec = conjugate_update(phi, y - post.offset, sigma, np.zeros(17), prec0)
    np.testing.assert_allclose(post.approximation.mean, mean, rtol=1e-6, atol=1e-8)
    cov = post.approximation.chol_cov @ post.approximation.chol_cov.T
    np.testing.assert_allclose(cov @ (chol_prec @ chol_prec.T), np.eye(17), atol=1e-6)
    # the learned σ is the training's, used as given (docs: why it is not re-estimated)
    np.testing.assert_allclose(np.exp(post.theta["log_noise"]), sigma, rtol=1e-12)
    assert post.diagnostics["subset"] == "last_layer"
    assert np.isfinite(post.diagnostics["noise_std_last_layer"])


def test_draws_match_the_analytic_moments(mlp_post):
    # S = 1000 draws of f: the sample mean is within 4 std/√S of the analytic mean, and the
    # sample std has relative sd ≈ 1/√(2(S−1)) ≈ 0.022, so 4 sd ≈ 0.09 → rtol 0.1
    pred = mlp_post.predict(np.linspace(-2.5, 2.5, 11))
    S = pred.draws.shape[0]
    assert S == 1000
    assert np.all(np.abs(pred.draws.mean(0) - pred.mean) < 4 * pred.epistemic_std / np.sqrt(S))
    np.testing.assert_allclose(pred.draws.std(0), pred.epistemic_std, rtol=0.1)
    # the body is the mode in every draw; only the last layer varies
    w0 = mlp_post.params["weights"][0]
    assert np.all(w0 == w0[:1]) and np.std(mlp_post.params["weights"][-1], axis=0).min() > 0


def test_epistemic_std_grows_in_the_gap_and_away(gap, mlp_post):
    X, _ = gap
    inside = mlp_post.predict(X).epistemic_std.mean()
    far = mlp_post.predict(FAR).epistemic_std
    assert far.min() > 1.5 * inside
    assert mlp_post.predict(X).metrics(gap[1])["rmse"] < 0.2


@pytest.mark.slow
def test_predictive_save_load_arviz_compare(gap, mlp_post, tmp_path):
    X, y = gap
    grid = np.linspace(-2, 2, 9)
    pred = mlp_post.predict(grid)
    assert pred.is_gaussian
    mlp_post.save(tmp_path / "ll")
    back = br.load(tmp_path / "ll")
    again = back.predict(grid)
    assert type(back.approximation).__name__ == "LastLayerGaussian"
    for attr in ("mean", "std", "epistemic_std", "draws"):
        np.testing.assert_array_equal(getattr(pred, attr), getattr(again, attr))
    with pytest.warns(UserWarning, match="last-layer posterior samples"):
        idata = mlp_post.to_arviz()
    assert "posterior" in idata.groups()
    table = br.compare(br.Polynomial(2), X, y, methods=[
        br.Exact(), br.LaplaceApprox(subset="last_layer", training=ONE_STEP)])
    assert len(table.rows) == 2


def test_features_compile_once_per_bucket(mlp_post):
    mlp_post.predict(np.linspace(-1, 1, 7))
    size = last_layer._features._cache_size()
    mlp_post.predict(np.linspace(-3, 3, 7))
    mlp_post.predict(np.linspace(-3, 3, 6))  # same row bucket
    assert last_layer._features._cache_size() == size


def test_validation():
    with pytest.raises(ValueError, match="subset"):
        br.LaplaceApprox(subset="first_layer")
    with pytest.raises(ValueError, match="kron"):
        br.LaplaceApprox(hessian="kron")
    X = np.linspace(-1, 1, 10)
    with pytest.raises(ValueError, match="GaussianLikelihood"):
        br.fit(br.MLP((4,)), X, (X > 0).astype(float), likelihood=br.Bernoulli(),
               method=br.LaplaceApprox(subset="last_layer", training=ONE_STEP))
    with pytest.raises(ValueError, match="Gaussian or Flat"):
        br.fit(br.Linear(), X, X, prior=br.Laplace(1.0), likelihood=br.GaussianLikelihood(0.1),
               method=br.LaplaceApprox(subset="last_layer", training=ONE_STEP))
    assert br.LaplaceApprox().to_dict().get("subset") is None  # subset="all": unchanged
    assert br.LaplaceApprox(subset="last_layer").to_dict()["subset"] == "last_layer"
