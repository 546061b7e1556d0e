import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayesreg as br
from bayesreg.inference.dropout import DropoutNetwork, sample_mask

QUICK = br.MAP(steps=600)


@pytest.fixture(scope="module")
def gap():
    return br.datasets.gap_example(n=60, noise=0.1)


def test_bernoulli_dropout_at_rate_zero_is_the_plain_network(gap):
    X, y = gap
    lik = br.GaussianLikelihood(0.1)
    a = br.fit(br.MLP((16,)), X, y, method=br.MCDropout(rate=0.0, num_samples=5, training=QUICK),
               likelihood=lik, seed=3)
    b = br.fit(br.MLP((16,)), X, y, method=QUICK, likelihood=lik, seed=3)
    pa, pb = a.predict(X), b.predict(X)
    np.testing.assert_allclose(pa.draws, np.repeat(pb.draws, 5, 0), rtol=1e-5, atol=1e-6)
    assert np.all(pa.epistemic_std < 1e-6)


@pytest.mark.parametrize("kind", ["bernoulli", "gaussian", "uniform"])
def test_masks_have_mean_one_and_the_documented_variance(kind):
    z = sample_mask(jax.random.key(0), (400_000,), 0.2, kind)
    var = {"bernoulli": 0.2 / 0.8, "gaussian": 0.2 / 0.8, "uniform": 1 / 3}[kind]
    # 400 000 draws: standard error of the mean sqrt(var/4e5) < 0.001
    assert float(jnp.mean(z)) == pytest.approx(1.0, abs=0.004)
    assert float(jnp.var(z)) == pytest.approx(var, rel=0.02)


def test_masks_are_folded_into_whole_function_draws():
    net = DropoutNetwork(br.MLP((8,)), 0.3, "bernoulli", drop_input=True)
    params = net.init(jax.random.key(0), 2)
    draws = net.masked_params(params, jax.random.key(1), 7)
    assert draws["weights"][0].shape == (7, 2, 8)
    w0 = np.asarray(draws["weights"][0])
    ratio = w0 / np.asarray(params["weights"][0])
    # one mask value per input unit, shared by every output of that row: 0 or 1/(1 − 0.3)
    assert np.allclose(ratio, ratio[:, :, :1])
    values = np.unique(np.round(ratio, 4))
    assert np.all(np.isclose(values, 0.0) | np.isclose(values, 1 / 0.7, rtol=1e-4))
    # without input dropout the first layer is untouched
    net2 = DropoutNetwork(br.MLP((8,)), 0.3, "bernoulli", drop_input=False)
    np.testing.assert_array_equal(net2.masked_params(params, jax.random.key(1), 3)["weights"][0],
                                  np.repeat(np.asarray(params["weights"][0])[None], 3, 0))


def test_objective_uses_the_tempered_prior(gap):
    """With fixed noise the dropout objective is ½·MSE + λ‖W‖², λ = (1−p)/(2Nτs²): the
    weights are shrunk less than under MAP with the same prior, and more with a smaller s."""
    X, y = gap
    lik = br.GaussianLikelihood(0.1)

    def norm(post):
        return float(np.mean([np.sum(np.asarray(w) ** 2) for w in post.params["weights"]]))

    big = br.fit(br.MLP((16,)), X, y, prior=br.Gaussian(3.0), likelihood=lik,
                 method=br.MCDropout(rate=0.2, num_samples=20, training=QUICK))
    small = br.fit(br.MLP((16,)), X, y, prior=br.Gaussian(0.1), likelihood=lik,
                   method=br.MCDropout(rate=0.2, num_samples=20, training=QUICK))
    assert norm(small) < norm(big)


def test_learned_noise_maximises_the_validation_log_likelihood(gap):
    X, y = gap
    post = br.fit(br.MLP((32,)), X, y, method=br.MCDropout(rate=0.05, training=br.MAP(
        steps=1500)))
    sigma = post.diagnostics["noise_std"]
    assert np.all(post.noise_std() == pytest.approx(sigma))
    assert 0.05 < sigma < 0.2  # the data's noise is 0.1
    assert np.isfinite(post.diagnostics["validation_loglik"])


def test_mlp_dropout_must_agree_with_the_method():
    X, y = br.datasets.gap_example(n=20)
    with pytest.raises(ValueError, match="differs"):
        br.fit(br.MLP((8,), dropout=0.3), X, y, method=br.MCDropout(rate=0.1))
    with pytest.raises(ValueError, match="MLP"):
        br.fit(br.Linear(), X, y, method=br.MCDropout())
    with pytest.raises(ValueError, match="mask"):
        br.MCDropout(mask="beta")
    with pytest.raises(ValueError, match="rate"):
        br.MCDropout(rate=1.0)
