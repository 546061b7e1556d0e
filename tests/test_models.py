import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayesreg as br


def test_polynomial_raw_powers_feature_major():
    X = jnp.array([[2.0, 3.0]])
    np.testing.assert_allclose(br.Polynomial(3).features(X), [[2, 4, 8, 3, 9, 27]])
    params = br.Polynomial(3).init(jax.random.key(0), n_features=2)
    assert params["weights"][0].shape == (6, 1)
    assert params["biases"][0].shape == (1,)


def test_linear_apply_is_xw_plus_b():
    params = {"weights": [jnp.array([[1.0], [2.0]])], "biases": [jnp.array([0.5])]}
    out = br.Linear().apply(params, jnp.array([[1.0, 1.0], [0.0, -1.0]]))
    np.testing.assert_allclose(out[:, 0], [3.5, -1.5])


def test_relu_basis_is_the_books_fixed_first_layer():
    x = jnp.array([[0.0], [0.35], [0.9]])
    feats = br.relu_basis(5).features(x)
    knots = np.arange(5) / 5
    np.testing.assert_allclose(feats, np.maximum(0.0, np.asarray(x) - knots), atol=1e-7)


def test_basis_reports_bad_feature_maps():
    with pytest.raises(TypeError, match="callable"):
        br.Basis(3)
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        br.Basis(lambda X: X[:, 0]).num_features(1)


def test_mlp_shapes_and_init_scale():
    net = br.MLP(hidden=(64, 32), activation="tanh")
    params = net.init(jax.random.key(0), n_features=3, n_outputs=2)
    assert [w.shape for w in params["weights"]] == [(3, 64), (64, 32), (32, 2)]
    assert net.apply(params, jnp.ones((7, 3))).shape == (7, 2)
    relu = br.MLP(hidden=(2000,)).init(jax.random.key(1), n_features=500)
    assert float(jnp.std(relu["weights"][0])) == pytest.approx(np.sqrt(2 / 500), rel=0.02)


def test_mlp_dropout_only_with_a_key():
    net = br.MLP(hidden=(200,), dropout=0.5)
    params = net.init(jax.random.key(0), n_features=2)
    X = jnp.ones((4, 2))
    plain = net.apply(params, X)
    np.testing.assert_allclose(plain, net.apply(params, X))  # deterministic without a key
    dropped = net.apply(params, X, key=jax.random.key(1))
    assert not np.allclose(plain, dropped)
    # inverted scaling keeps the expected activation: average many masks
    keys = jax.random.split(jax.random.key(2), 4000)
    mean = jax.vmap(lambda k: net.apply(params, X, key=k))(keys).mean(0)
    np.testing.assert_allclose(mean, plain, rtol=0.05, atol=0.05)


@pytest.mark.parametrize(
    "make",
    [lambda: br.MLP(hidden=(0,)), lambda: br.MLP(activation="nope"),
     lambda: br.MLP(dropout=1.0), lambda: br.Polynomial(0), lambda: br.relu_basis(0)],
)
def test_bad_model_settings_raise(make):
    with pytest.raises(ValueError, match="must be"):
        make()


def test_param_shapes_traces_a_library_model_once_and_keeps_no_function_model():
    import jax.numpy as jnp

    from bayesreg.models import _traced_shapes, param_shapes

    _traced_shapes.cache_clear()
    first = param_shapes(br.MLP((4,)), 3, 1)
    again = param_shapes(br.MLP((4,)), 3, 1)  # an equal model: the kept shapes
    assert _traced_shapes.cache_info().hits == 1 and again == first
    again["weights"].append("changed by a caller")
    assert len(param_shapes(br.MLP((4,)), 3, 1)["weights"]) == 2  # the kept entry is intact
    # the model, the inputs and the outputs are all in the key
    assert param_shapes(br.MLP((4,)), 3, 2)["weights"][1].shape == (4, 2)
    assert param_shapes(br.MLP((4,)), 5, 1)["weights"][0].shape == (5, 4)
    assert param_shapes(br.MLP((6,)), 3, 1)["weights"][0].shape == (3, 6)
    # 64-bit mode decides what a float64 request gives (float32 with it off)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "float64 ... truncated to float32"
        assert param_shapes(br.MLP((4,)), 3, 1, np.float64)["weights"][0].dtype == jnp.float32
    with jax.enable_x64(True):
        assert param_shapes(br.MLP((4,)), 3, 1, np.float64)["weights"][0].dtype == jnp.float64
    fm = br.FunctionModel(lambda p, X: X @ p["w"], {"w": jnp.ones((3, 1))})
    size = _traced_shapes.cache_info().currsize
    assert param_shapes(fm, 3, 1)["weights"][0].shape == (3, 1)
    assert _traced_shapes.cache_info().currsize == size  # the user's arrays are not kept
    # a Basis's shapes come from its function, which may read state that changes
    centres = [np.linspace(0, 1, 3)]

    def rbf(X):
        return jnp.exp(-((X[:, :1] - centres[0]) ** 2))

    assert param_shapes(br.Basis(rbf), 1, 1)["weights"][0].shape == (3, 1)
    centres[0] = np.linspace(0, 1, 5)
    assert param_shapes(br.Basis(rbf), 1, 1)["weights"][0].shape == (5, 1)
