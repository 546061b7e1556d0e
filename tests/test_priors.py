import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bayesreg as br
from bayesreg.priors import as_prior_spec, log_prior

PRIORS = [
    (br.Gaussian(0.7, loc=0.3), dist.Normal(0.3, 0.7)),
    (br.Laplace(0.4, loc=-0.2), dist.Laplace(-0.2, 0.4)),
    (br.StudentT(3.0, 1.5, loc=0.1), dist.StudentT(3.0, 0.1, 1.5)),
    (br.Cauchy(2.0), dist.Cauchy(0.0, 2.0)),
]

PARAMS = {"weights": [jnp.array([[0.5, -1.0], [2.0, 0.1]])], "biases": [jnp.array([-0.3, 0.9])]}


@pytest.mark.parametrize(("prior", "reference"), PRIORS)
def test_log_prob_matches_numpyro(prior, reference):
    leaves = jax.tree_util.tree_leaves(PARAMS)
    expected = sum(float(jnp.sum(reference.log_prob(a))) for a in leaves)
    assert float(prior.log_prob(PARAMS)) == pytest.approx(expected, rel=1e-5)
    got = prior.to_numpyro()
    assert type(got) is type(reference)
    assert float(jnp.sum(got.log_prob(leaves[0]))) == pytest.approx(
        float(jnp.sum(reference.log_prob(leaves[0]))), rel=1e-6)


@pytest.mark.parametrize(("prior", "reference"), PRIORS)
def test_penalty_is_negative_log_prob_up_to_a_constant(prior, reference):
    other = jax.tree_util.tree_map(lambda a: 0.3 * a + 1.0, PARAMS)
    d_pen = float(prior.penalty(PARAMS) - prior.penalty(other))
    d_log = float(prior.log_prob(other) - prior.log_prob(PARAMS))
    assert d_pen == pytest.approx(d_log, rel=1e-5, abs=1e-5)
    at_loc = jax.tree_util.tree_map(lambda a: jnp.full_like(a, prior.loc), PARAMS)
    assert float(prior.penalty(at_loc)) == pytest.approx(0.0, abs=1e-7)


def test_gaussian_penalty_is_l2_and_laplace_penalty_is_l1():
    phi = jnp.array([1.0, -2.0, 3.0])
    assert float(br.Gaussian(2.0).penalty(phi)) == pytest.approx(14 / 8)
    assert float(br.Laplace(0.5).penalty(phi)) == pytest.approx(12.0)


def test_flat_is_improper_and_zero():
    assert float(br.Flat().log_prob(PARAMS)) == 0.0
    assert float(br.Flat().penalty(PARAMS)) == 0.0
    assert not br.Flat().proper
    assert isinstance(br.Flat().to_numpyro(), dist.ImproperUniform)


def test_pytree_loc_is_l2_sp():
    loc = jax.tree_util.tree_map(lambda a: a + 0.5, PARAMS)
    prior = br.Gaussian(1.0, loc=loc)
    assert float(prior.penalty(PARAMS)) == pytest.approx(0.5 * 0.25 * 6)
    spec = as_prior_spec(prior)
    assert float(log_prior(spec, PARAMS)) == pytest.approx(float(prior.log_prob(PARAMS)))
    assert float(spec["biases"].penalty(PARAMS["biases"])) == pytest.approx(0.5 * 0.25 * 2)


def test_spec_dict_applies_each_group_its_own_prior():
    spec = as_prior_spec({"weights": br.Gaussian(1.0), "biases": br.Flat()})
    expected = float(br.Gaussian(1.0).log_prob(PARAMS["weights"]))
    assert float(log_prior(spec, PARAMS)) == pytest.approx(expected)


@pytest.mark.parametrize(
    "make",
    [
        lambda: br.Gaussian(0.0),
        lambda: br.Gaussian(-1.0),
        lambda: br.Gaussian(float("nan")),
        lambda: br.Laplace(0.0),
        lambda: br.StudentT(0.0, 1.0),
        lambda: br.StudentT(-2.0, 1.0),
        lambda: br.StudentT(3.0, float("inf")),
        lambda: br.Cauchy(-0.1),
        lambda: br.Gaussian(1.0, loc=float("nan")),
    ],
)
def test_invalid_parameters_raise_at_construction(make):
    with pytest.raises(ValueError, match="must be"):
        make()


def test_bad_spec_raises():
    with pytest.raises(ValueError, match="weights"):
        as_prior_spec({"weights": br.Gaussian(1.0)})
    with pytest.raises(TypeError, match="prior"):
        as_prior_spec(1.0)


def test_priors_are_pytrees_with_their_numbers_as_leaves():
    leaves = jax.tree_util.tree_leaves(br.StudentT(3.0, 2.0, loc=0.5))
    assert leaves == [3.0, 2.0, 0.5]
    doubled = jax.tree_util.tree_map(lambda v: 2 * v, br.Gaussian(1.0))
    assert doubled.scale == 2.0


@settings(max_examples=30, deadline=None)
@given(scale=st.floats(0.05, 20.0), x=st.floats(-50.0, 50.0))
def test_gaussian_log_prob_property(scale, x):
    got = float(br.Gaussian(scale).log_prob(jnp.array([x], jnp.float32)))
    expected = -0.5 * (x / scale) ** 2 - np.log(scale) - 0.5 * np.log(2 * np.pi)
    assert got == pytest.approx(expected, rel=1e-4, abs=1e-4)


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: br.Gaussian("1"), "Gaussian scale"),
        (lambda: br.Gaussian(True), "Gaussian scale"),
        (lambda: br.Gaussian(None), "Gaussian scale"),
        (lambda: br.Gaussian(1.0, loc="0"), "loc"),
        (lambda: br.Laplace(["1", 2.0]), r"Laplace scale\[0\]"),
        (lambda: br.StudentT("3", 1.0), "StudentT df"),
        (lambda: br.Cauchy(b"2"), "Cauchy scale"),
        (lambda: br.HalfNormal("1"), "HalfNormal scale"),
        (lambda: br.Gaussian(1 + 2j), "Gaussian scale"),
    ],
)
def test_non_numeric_parameters_are_type_errors_naming_the_argument(make, name):
    # numpy parses "1" as 1.0: without a type check the string reached JAX as a scale
    with pytest.raises(TypeError, match=f"{name} must be a (real )?number"):
        make()


def test_numeric_scales_of_every_kind_are_accepted():
    assert br.Gaussian(np.float32(2.0)).scale == 2.0
    assert br.Gaussian(2).scale == 2
    assert br.Laplace([0.5, np.array(1.0), jnp.array(2.0)]).scale[2] == 2.0
    assert br.Gaussian(1.0, loc=np.array([0.0, 1.0])).loc[1] == 1.0


def test_gaussian_density_and_its_scale_gradient_stay_finite_at_tiny_scales():
    # a hierarchical prior's funnel reaches scales far below 1e-10; written as z²·(1/s²)
    # the gradient in s went through s⁴ (inf below s ~ 1e-10 in float32) and the value
    # was 0·inf = NaN at z = 0 below s ~ 1e-19. (z·(1/s))² has neither problem
    for log_s in (-23.0, -40.0):
        z = jnp.array([0.0, 1.0, -2.0]) * np.exp(log_s / 2)

        def logp(log_s, z=z):
            return br.Gaussian(1.0).with_scale(jnp.exp(log_s)).log_prob(z)

        value, grad = jax.value_and_grad(logp)(jnp.float32(log_s))
        assert np.isfinite(value) and np.isfinite(grad), (log_s, value, grad)
