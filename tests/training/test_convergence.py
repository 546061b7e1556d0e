"""The Newton decrement and the Gauss–Newton steps at the end of a fit with evidence updates
(bayesreg.training.convergence)."""

import warnings

import jax
import numpy as np
import pytest
from sklearn.datasets import load_diabetes

import bayesreg as br
from bayesreg.training import convergence


def _linear_mode(post, X, y):
    """The exact mode of the linear model's log joint under the σ and prior scales the
    evidence learned, its Hessian A, and the fitted weights (weights then bias)."""
    d = post.diagnostics
    sigma = float(d["noise_std"])
    s_w, s_b = float(d["prior_scales"]["weights"][0]), float(d["prior_scales"]["biases"][0])
    Xa = np.c_[X, np.ones(len(X))]
    A = Xa.T @ Xa / sigma**2 + np.diag([s_w**-2] * X.shape[1] + [s_b**-2])
    mode = np.linalg.solve(A, Xa.T @ ((y - post.offset) / post.scale) / sigma**2)
    phi = np.r_[np.asarray(post.params["weights"][0]).reshape(-1),
                np.asarray(post.params["biases"][0]).reshape(-1)]
    return phi - mode, A


@pytest.fixture(scope="module")
def diabetes():
    return load_diabetes(return_X_y=True)


@pytest.mark.slow  # ~4 s: in the slow set, which CI runs, to keep the default suite under 10 min
def test_the_decrement_is_the_squared_distance_to_the_mode_and_the_steps_reach_it(
        monkeypatch, diabetes):
    # the raw diabetes table (features of scale 0.05, target of std 77) under a learned σ and
    # prior: Adam's 10 000 default updates end λ² = 8.8 from the mode of the learned
    # hyperparameters (4.4 nats short). For a linear model the GGN is the Hessian, so the
    # reported λ² is ‖φ − φ*‖²_A exactly, and one Gauss–Newton step lands on φ*
    X, y = diabetes
    jax.clear_caches()  # the step's fractions are read when the loop is traced
    monkeypatch.setattr(convergence, "STEP_FRACTIONS", np.zeros(1))  # a step of length 0
    with pytest.warns(UserWarning, match="nats above the mode") as caught:
        short = br.fit(br.Linear(), X, y, method=br.MAP())
    assert {w.filename for w in caught if "mode" in str(w.message)} == {__file__}  # user's line
    delta, A = _linear_mode(short, X, y)
    assert delta @ A @ delta > 2 * convergence.NATS_SHORT
    np.testing.assert_allclose(short.diagnostics["newton_decrement"], delta @ A @ delta,
                               rtol=1e-3)
    history = short.diagnostics["newton_decrement_history"]
    assert history.shape == (11,)  # before each of the 10 updates, and at the end
    jax.clear_caches()
    monkeypatch.undo()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # at the mode: no warning
        polished = br.fit(br.Linear(), X, y, method=br.MAP())
    delta, A = _linear_mode(polished, X, y)
    # float32 weights of the size of 500 with A's eigenvalues from 1e-5 to 1e2: the
    # rounding of φ alone is ~1e-10 in this norm; measured 2e-11
    assert delta @ A @ delta < 1e-3
    assert polished.diagnostics["newton_decrement"] < 1e-3
    # the step recovered what Adam left: λ²/2 of the unpolished fit, about 4.4 nats
    assert float(np.sum(polished.diagnostics["polish_gains"])) > convergence.NATS_SHORT


def _line(n=60, features=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, features)) * np.array([1.0, 0.05, 20.0])[:features]
    return X, X @ np.array([1.0, -8.0, 0.02])[:features] + 0.3 * rng.standard_normal(n)


def test_a_network_takes_no_steps():
    # its GGN is not its Hessian: Gauss–Newton steps neither converged nor helped (module
    # docstring of bayesreg.training.convergence), so a network's fit is as trained
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (60, 1))
    y = np.sin(3 * X[:, 0]) + 0.3 * rng.standard_normal(60)
    post = br.fit(br.MLP((8,)), X, y, method=br.MAP(steps=200))
    assert "polish_gains" not in post.diagnostics
    assert "newton_decrement" not in post.diagnostics


def test_an_ensemble_reports_every_member():
    X, y = _line()
    post = br.fit(br.Linear(), X, y, method=br.Ensemble(3, training=br.MAP(steps=400)))
    assert np.shape(post.diagnostics["polish_gains"]) == (3, convergence.POLISH_STEPS)
    assert np.shape(post.diagnostics["newton_decrement_history"]) == (3, 11)
    assert np.all(post.diagnostics["newton_decrement"] < 1e-3)


def test_no_steps_where_the_objective_is_not_the_plain_log_joint():
    # early stopping stops short on purpose; augmentation and noise injection minimise
    # another objective, whose mode the step would leave
    line = br.MAP().objective(br.Linear())
    assert convergence.polish_steps(line, watch=False) == convergence.POLISH_STEPS > 0
    assert convergence.polish_steps(line, watch=True) == 0
    assert convergence.polish_steps(br.MAP().objective(br.MLP((4,))), watch=False) == 0
    noisy = br.MAP(noise_injection={"inputs": 0.1}).objective(br.Linear())
    assert convergence.polish_steps(noisy, watch=False) == 0
    augmented = br.MAP(augment=br.augment.noise(0.1)).objective(br.Linear())
    assert convergence.polish_steps(augmented, watch=False) == 0


def test_a_validation_fit_keeps_its_best_weights():
    X, y = _line()
    post = br.fit(br.Linear(), X, y, method=br.MAP(steps=300, validation=0.2))
    assert "polish_gains" not in post.diagnostics


def test_the_step_uses_every_row_above_the_evidence_subsample():
    # above max_rows (2 048) the evidence estimates G from a subsample; a step from it does
    # not land on the mode (20 000 rows: λ² = 2 460 after it). With the decrement asked for,
    # every row enters G (a linear model's Jacobian is small)
    X, y = _line(n=5000)
    post = br.fit(br.Linear(), X, y, method=br.MAP(steps=300))
    delta, A = _linear_mode(post, X, y)
    assert delta @ A @ delta < 1e-3
    assert post.diagnostics["newton_decrement"] < 1e-3
