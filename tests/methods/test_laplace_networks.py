import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import bayesreg as br
from bayesreg.latent import latent_log_joint

GRID = np.linspace(-1.2, 1.2, 13)


@pytest.fixture(scope="module")
def gap():
    return br.datasets.gap_example(n=40, noise=0.1)


@pytest.fixture(scope="module")
def laplace_mlp(gap):
    X, y = gap
    return br.fit(br.MLP((16,), activation="tanh"), X, y, prior=br.Gaussian(1.0),
                  likelihood=br.GaussianLikelihood(0.1), method=br.LaplaceApprox())


@pytest.mark.slow
def test_ggn_is_positive_definite_and_linearised_predictive_is_consistent(laplace_mlp, gap):
    X, y = gap
    post = laplace_mlp
    assert post.diagnostics["hessian"] == "ggn" and post.diagnostics["min_eigenvalue"] > 0
    pred = post.predict(GRID)
    # linearised: the mean is the network at the mode, the draws are f* + J(φ_s − φ*)
    mode_f = np.asarray(post.model.apply(jax.tree_util.tree_map(jnp.asarray,
                                                                post.linearization.mode),
                                         jnp.asarray(GRID[:, None])))[:, 0]
    # (plus the target's mean, which br.fit subtracted before fitting)
    np.testing.assert_allclose(pred.mean, mode_f + post.offset, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pred.draws.std(0), pred.epistemic_std, rtol=0.1)
    assert pred.metrics(np.sin(3 * GRID))["rmse"] < 0.25
    # the training fit is good and the band is wider away from the data
    assert post.predict(X).metrics(y)["rmse"] < 0.15
    assert pred.epistemic_std[0] > np.median(post.predict(X).epistemic_std)


def test_gradient_vanishes_at_the_refined_mode(laplace_mlp):
    # the loss is a sum over 40 rows at σ = 0.1 (curvature ~1/σ² = 100 per unit output
    # change), so a gradient norm of 1e-2 moves the weights by ~1e-4 in a Newton step:
    # a stationary point for every use the approximation makes of it (measured ~1e-3; the
    # float32 L-BFGS path, and so this number, varies with the summation order)
    assert laplace_mlp.diagnostics["grad_norm"] < 1e-2


def test_evidence_matches_the_laplace_formula(laplace_mlp, gap):
    """log Z = −L(z*) + (P/2) log 2π − ½ log|H| with H the GGN computed here directly."""
    X, y = gap
    post = laplace_mlp
    with jax.enable_x64(True):
        mode = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64),
                                      post.linearization.mode)
        flat, unravel = ravel_pytree(mode)
        # the evidence of the centred target y − ȳ (br.fit's default)
        Xj, yj = jnp.asarray(X, jnp.float64), jnp.asarray(y - post.offset, jnp.float64)

        def f(v):
            return post.model.apply(unravel(v), Xj)[:, 0]

        J = jax.jacfwd(f)(flat)
        H = np.asarray(J.T @ J / 0.01 + jnp.eye(flat.size))
        z = {"params": unravel(flat), "theta": {}, "hyper": {}}
        L = -float(latent_log_joint(post.model, post.likelihood, post.prior, z, Xj, yj))
    expected = -L + 0.5 * flat.size * math.log(2 * math.pi) - 0.5 * np.linalg.slogdet(H)[1]
    assert post.log_evidence == pytest.approx(expected, rel=1e-3)


@pytest.mark.slow
def test_full_hessian_and_sampled_predictive_options(gap):
    X, y = gap
    post = br.fit(br.MLP((8,), activation="tanh"), X, y, prior=br.Gaussian(1.0),
                  likelihood=br.GaussianLikelihood(0.1),
                  method=br.LaplaceApprox(hessian="full", predictive="sample", num_samples=300))
    assert post.linearization is None and post.diagnostics["hessian"] == "full"
    assert post.predict(GRID).draws.shape == (300, GRID.size)


@pytest.mark.slow
def test_learned_noise_is_type2_by_default_and_has_a_spread_on_request(gap):
    X, y = gap
    post = br.fit(br.Polynomial(5), X, y, method=br.LaplaceApprox())
    sigma = post.noise_std()  # type-II: one σ, from the evidence
    assert np.all(sigma == sigma[0]) and 0.06 < sigma[0] < 0.16
    assert post.predict(GRID).is_gaussian
    joint = br.LaplaceApprox(training=br.MAP(optimizer="lbfgs", steps=1000,
                                             hyperparameters="joint"))
    post = br.fit(br.Polynomial(5), X, y, method=joint)
    sigma = post.noise_std()
    assert sigma.std() > 0 and 0.06 < np.median(sigma) < 0.16
    assert not post.predict(GRID).is_gaussian  # a mixture over σ draws


