"""br.transfer_prior and br.warm_start: a prior centred on part of a pretrained network."""

import jax
import numpy as np
import pytest

import bayesreg as br
from bayesreg.transfer import WarmStart, layer_indices, pretrained_params


def _mlp_params(key, sizes):
    net = br.MLP(tuple(sizes[1:-1]))
    return net.init(jax.random.key(key), sizes[0], sizes[-1])


def test_linear_map_is_ridge_shrunk_towards_loc():
    """Linear model, σ fixed, every parameter under N(θ₀, s²): the mode is in closed form,
    θ̂ = θ₀ + (AᵀA + λI)⁻¹ Aᵀ(y − Aθ₀) with A = [X, 1] and λ = σ²/s² — ridge on the
    residual of the prior's centre, so θ̂ → θ₀ as s → 0 and → least squares as s → ∞."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.2 * rng.standard_normal(30)
    phi0 = {"weights": [np.array([[3.0], [1.0], [-1.0]])], "biases": [np.array([2.0])]}
    sigma, s = 0.2, 0.05  # λ = 16: the centre matters (least squares is far from θ₀)
    post = br.fit(br.Linear(), X, y, prior=br.transfer_prior(phi0, s, layers=slice(None)),
                  likelihood=br.GaussianLikelihood(sigma), method=br.MAP(optimizer="lbfgs"),
                  dtype="float64", center=False)
    A = np.hstack([X, np.ones((30, 1))])
    theta0 = np.array([3.0, 1.0, -1.0, 2.0])
    lam = sigma**2 / s**2
    expected = theta0 + np.linalg.solve(A.T @ A + lam * np.eye(4), A.T @ (y - A @ theta0))
    got = np.concatenate([post.params["weights"][0][0, :, 0], post.params["biases"][0][0]])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    zero_centred = np.linalg.solve(A.T @ A + lam * np.eye(4), A.T @ y)
    assert np.abs(expected - zero_centred).max() > 0.5  # the check sees the centre


def test_only_the_chosen_layers_are_centred():
    phi0 = _mlp_params(0, (4, 8, 8, 3))
    spec = br.transfer_prior(phi0, 0.1, rest=2.0)  # default: layers 0 and 1, not the head
    params = _mlp_params(1, (4, 8, 8, 10))  # a 10-class head where the pretext had 3 outputs
    expected = 0.0
    for g in ("weights", "biases"):
        for i in range(3):
            centre = phi0[g][i] if i < 2 else 0.0
            scale = 0.1 if i < 2 else 2.0
            expected += np.sum((np.asarray(params[g][i]) - centre) ** 2) / (2 * scale**2)
    got = sum(float(spec[g].penalty(params[g])) for g in ("weights", "biases"))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    at_centre = {g: [*phi0[g][:2], params[g][2]] for g in ("weights", "biases")}
    head = sum(np.sum(np.asarray(at_centre[g][2]) ** 2) / 8 for g in ("weights", "biases"))
    np.testing.assert_allclose(sum(float(spec[g].penalty(at_centre[g])) for g in spec), head,
                               rtol=1e-5)


def test_layers_and_pretrained_are_checked():
    assert layer_indices(slice(0, -1), 3) == [0, 1]
    assert layer_indices(-1, 3) == [2]
    assert layer_indices((2, 0), 3) == [0, 2]
    with pytest.raises(ValueError, match="layer numbers"):
        layer_indices([3], 3)
    with pytest.raises(ValueError, match="twice"):
        layer_indices([0, -3], 3)
    with pytest.raises(TypeError, match="Posterior with one draw or a dict"):
        br.transfer_prior([np.ones((2, 2))], 0.1)
    with pytest.raises(ValueError, match="scale"):
        br.transfer_prior(_mlp_params(0, (2, 4, 1)), 0.0)
    with pytest.raises(ValueError, match="not in the pretrained network"):
        br.transfer_prior(_mlp_params(0, (2, 4, 1)), 0.1, layers=slice(0, 3), n_layers=3)


def test_a_body_of_other_sizes_is_refused_by_the_fit():
    X = np.random.default_rng(0).standard_normal((20, 4))
    y = np.arange(20) % 3
    prior = br.transfer_prior(_mlp_params(0, (4, 8, 8, 5)), 0.1)
    with pytest.raises(ValueError, match="array 1 of shape"):
        br.fit(br.MLP((8, 6)), X, y, prior=prior, likelihood=br.Categorical(3),
               method=br.MAP(steps=5))
    with pytest.raises(ValueError, match="layer 1"):
        br.fit(br.warm_start(br.MLP((8, 6)), _mlp_params(0, (4, 8, 8, 5))), X, y,
               likelihood=br.Categorical(3), method=br.MAP(steps=5))


def test_warm_start_copies_the_body_and_draws_the_head():
    phi0 = _mlp_params(0, (4, 8, 8, 3))
    net = br.MLP((8, 8))
    model = br.warm_start(net, phi0)
    key = jax.random.key(7)
    got, fresh = model.init(key, 4, 10), net.init(key, 4, 10)
    for g in ("weights", "biases"):
        for i in (0, 1):
            np.testing.assert_array_equal(got[g][i], phi0[g][i])
        np.testing.assert_array_equal(got[g][2], fresh[g][2])  # the head a scratch fit gets
    assert isinstance(model, br.MLP) and model.to_dict() == net.to_dict()
    assert model == WarmStart(hidden=(8, 8)) and hash(model) == hash(net)
    with pytest.raises(TypeError, match="MLP"):
        br.warm_start(br.Linear(), phi0)


def test_l2sp_fit_from_the_body_stays_near_it_and_round_trips(tmp_path):
    """A small s holds the body at φ₀ (it moves by about s, not by the O(1) a fit from the
    same start under N(0, 1) moves it); the posterior saves and loads as a plain MLP."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 5)).astype(np.float32)
    Y = np.tanh(X @ rng.standard_normal((5, 3)))
    source = br.fit(br.MLP((16,)), X, Y, method=br.MAP(steps=300),
                    likelihood=br.GaussianLikelihood(0.1), prior=br.Gaussian(1.0))
    labels = (Y[:60, 0] > 0).astype(int)
    start = br.warm_start(br.MLP((16,)), source)

    def body_move(prior):
        post = br.fit(start, X[:60], labels, prior=prior, likelihood=br.Bernoulli(),
                      method=br.MAP(steps=300))
        move = np.abs(post.params["weights"][0][0] - source.params["weights"][0][0]).max()
        return post, move

    post, held = body_move(br.transfer_prior(source, 0.01))
    _, free = body_move(br.Gaussian(1.0))
    assert held < 0.05 < free
    post.save(tmp_path / "p")
    back = br.load(tmp_path / "p")
    assert type(back.model) is br.MLP
    np.testing.assert_allclose(back.predict(X).probs, post.predict(X).probs, rtol=1e-6)


