"""The lecture's regularizers as MAP options: noise injection and early stopping."""

import numpy as np
import pytest

import bayesreg as br


@pytest.fixture(scope="module")
def data():
    return br.datasets.gap_example(n=60, noise=0.1)


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


@pytest.mark.parametrize("kind", ["inputs", "weights", "labels"])
def test_noise_injection_regularises(data, kind):
    """Noise added at each step shrinks the fit: training error rises with the noise."""
    X, y = data
    lik = br.GaussianLikelihood(0.1)

    def train_rmse(noise):
        post = br.fit(br.MLP((32,)), X, y, likelihood=lik, prior=br.Gaussian(3.0), seed=0,
                      method=br.MAP(steps=1500, noise={kind: noise}))
        return post.predict(X).metrics(y)["rmse"]

    assert train_rmse(0.0) < train_rmse(0.5)


def test_input_noise_on_a_linear_model_is_ridge():
    """Gaussian input noise σₓ on a linear model adds N σₓ² ‖w‖² to the expected SSE:
    in expectation it is ridge with λ = N σₓ², i.e. MSE + σₓ² ‖w‖² (Bishop 1995)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.standard_normal(200)
    sx = 0.5
    post = br.fit(br.Linear(), X, y, prior=br.Flat(), likelihood=br.GaussianLikelihood(1.0),
                  method=br.MAP(optimizer="sgd", lr=0.05, steps=20_000, noise={"inputs": sx},
                                schedule="cosine"))
    A = np.column_stack([X, np.ones(200)])
    penal = np.diag([1.0, 1.0, 1.0, 0.0])
    ridge = np.linalg.solve(A.T @ A / 200 + sx**2 * penal, A.T @ y / 200)
    got = np.append(post.params["weights"][0][0, :, 0], post.params["biases"][0][0])
    np.testing.assert_allclose(got, ridge, atol=0.03)


def test_bad_noise_settings():
    with pytest.raises(ValueError, match="noise must be a dict"):
        br.MAP(noise={"gradients": 0.1})
    with pytest.raises(ValueError, match="noise"):
        br.MAP(noise={"inputs": -1.0})
    with pytest.raises(ValueError, match="validation"):
        br.MAP(validation=1.5)
    with pytest.raises(ValueError, match="early_stopping"):
        br.MAP(early_stopping=0)
