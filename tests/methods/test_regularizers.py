"""The lecture's regularizers as MAP options: noise injection and early stopping."""

import functools

import numpy as np
import pytest

import bayesreg as br

# the closed forms here put the prior on y as given: the target is not centred
fit_uncentred = functools.partial(br.fit, center=False)


@pytest.fixture(scope="module")
def data():
    return br.datasets.gap_example(n=60, noise=0.1)


@pytest.mark.slow
def test_early_stopping_stops_restores_best_and_keeps_curves(data):
    X, y = data
    method = br.MAP(lr=0.01, steps=4000, schedule="constant", validation=0.25, early_stopping=50)
    post = br.fit(br.MLP((64, 64)), X, y, method=method, prior=br.Gaussian(10.0), seed=1)
    d = post.diagnostics
    assert len(post.y_train) == 45  # 15 validation rows held out
    assert d["val_losses"].shape == d["losses"].shape == (4000,)
    best, stopped = d["best_update"], d["stopped_update"]
    assert 0 < best < stopped <= best + 50 + 1
    # after stopping the parameters no longer move, so the validation loss is flat
    assert np.ptp(d["val_losses"][stopped + 1:]) < 1e-6
    # restore_best: the returned network has the best validation loss seen
    assert d["val_losses"][best - 1] == pytest.approx(d["val_losses"].min())
    kept = br.fit(br.MLP((64, 64)), X, y, method=br.MAP(lr=0.01, steps=4000, schedule="constant",
                                                        validation=0.25, early_stopping=50,
                                                        restore_best=False),
                  prior=br.Gaussian(10.0), seed=1)
    assert kept.diagnostics["stopped_update"] == stopped


def test_validation_curve_without_stopping(data):
    X, y = data
    post = br.fit(br.MLP((16,)), X, y, method=br.MAP(steps=300, validation=0.2))
    assert post.diagnostics["val_losses"].shape == (300,)
    assert post.diagnostics["stopped_update"] == -1


@pytest.mark.parametrize("kind", ["inputs", "weights"])
@pytest.mark.slow
def test_noise_injection_regularises(data, kind):
    """Noise added at each step shrinks the fit: training error rises with the noise.
    (Not label noise: the squared loss is linear in y, so label noise leaves the expected
    gradient unchanged — see the next test.)"""
    X, y = data
    lik = br.GaussianLikelihood(0.1)

    def train_rmse(noise):
        post = br.fit(br.MLP((32,)), X, y, likelihood=lik, prior=br.Gaussian(3.0), seed=0,
                      method=br.MAP(steps=1500, noise_injection={kind: noise}))
        return post.predict(X).metrics(y)["rmse"]

    assert train_rmse(0.0) < train_rmse(0.5)


