"""Numbers that used to be silent or blamed the learning rate: scales of data and priors."""

import warnings

import numpy as np
import pytest

import bayesreg as br

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 3))
Y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * RNG.normal(size=40)


def test_targets_whose_squares_overflow_float32_are_refused_by_name():
    with pytest.raises(ValueError, match=r"y reaches 4\.\d+e\+30.*overflow float32.*float64"):
        br.fit(br.Linear(), X, Y * 1e30, method=br.Exact())
    with pytest.raises(ValueError, match="X reaches"):
        br.fit(br.Linear(), X * 1e20, Y)
    # in float64 the same numbers are fine
    post = br.fit(br.Linear(), X, Y * 1e30, method=br.Exact(), dtype="float64")
    assert np.all(np.isfinite(post.predict(X[:3]).std))


def test_a_column_on_another_scale_warns_with_its_index_and_the_fix():
    Xs = X.copy()
    Xs[:, 1] *= 1e6
    with pytest.warns(UserWarning, match=r"X columns 1 \(std [\d.]+e\+0[56]\).*Standardise X"):
        br.fit(br.Linear(), Xs, Y, method=br.Exact())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # comparable scales: no warning
        br.fit(br.Linear(), X, Y, method=br.Exact())


def test_divergence_names_the_tiny_prior_not_the_learning_rate():
    with pytest.raises(FloatingPointError, match="weights prior scale of 1e-30"):
        br.fit(br.Linear(), X, Y, prior=br.Gaussian(1e-30))


def test_badly_scaled_inputs_to_a_network_say_standardise():
    """A column ×1e6 into an MLP: the fit warns, naming the column and the fix, before it
    runs; if it then diverges, the error says "standardise X" too (it did while the
    evidence update could fail; since that update no longer fails the fit finishes, with
    an RMSE far above std(y), which is what the warning is for)."""
    Xs = X.copy()
    Xs[:, 0] *= 1e6
    with pytest.warns(UserWarning, match=r"X columns 0 \(std [\d.]+e\+06\).*Standardise X"):
        try:
            br.fit(br.MLP((8,)), Xs, Y, method=br.MAP(steps=400))
        except FloatingPointError as err:
            assert "standardise X" in str(err)


def test_a_learned_noise_on_one_row_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 2 training rows"):
        br.fit(br.Polynomial(3), X[:1, 0], Y[:1], method=br.LaplaceApprox())