def test_a_posterior_of_several_draws_is_refused():
    X = np.random.default_rng(0).standard_normal((30, 2))
    y = X[:, 0]
    post = br.fit(br.MLP((4,)), X, y, method=br.Ensemble(members=2, training=br.MAP(steps=20)),
                  likelihood=br.GaussianLikelihood(0.1), prior=br.Gaussian(1.0))
    with pytest.raises(ValueError, match="2 draws"):
        pretrained_params(post)


@pytest.mark.slow  # a NUTS and a VI fit: ~10 s
@pytest.mark.parametrize("method", ["nuts", "vi"])
def test_nuts_and_vi_sample_the_posterior_around_the_pretrained_centre(method):
    """The linear problem above: the posterior under N(θ₀, s²) is Gaussian with the mean
    θ̂ of the MAP test and covariance σ²(AᵀA + λI)⁻¹. NUTS's draws average to θ̂ within
    4 Monte Carlo standard errors (sd/√ESS); mean-field VI's mean of a Gaussian posterior is
    its exact mean, up to the noise of its stochastic optimisation, which 0.25 sd bounds
    (measured 0.11); both match the posterior sd within 15% (NUTS: 4 MC errors of a sd from
    ESS ≥ 400 draws, √(1/(2·400)) = 3.5% each). The zero-centred posterior mean lies 34 sd
    away, so the checks see the centre."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.2 * rng.standard_normal(30)
    phi0 = {"weights": [np.array([[3.0], [1.0], [-1.0]])], "biases": [np.array([2.0])]}
    sigma, s = 0.2, 0.05
    A = np.hstack([X, np.ones((30, 1))])
    theta0, lam = np.array([3.0, 1.0, -1.0, 2.0]), sigma**2 / s**2
    mean = theta0 + np.linalg.solve(A.T @ A + lam * np.eye(4), A.T @ (y - A @ theta0))
    sd = np.sqrt(np.diag(sigma**2 * np.linalg.inv(A.T @ A + lam * np.eye(4))))
    fitter = (br.NUTS(num_samples=500, num_warmup=300) if method == "nuts" else br.VI())
    post = br.fit(br.Linear(), X, y, prior=br.transfer_prior(phi0, s, layers=slice(None)),
                  likelihood=br.GaussianLikelihood(sigma), method=fitter, center=False)
    draws = np.concatenate([post.params["weights"][0][:, :, 0], post.params["biases"][0]], 1)
    if method == "nuts":
        ess = post.diagnostics["ess_bulk"]
        assert ess >= 400
        np.testing.assert_array_less(np.abs(draws.mean(0) - mean), 4 * sd / np.sqrt(ess))
    else:
        np.testing.assert_array_less(np.abs(draws.mean(0) - mean), 0.25 * sd)
    np.testing.assert_allclose(draws.std(0), sd, rtol=0.15)
    zero = np.linalg.solve(A.T @ A + lam * np.eye(4), A.T @ y)
    assert np.max(np.abs(zero - mean) / sd) > 20  # 34 sd