def test_label_noise_is_unbiased_sgd_noise_around_the_map_solution():
    """For a linear model, fixed noise σ and prior N(0, s²), the per-point objective is
    J(φ) = ‖y + σ_y ε − Φφ‖²/(2Nσ²) + ‖φ‖²/(2Ns²): its gradient Hφ − b − (σ_y/(Nσ²))Φᵀε has
    the clean gradient as its expectation (H = ΦᵀΦ/(Nσ²) + I/(Ns²)). Plain GD at a constant
    rate η is then the linear recursion e ← (I − ηH)e + (ησ_y/(Nσ²))Φᵀε around the MAP
    solution φ* = (NH)⁻¹Φᵀy/σ², whose stationary law has mean 0 and the covariance C solving
    C = (I − ηH)C(I − ηH)ᵀ + (ησ_y/(Nσ²))²ΦᵀΦ. 400 independently seeded fits (ensemble
    members, each with its own noise) must show both: no bias, and exactly that spread.
    Noise put on the inputs instead would bias φ towards 0 (ridge with λ = Nσ_y²)."""
    from scipy.linalg import solve_discrete_lyapunov

    rng = np.random.default_rng(0)
    N, sigma, s, sy, lr, M = 50, 1.0, 1.0, 1.0, 0.1, 400
    X = rng.standard_normal((N, 2))
    y = 1.0 + X @ np.array([2.0, -1.0]) + 0.5 * rng.standard_normal(N)
    method = br.Ensemble(members=M, training=br.MAP(optimizer="sgd", lr=lr, steps=500,
                                                     schedule="constant",
                                                     noise_injection={"labels": sy}))
    post = fit_uncentred(br.Linear(), X, y, method=method, prior=br.Gaussian(s),
                  likelihood=br.GaussianLikelihood(sigma), seed=0)
    phi = np.column_stack([post.params["weights"][0][:, :, 0], post.params["biases"][0]])

    Phi = np.column_stack([X, np.ones(N)])
    H = Phi.T @ Phi / (N * sigma**2) + np.eye(3) / (N * s**2)
    star = np.linalg.solve(N * H, Phi.T @ y / sigma**2)
    step = np.eye(3) - lr * H  # contracts by ≤ 0.97 per update: the start is forgotten
    C = solve_discrete_lyapunov(step, (lr * sy / (N * sigma**2)) ** 2 * Phi.T @ Phi)
    Ci = np.linalg.inv(C)
    e = phi - star
    # unbiased: M·(ē)ᵀC⁻¹ē ~ χ²₃ (99.99% quantile 21.1); input noise would give ~10⁴
    mean = e.mean(0)
    bias = float(M * mean @ Ci @ mean)
    assert bias < 21.1
    # the spread: the mean of eₘᵀC⁻¹eₘ is 3, with standard error √(2·3/M) = 0.12 (measured
    # 2.74 … 3.18 over seeds 0–5); doubled noise gives 12, no noise 0
    spread = float(np.mean(np.einsum("mi,ij,mj->m", e, Ci, e)))
    assert spread == pytest.approx(3.0, abs=4 * 0.12)


def test_input_noise_on_a_linear_model_is_ridge():
    """Gaussian input noise σₓ on a linear model adds N σₓ² ‖w‖² to the expected SSE:
    in expectation it is ridge with λ = N σₓ², i.e. MSE + σₓ² ‖w‖² (Bishop 1995)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.standard_normal(200)
    sx = 0.5
    post = fit_uncentred(br.Linear(), X, y, prior=br.Flat(), likelihood=br.GaussianLikelihood(1.0),
                  method=br.MAP(optimizer="sgd", lr=0.05, steps=20_000,
                                noise_injection={"inputs": sx},
                                schedule="cosine"))
    A = np.column_stack([X, np.ones(200)])
    penal = np.diag([1.0, 1.0, 1.0, 0.0])
    ridge = np.linalg.solve(A.T @ A / 200 + sx**2 * penal, A.T @ y / 200)
    got = np.append(post.params["weights"][0][0, :, 0], post.params["biases"][0][0])
    np.testing.assert_allclose(got, ridge, atol=0.03)


def test_noise_injection_has_one_name_and_the_old_one_warns():
    """``noise`` means σ across the API; MAP's injected noise is ``noise_injection``. The old
    spelling still works for one release, with a warning that points at the caller's line."""
    with pytest.warns(DeprecationWarning, match="noise_injection") as caught:
        old = br.MAP(noise={"inputs": 0.1})
    assert caught[0].filename == __file__
    assert old == br.MAP(noise_injection={"inputs": 0.1})
    assert old.to_dict()["noise_injection"] == {"inputs": 0.1}
    assert old.objective(br.Linear()).noise == (("inputs", 0.1),)
    with pytest.raises(TypeError, match="both"):
        br.MAP(noise={"inputs": 0.1}, noise_injection={"inputs": 0.2})


def test_bad_noise_settings():
    with pytest.raises(ValueError, match="noise_injection must be a dict"):
        br.MAP(noise_injection={"gradients": 0.1})
    with pytest.raises(ValueError, match="noise"):
        br.MAP(noise_injection={"inputs": -1.0})
    with pytest.raises(ValueError, match="validation"):
        br.MAP(validation=1.5)
    with pytest.raises(ValueError, match="early_stopping"):
        br.MAP(early_stopping=0)