def test_laplace_save_and_load_keep_the_linearisation(laplace_mlp, tmp_path):
    laplace_mlp.save(tmp_path / "lap")
    back = br.load(tmp_path / "lap")
    a, b = laplace_mlp.predict(GRID), back.predict(GRID)
    np.testing.assert_allclose(a.std, b.std, rtol=1e-6)
    np.testing.assert_allclose(a.draws, b.draws, rtol=1e-5, atol=1e-6)


def test_bad_laplace_settings():
    with pytest.raises(ValueError, match="hessian"):
        br.LaplaceApprox(hessian="diag")
    with pytest.raises(ValueError, match="predictive"):
        br.LaplaceApprox(predictive="mc")
    with pytest.raises(TypeError, match="training"):
        br.LaplaceApprox(training="adam")


@pytest.mark.parametrize("given", [True, False])
def test_one_more_training_row_in_the_same_bucket_compiles_nothing_new(given):
    # the Newton refinement ran on the raw rows: every training size compiled its float64
    # loss and Hessian again (3.9 s warm -> 7.9 s at one more row on 300 rows)
    from tests.test_posterior import _compiled_programs

    kw = {"prior": br.Gaussian(1.0), "likelihood": br.GaussianLikelihood(0.2)} if given else {}
    method = br.LaplaceApprox(training=br.MAP(steps=60, progress_bar=False))

    def fit(n, seed):
        rng = np.random.default_rng(seed)
        X = rng.uniform(-1, 1, n)
        y = np.sin(3 * X) + 0.2 * rng.standard_normal(n)
        return br.fit(br.MLP((4,)), X, y, method=method, seed=seed, **kw)

    fit(20, 0)  # 20 and 21 rows share the bucket of 24
    assert _compiled_programs(lambda: fit(21, 1)) == []


def test_padded_rows_leave_the_mode_and_the_hessian_unchanged():
    from bayesreg.data.buckets import RowMasked, padded_targets
    from bayesreg.training.newton import newton_mode

    model, lik = br.MLP((3,)), br.Bernoulli()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(13, 2))
    y = (X[:, 0] > 0).astype(np.int32)
    state = {"params": model.init(jax.random.key(0), 2), "theta": {}}
    prior = {"weights": br.Gaussian(1.0), "biases": br.Gaussian(1.0)}
    with jax.enable_x64(True):
        raw = newton_mode(model, lik, prior, state, X, y, "ggn", 3)
        padded = newton_mode(model, RowMasked(lik, False, "int32"), prior, state,
                             br.data.buckets.pad_rows(X), padded_targets(y), "ggn", 3)
    np.testing.assert_allclose(padded[0], raw[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(padded[1], raw[1], rtol=1e-10, atol=1e-12)
    assert padded[2] == pytest.approx(raw[2], rel=1e-12)


def _largest_spike(post, half=25):
    """The largest ratio of the predictive sd at a point of a fine grid to the larger of its
    neighbours' ``half`` grid points (0.025) away."""
    sd = post.predict(np.linspace(-1.5, 1.5, 3001)).std
    return float(np.max(sd[half:-half] / np.maximum(sd[:-2 * half], sd[2 * half:])))


@pytest.mark.slow
def test_relu_spikes_are_kinks_and_tanh_has_none():
    """A ReLU network's parameter-Jacobian jumps at each unit's kink, so the linearised
    band has needles where two kinks enclose no training input (docs: Laplace, "Needle
    spikes"); tanh's Jacobian is continuous. Measured, data seeds 0-2: MLP((50,)) ReLU 6.3,
    6.4, 4.2; tanh 1.0 each. 2 separates them with room on both sides."""
    X, y = br.datasets.gap_example(n=40, seed=0)
    relu = br.fit(br.MLP((50,)), X, y, method=br.LaplaceApprox(), seed=0)
    smooth = br.fit(br.MLP((50,), activation="tanh"), X, y, method=br.LaplaceApprox(), seed=0)
    assert _largest_spike(relu) > 2.0
    assert _largest_spike(smooth) < 2.0
