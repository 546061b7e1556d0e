import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import bayesreg as br


def test_gaussian_log_prob_fixed_and_learned():
    y, f = np.array([0.3, -1.0]), np.array([[0.0], [0.5]])
    got = br.GaussianLikelihood(0.7).log_prob(jnp.asarray(y), jnp.asarray(f), {})
    np.testing.assert_allclose(got, stats.norm.logpdf(y, f[:, 0], 0.7), rtol=1e-6)
    lik = br.GaussianLikelihood()
    theta = {"log_noise": jnp.log(1.3)}
    got = lik.log_prob(jnp.asarray(y), jnp.asarray(f), theta)
    np.testing.assert_allclose(got, stats.norm.logpdf(y, f[:, 0], 1.3), rtol=1e-6)
    assert float(lik.init_params(np.array([0.0, 2.0]))["log_noise"]) == pytest.approx(0.0)


def test_classification_log_probs():
    z = np.array([[0.3], [-2.0]])
    y = np.array([1.0, 0.0])
    got = br.Bernoulli().log_prob(jnp.asarray(y), jnp.asarray(z), {})
    p = 1 / (1 + np.exp(-z[:, 0]))
    np.testing.assert_allclose(got, np.log(np.where(y == 1, p, 1 - p)), rtol=1e-6)
    logits = np.array([[1.0, 2.0, 0.0], [0.0, 0.0, 3.0]])
    got = br.Categorical(3).log_prob(jnp.array([1, 2]), jnp.asarray(logits), {})
    ref = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    np.testing.assert_allclose(got, [ref[0, 1], ref[1, 2]], rtol=1e-6)


def test_bad_likelihood_settings():
    with pytest.raises(ValueError, match="noise"):
        br.GaussianLikelihood(0.0)
    with pytest.raises(ValueError, match="0/1"):
        br.Bernoulli().check_targets(np.array([0.0, 2.0]))
    with pytest.raises(ValueError, match="num_classes"):
        br.Categorical(2).check_targets(np.array([0.0, 2.0]))


def test_target_std_by_blocks_equals_numpy():
    from bayesreg.likelihoods import STD_BLOCK, target_std

    y = np.random.default_rng(0).normal(3.0, 2.0, 2 * STD_BLOCK + 7).astype(np.float32)
    # float64 sums over blocks: agrees with NumPy's float64 std to rounding
    assert target_std(y) == pytest.approx(float(np.std(y.astype(np.float64))), rel=1e-9)
    assert target_std(y[:5]) == pytest.approx(float(np.std(y[:5])), rel=1e-6)
