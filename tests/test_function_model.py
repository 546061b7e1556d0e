"""br.FunctionModel: a user's JAX function with a prior, under every method that takes it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayesreg as br

RNG = np.random.default_rng(0)
XL = RNG.normal(size=(40, 3))
YL = XL @ np.array([1.0, -2.0, 0.5]) + 0.7 + 0.3 * RNG.normal(size=40)
XN = np.linspace(-2, 2, 24)
YN = np.sin(1.5 * XN) + 0.1 * RNG.normal(size=24)
SIGMA = 0.3


def linear(p, X):
    return X @ p["w"] + p["b"]


def tanh_net(p, X):
    return jnp.tanh(X @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]


def tanh_params(key, width=6):
    k1, k2 = jax.random.split(key)
    return {"W1": jax.random.normal(k1, (1, width)), "b1": jnp.zeros(width),
            "W2": jax.random.normal(k2, (width, 1)) / np.sqrt(width), "b2": jnp.zeros(1)}


def tanh_model(**kw):
    return br.FunctionModel(tanh_net, tanh_params(jax.random.key(1)), init=tanh_params, **kw)


# -- the linear case against the closed form ----------------------------------------------------
def test_a_linear_function_under_laplace_equals_exact_on_linear():
    # for f linear in φ and a Gaussian likelihood the Laplace approximation is the posterior
    # (GGN = Hessian, the log posterior is quadratic, the mode Newton-refined in float64), so
    # the gap is rounding: the 2e-3 and 2% hold with room; measured 3.5e-7 and 1e-7
    prior, lik = br.Gaussian(2.0), br.GaussianLikelihood(SIGMA)
    fm = br.FunctionModel(linear, {"w": jnp.zeros(3), "b": jnp.zeros(())})
    lap = br.fit(fm, XL, YL, method=br.LaplaceApprox(), prior=prior, likelihood=lik)
    exact = br.fit(br.Linear(), XL, YL, method=br.Exact(), prior=prior, likelihood=lik)
    Xs = np.concatenate([XL[:5], 3 * RNG.normal(size=(5, 3))])
    a, b = lap.predict(Xs), exact.predict(Xs)
    np.testing.assert_allclose(a.mean, b.mean, atol=2e-3)
    np.testing.assert_allclose(a.epistemic_std, b.epistemic_std, rtol=0.02)
    np.testing.assert_allclose(a.std, b.std, rtol=0.02)
    # and to float32 rounding of a 4-parameter solve (well inside 1e-4)
    np.testing.assert_allclose(a.mean, b.mean, atol=1e-4)
    np.testing.assert_allclose(a.epistemic_std, b.epistemic_std, rtol=1e-4)


def test_the_weights_and_biases_rule_puts_each_group_s_prior_on_its_leaves():
    # a Flat prior on the biases only: the intercept is then unshrunk, the slopes shrunk by a
    # tight Gaussian; a leaf put in the wrong group changes the answer by far more than 2e-3
    prior = {"weights": br.Gaussian(0.1), "biases": br.Flat()}
    lik = br.GaussianLikelihood(SIGMA)
    fm = br.FunctionModel(linear, {"w": jnp.zeros((3, 1)), "b": jnp.zeros(1)})
    assert fm.groups == ("biases", "weights")  # (3, 1) is a weight, (1,) a bias
    with pytest.warns(UserWarning, match="Flat prior is improper"):
        lap = br.fit(fm, XL, YL, method=br.LaplaceApprox(), prior=prior, likelihood=lik)
    with pytest.warns(UserWarning, match="Flat prior is improper"):
        exact = br.fit(br.Linear(), XL, YL, method=br.Exact(), prior=prior, likelihood=lik)
    np.testing.assert_allclose(lap.predict(XL).mean, exact.predict(XL).mean, atol=2e-3)


def test_biases_overrides_the_rule():
    params = {"w": jnp.zeros(3), "b": jnp.zeros(())}
    assert br.FunctionModel(linear, params).groups == ("biases", "biases")
    by_tree = br.FunctionModel(linear, params, biases={"w": False, "b": True})
    by_name = br.FunctionModel(linear, params, biases=lambda name, leaf: name == "b")
    assert by_tree.groups == by_name.groups == ("biases", "weights")
    with pytest.raises(ValueError, match="pytree of booleans"):
        br.FunctionModel(linear, params, biases={"w": False})
    with pytest.raises(TypeError, match="True or False"):
        br.FunctionModel(linear, params, biases=lambda name, leaf: "yes")


def test_a_pytree_of_priors_gives_each_leaf_its_own_prior():
    fm = br.FunctionModel(lambda p, X: X @ p["a"] @ p["c"] + p["b"],
                          {"a": jnp.ones((2, 3)), "c": jnp.full((3, 1), 2.0),
                           "b": jnp.full(1, 3.0)})
    leaf_priors = {"a": br.Gaussian(1.0), "c": br.Gaussian(0.5), "b": br.Gaussian(4.0, loc=1.0)}
    spec = fm.prior(leaf_priors)
    split = fm.split(fm.params)
    combined = sum(float(spec[g].log_prob(split[g])) for g in ("weights", "biases"))
    per_leaf = sum(float(leaf_priors[k].log_prob(v)) for k, v in fm.params.items())
    assert combined == pytest.approx(per_leaf, rel=1e-6)
    with pytest.raises(ValueError, match="different kinds"):
        fm.prior({"a": br.Gaussian(1.0), "c": br.Laplace(1.0), "b": br.Flat()})
    with pytest.raises(ValueError, match="structure of params"):
        fm.prior({"a": br.Gaussian(1.0)})


# -- a user's network under the methods that take it ----------------------------------------------
ROUND_TRIP = {
    "MAP": lambda: br.MAP(steps=300),
    "Ensemble": lambda: br.Ensemble(members=3, training=br.MAP(steps=200)),
    "LaplaceApprox": lambda: br.LaplaceApprox(training=br.MAP(steps=300)),
    "NUTS": lambda: br.NUTS(num_warmup=150, num_samples=50, num_chains=1),
    "VI": lambda: br.VI(),
    "SWAG": lambda: br.SWAG(members=2),
    "SGLD": lambda: br.SGLD(),
}
FAST = ("MAP", "Ensemble", "LaplaceApprox")


@pytest.mark.parametrize("name", [n if n in FAST else pytest.param(n, marks=pytest.mark.slow)
                                  for n in ROUND_TRIP])
def test_a_tanh_network_fits_predicts_and_round_trips(name, tmp_path):
    fm = tanh_model()
    # MAP with the prior and the noise left out: both learned (one scale per array)
    given = ({} if name == "MAP" else
             {"prior": br.Gaussian(1.0), "likelihood": br.GaussianLikelihood(0.1)})
    post = br.fit(fm, XN, YN, method=ROUND_TRIP[name](), seed=0, **given)
    if name == "MAP":
        scales = post.diagnostics["prior_scales"]
        assert len(scales["weights"]) == 2 and len(scales["biases"]) == 2
        assert 0.03 < float(post.diagnostics["noise_std"]) < 0.5
    pred = post.predict(XN)
    assert pred.mean.shape == (24,)
    # a fit, not the start: the network at its initial values is far worse than the noise
    start = np.asarray(tanh_net(fm.params, XN[:, None]))[:, 0]
    assert np.sqrt(np.mean((pred.mean - YN) ** 2)) < 0.5 * np.sqrt(np.mean((start - YN) ** 2))
    if name != "MAP":
        assert np.all(pred.epistemic_std > 0)
    path = tmp_path / "post.npz"
    post.save(path)
    back = br.load(path, model=fm).predict(XN)
    np.testing.assert_array_equal(back.mean, pred.mean)
    np.testing.assert_array_equal(back.std, pred.std)


def test_multiple_outputs_reach_a_categorical_likelihood():
    X = np.concatenate([RNG.normal(-2, 0.5, (10, 1)), RNG.normal(2, 0.5, (10, 1))])
    y = np.repeat([0, 2], 10)
    fm = br.FunctionModel(linear, {"w": jnp.zeros((1, 3)), "b": jnp.zeros(3)})
    post = br.fit(fm, X, y, method=br.MAP(steps=200), likelihood=br.Categorical(3),
                  prior=br.Gaussian(3.0))
    assert np.mean(post.predict(X).predict_class() == y) == 1.0


# -- what it refuses, clearly ----------------------------------------------------------------------
@pytest.mark.parametrize("method, match", [
    (br.Exact(), "Exact needs a linear-in-parameters model.*FunctionModel.*LaplaceApprox"),
    (br.MCDropout(), "MCDropout needs a br.MLP.*hidden units.*FunctionModel.*br.Ensemble"),
    (br.LaplaceApprox(subset="last_layer"), "last layer is unknown.*LaplaceApprox()"),
    (br.Ensemble(members=3), "init=.*bagging=True"),
    (br.SWAG(members=2), "init="),
])
def test_methods_that_need_more_than_a_function_refuse_it(method, match):
    fm = br.FunctionModel(linear, {"w": jnp.zeros((1, 1)), "b": jnp.zeros(1)})
    with pytest.raises(ValueError, match=match):
        br.fit(fm, XN, YN, method=method, likelihood=br.GaussianLikelihood(0.1))


def test_bad_params_and_outputs_are_refused_at_the_start():
    with pytest.raises(TypeError, match="floating-point"):
        br.FunctionModel(linear, {"w": jnp.zeros((1, 1)), "n": jnp.array(3)})
    with pytest.raises(ValueError, match="at least one array"):
        br.FunctionModel(linear, {})
    with pytest.raises(ValueError, match="NaN or inf"):
        br.FunctionModel(linear, {"w": jnp.array([jnp.nan])})
    two = br.FunctionModel(linear, {"w": jnp.zeros((1, 2)), "b": jnp.zeros(2)})
    with pytest.raises(ValueError, match=r"returns 2 output.*need 1"):
        br.fit(two, XN, YN, likelihood=br.GaussianLikelihood(0.1))
    wrong_d = br.FunctionModel(linear, {"w": jnp.zeros((3, 1)), "b": jnp.zeros(1)})
    with pytest.raises(ValueError, match=r"apply failed on X of shape \(N, 1\)"):
        br.fit(wrong_d, XN, YN, likelihood=br.GaussianLikelihood(0.1))
    flat = br.FunctionModel(lambda p, X: (X @ p["w"]).ravel(), {"w": jnp.zeros((1, 1))})
    with pytest.raises(ValueError, match=r"must return \(N,\) or \(N, K\)"):
        br.FunctionModel(lambda p, X: jnp.zeros((1,)) + p["w"], {"w": jnp.zeros(())}).n_outputs(1)
    assert flat.n_outputs(1) == 1
    bad_init = br.FunctionModel(tanh_net, tanh_params(jax.random.key(0)),
                                init=lambda key: tanh_params(key, width=3))
    with pytest.raises(ValueError, match="init\\(key\\) returned 'W1' of shape"):
        br.fit(bad_init, XN, YN, method=br.MAP(steps=5), likelihood=br.GaussianLikelihood(0.1))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("fm") / "post.npz"
    fm = br.FunctionModel(linear, {"w": jnp.zeros((1, 1)), "b": jnp.zeros(1)})
    br.fit(fm, XN, YN, method=br.MAP(steps=20), prior=br.Gaussian(1.0),
           likelihood=br.GaussianLikelihood(0.1)).save(path)
    return path


def test_loading_without_the_model_asks_for_it(saved):
    with pytest.raises(ValueError, match=r"saved from a FunctionModel \(linear\).*model=fm"):
        br.load(saved)


@pytest.mark.parametrize("params, match", [
    ({"w": jnp.zeros((2, 1)), "b": jnp.zeros(1)}, "'w' has shape \\[1, 1\\]; model='s 'w' has"),
    ({"v": jnp.zeros((1, 1)), "b": jnp.zeros(1)}, "'w' has name"),
    ({"w": jnp.zeros((1, 1))}, "with 2 parameter arrays; model= has 1"),
])
def test_loading_with_another_structure_is_refused(saved, params, match):
    with pytest.raises(ValueError, match=match):
        br.load(saved, model=br.FunctionModel(linear, params))


def test_a_function_model_file_and_a_built_in_model_file_do_not_mix(saved, tmp_path):
    with pytest.raises(ValueError, match="saved from a FunctionModel; model= is a Linear"):
        br.load(saved, model=br.Linear())
    path = tmp_path / "linear.npz"
    br.fit(br.Linear(), XN, YN, method=br.MAP(steps=20)).save(path)
    fm = br.FunctionModel(linear, {"w": jnp.zeros((1, 1)), "b": jnp.zeros(1)})
    with pytest.raises(ValueError, match="model= is a FunctionModel but the file was saved "
                                         "from Linear"):
        br.load(path, model=fm)


def test_only_weights_or_only_biases_save_and_load(tmp_path):
    # the linear vector model has two "biases" (ndim <= 1) and no weights: the file holds an
    # empty group, which loads back
    fm = br.FunctionModel(linear, {"w": jnp.zeros(1), "b": jnp.zeros(())})
    assert fm.groups == ("biases", "biases")
    post = br.fit(fm, XN, YN, method=br.MAP(steps=50), prior=br.Gaussian(1.0),
                  likelihood=br.GaussianLikelihood(0.1))
    post.save(tmp_path / "p.npz")
    back = br.load(tmp_path / "p.npz", model=fm)
    np.testing.assert_array_equal(back.predict(XN).mean, post.predict(XN).mean)


# -- adapters ------------------------------------------------------------------------------------
@pytest.mark.slow  # ~4 s: in the slow set, which CI runs, to keep the default suite under 10 min
def test_an_equinox_module_fits_as_an_ensemble_and_round_trips(tmp_path):
    eqx = pytest.importorskip("equinox")

    def make(key):
        return eqx.nn.MLP(1, "scalar", 8, 1, activation=jnp.tanh, key=key)

    fm = br.FunctionModel.from_equinox(make(jax.random.key(0)), init=make)
    assert fm.groups == ("weights", "biases", "weights", "biases")
    post = br.fit(fm, XN, YN, method=br.Ensemble(members=2, training=br.MAP(steps=200)),
                  prior=br.Gaussian(1.0), likelihood=br.GaussianLikelihood(0.1))
    pred = post.predict(XN)
    assert np.sqrt(np.mean((pred.mean - YN) ** 2)) < 0.3
    # the members started apart (init=) and stayed apart
    first = jax.tree_util.tree_leaves(post.params)[0]
    assert not np.allclose(first[0], first[1])
    post.save(tmp_path / "eqx.npz")
    back = br.load(tmp_path / "eqx.npz", model=fm)
    np.testing.assert_array_equal(back.predict(XN).mean, pred.mean)


@pytest.mark.slow  # ~4 s: in the slow set, which CI runs, to keep the default suite under 10 min
def test_a_flax_nnx_module_fits_and_round_trips(tmp_path):
    nnx = pytest.importorskip("flax.nnx")

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.hidden = nnx.Linear(1, 8, rngs=rngs)
            self.out = nnx.Linear(8, 1, rngs=rngs)

        def __call__(self, x):
            return self.out(jnp.tanh(self.hidden(x)))

    fm = br.FunctionModel.from_flax(Net(nnx.Rngs(0)), init=lambda key: Net(nnx.Rngs(key)))
    assert fm.groups == ("biases", "weights", "biases", "weights")
    # ensemble members' starts: init= under jax.vmap, one module per key
    starts = jax.vmap(lambda k: fm.init(k, 1))(jax.random.split(jax.random.key(0), 2))
    assert not np.allclose(starts["weights"][0][0], starts["weights"][0][1])
    post = br.fit(fm, XN, YN, method=br.MAP(steps=300), prior=br.Gaussian(1.0),
                  likelihood=br.GaussianLikelihood(0.1))
    pred = post.predict(XN)
    assert np.sqrt(np.mean((pred.mean - YN) ** 2)) < 0.3
    post.save(tmp_path / "flax.npz")
    back = br.load(tmp_path / "flax.npz", model=fm)
    np.testing.assert_array_equal(back.predict(XN).mean, pred.mean)


@pytest.mark.slow  # an ensemble of 4 networks, 500 steps each, as a reader would run it
def test_the_docs_page_runs(tmp_path, monkeypatch):
    pytest.importorskip("equinox")
    pytest.importorskip("flax")
    import pathlib
    import re

    page = pathlib.Path(__file__).resolve().parents[1] / "docs" / "own-model.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
    assert len(blocks) == 5
    monkeypatch.chdir(tmp_path)  # the page saves a file
    namespace = {}
    exec(compile("\n".join(blocks), str(page), "exec"), namespace)
    assert namespace["fm_eqx"].groups == ("weights", "biases", "weights", "biases")
    assert namespace["fm_flax"].names[0] == "hidden.bias.value"
