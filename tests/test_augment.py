"""Data augmentation (bayesreg.augment) and its place in the training loop."""

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayesreg as br
from bayesreg import augment

# the closed forms here put the prior on y as given: the target is not centred
fit_uncentred = functools.partial(br.fit, center=False)


def test_shift_is_a_circular_shift_of_each_row_within_max_shift():
    X = jnp.tile(jnp.arange(10.0), (500, 1))
    out = np.asarray(augment.shift(max_shift=2)(jax.random.key(0), X))
    shifts = (-out[:, 0]) % 10  # out[r, j] = X[(j − s) mod 10]: out[r, 0] = −s mod 10
    assert set(np.unique(shifts).astype(int)) == {0, 1, 2, 8, 9}  # s in [−2, 2]
    for row, s in zip(out, shifts, strict=True):
        np.testing.assert_array_equal(row, np.roll(np.arange(10.0), int(s)))


def test_scale_noise_stretch_flip_do_what_they_say():
    key = jax.random.key(1)
    X = jnp.tile(jnp.linspace(-1.0, 1.0, 9), (400, 1))
    c = np.asarray(augment.scale(0.5, 2.0)(key, X))[:, -1]  # the last sample is 1 · c
    assert c.min() >= 0.5 and c.max() <= 2.0 and np.ptp(c) > 1.0
    z = np.asarray(augment.noise(0.3)(key, jnp.zeros((400, 50))))
    assert abs(z.std() - 0.3) < 4 * 0.3 / np.sqrt(2 * z.size)  # sd of a sample sd
    st = np.asarray(augment.stretch(2.0, 2.0)(key, X))  # ×2 about the centre: half the slope
    np.testing.assert_allclose(np.diff(st[0])[2:6], np.diff(np.asarray(X[0]))[2:6] / 2, atol=1e-6)
    f = np.asarray(augment.flip(1.0)(key, X))
    np.testing.assert_array_equal(f, np.asarray(X)[:, ::-1])
    np.testing.assert_array_equal(np.asarray(augment.flip(0.0)(key, X)), np.asarray(X))
    both = augment.compose(augment.flip(1.0), augment.scale(3.0, 3.0))(key, X)
    np.testing.assert_allclose(np.asarray(both), 3 * np.asarray(X)[:, ::-1], rtol=1e-6)


def test_bad_settings_name_the_argument():
    with pytest.raises(ValueError, match="max_shift"):
        augment.shift(-1)
    with pytest.raises(ValueError, match="high"):
        augment.scale(2.0, 1.0)
    with pytest.raises(TypeError, match="aug"):
        augment.compose(3)
    with pytest.raises(TypeError, match=r"augment must be a transform .*instance"):
        br.MAP(augment=augment.shift)


def test_input_noise_as_an_augmentation_is_ridge_with_strength_n_v():
    """E over ε of ‖y − (X + ε)w − b‖² = ‖y − Xw − b‖² + n v ‖w‖²: SGD on freshly
    augmented batches converges to the ridge solution with λ = n v (mean form: v). The tolerance
    is the SGD noise left at the end of a cosine schedule, as for noise_injection
    (tests/methods/test_regularizers.py); without the augmentation the fit is least squares,
    0.11 away from ridge on w, which the bound rejects."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.standard_normal(200)
    sx = 0.5
    post = fit_uncentred(br.Linear(), X, y, prior=br.Flat(), likelihood=br.GaussianLikelihood(1.0),
                  method=br.MAP(optimizer="sgd", lr=0.05, steps=20_000,
                                augment=augment.noise(sx)))
    A = np.column_stack([X, np.ones(200)])
    ridge = np.linalg.solve(A.T @ A / 200 + sx**2 * np.diag([1.0, 1.0, 1.0, 0.0]),
                            A.T @ y / 200)
    got = np.append(post.params["weights"][0][0, :, 0], post.params["biases"][0][0])
    np.testing.assert_allclose(got, ridge, atol=0.03)
    assert post.config["augment"] == "noise(std=0.5)"


def test_ensemble_members_take_the_augmentation_through_their_training():
    """Every member of an ensemble trains on augmented batches (the shared loop's objective):
    with input noise their weights shrink towards the ridge solution, not least squares."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((100, 2))
    y = X @ np.array([2.0, -1.0]) + 0.05 * rng.standard_normal(100)
    train = br.MAP(optimizer="sgd", lr=0.05, steps=8000, augment=augment.noise(1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        post = br.fit(br.Linear(), X, y, prior=br.Flat(), likelihood=br.GaussianLikelihood(1.0),
                      method=br.Ensemble(members=3, training=train))
    w = np.asarray(post.params["weights"][0])[:, :, 0]  # (members, 2)
    A = np.column_stack([X, np.ones(100)])
    ridge = np.linalg.solve(A.T @ A / 100 + np.diag([1.0, 1.0, 0.0]), A.T @ y / 100)[:2]
    np.testing.assert_allclose(w, np.broadcast_to(ridge, w.shape), atol=0.05)
    assert np.all(np.abs(w) < np.abs(np.linalg.lstsq(A, y, rcond=None)[0][:2]) - 0.3)


def test_every_shift_is_equally_likely_without_max_shift():
    """Drawn from [−(D−1), D−1] and reduced mod D, shift 0 was half as likely as the others
    (found in review). 20 000 rows over D = 8: each count ~ 2 500 ± 47; allow 5 sds."""
    X = jnp.tile(jnp.arange(8.0), (20_000, 1))
    first = np.asarray(augment.shift()(jax.random.key(3), X))[:, 0].astype(int)
    counts = np.bincount(first, minlength=8)
    assert np.all(np.abs(counts - 2500) < 5 * np.sqrt(20_000 * (1 / 8) * (7 / 8))), counts


def test_lbfgs_refuses_an_objective_redrawn_every_step():
    with pytest.raises(ValueError, match=r"lbfgs.*one fixed objective"):
        br.MAP(optimizer="lbfgs", augment=augment.noise(0.1))
    with pytest.raises(ValueError, match=r"lbfgs.*one fixed objective"):
        br.MAP(optimizer="lbfgs", noise_injection={"inputs": 0.1})
