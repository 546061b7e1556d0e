import numpy as np
import pytest

import bayesreg as br
from bayesreg.training.loop import train_compiled

SIGMA = 0.5
PRIOR = br.Gaussian(1.0)


def _coefs(post):
    """[w, b] of a linear-in-parameters fit in the units of y (``mean_params`` adds the
    target's mean that ``br.fit`` subtracted to the bias)."""
    m = post.mean_params()
    return np.append(np.asarray(m["weights"][0])[:, 0], np.asarray(m["biases"][0])[0])


@pytest.fixture(scope="module")
def exact_mean(linear_data):
    X, y, _ = linear_data
    post = br.fit(br.Linear(), X, y, method=br.Exact(), prior=PRIOR,
                  likelihood=br.GaussianLikelihood(SIGMA))
    return _coefs(post)


@pytest.mark.parametrize(
    ("method", "atol"),
    [
        (br.MAP(optimizer="gd", lr=0.02, steps=3000, schedule="constant"), 1e-4),
        (br.MAP(optimizer="momentum", lr=0.01, steps=2000), 1e-4),
        (br.MAP(optimizer="nesterov", lr=0.01, steps=2000), 1e-4),
        (br.MAP(), 1e-5),
        (br.MAP(optimizer="adamw", lr=0.05, steps=3000), 1e-4),
        (br.MAP(optimizer="sgd", lr=0.02, batch_size=20, epochs=400, schedule="cosine"), 5e-3),
        (br.MAP(optimizer="adam", lr=0.05, batch_size=32, epochs=300,
                schedule="warmup_cosine"), 5e-3),
        (br.MAP(lr=0.05, steps=3000, schedule="exponential"), 1e-4),
        (br.MAP(optimizer="lbfgs", steps=100), 1e-5),
    ],
)
def test_every_optimizer_reaches_the_posterior_mode(linear_data, exact_mean, method, atol):
    X, y, _ = linear_data
    post = br.fit(br.Linear(), X, y, method=method, prior=PRIOR,
                  likelihood=br.GaussianLikelihood(SIGMA))
    np.testing.assert_allclose(_coefs(post), exact_mean, atol=atol)


@pytest.mark.slow
def test_minibatch_plan_counts_updates(linear_data):
    X, y, _ = linear_data
    post = br.fit(br.Linear(), X, y, method=br.MAP(batch_size=30, epochs=7), prior=PRIOR)
    assert post.diagnostics["num_updates"] == 7 * (100 // 30)
    post = br.fit(br.Linear(), X, y, method=br.MAP(batch_size=30, steps=10), prior=PRIOR)
    assert post.diagnostics["num_updates"] == 12  # rounded up to whole epochs


def test_learned_noise_is_the_maximum_likelihood_sigma(linear_data):
    X, y, _ = linear_data
    method = br.MAP(hyperparameters="joint")
    post = br.fit(br.Linear(), X, y, prior=br.Flat(), likelihood=br.GaussianLikelihood(),
                  method=method)
    A = np.column_stack([X, np.ones(len(y))])
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    rss = np.sum((y - A @ coef) ** 2)
    assert post.noise_std()[0] == pytest.approx(np.sqrt(rss / len(y)), rel=1e-4)
    np.testing.assert_allclose(_coefs(post), coef, atol=1e-4)
    # the evidence under a flat prior spends γ = P degrees of freedom: RSS/(N − P), the
    # unbiased residual variance of least squares
    post = br.fit(br.Linear(), X, y, prior=br.Flat(), likelihood=br.GaussianLikelihood())
    assert float(post.diagnostics["effective_parameters"]) == pytest.approx(A.shape[1],
                                                                            rel=1e-4)
    assert post.noise_std()[0] == pytest.approx(np.sqrt(rss / (len(y) - A.shape[1])),
                                                rel=1e-4)
    np.testing.assert_allclose(_coefs(post), coef, atol=1e-4)


def test_second_fit_with_same_shapes_does_not_recompile(linear_data):
    X, y, _ = linear_data
    method = br.MAP(steps=200)
    br.fit(br.Linear(), X, y, method=method, prior=br.Gaussian(1.0))
    before = train_compiled._cache_size()
    br.fit(br.Linear(), X + 1.0, y * 2, method=method, prior=br.Gaussian(3.0), seed=5)
    br.fit(br.Linear(), X, y, method=method, prior=br.Gaussian(0.1))
    assert train_compiled._cache_size() == before


def test_same_seed_same_numbers_and_seed_matters():
    X, y = br.datasets.gap_example(n=30)
    method = br.MAP(steps=300)
    a = br.fit(br.MLP((16,)), X, y, method=method, seed=3)
    b = br.fit(br.MLP((16,)), X, y, method=method, seed=3)
    c = br.fit(br.MLP((16,)), X, y, method=method, seed=4)
    np.testing.assert_array_equal(a.params["weights"][0], b.params["weights"][0])
    assert not np.allclose(a.params["weights"][0], c.params["weights"][0])


def test_mlp_map_fits_a_curve():
    X, y = br.datasets.gap_example(n=60, noise=0.05)
    post = br.fit(br.MLP((32, 32), activation="tanh"), X, y, method=br.MAP(steps=2000),
                  prior=br.Gaussian(1.0))
    pred = post.predict(X)
    assert pred.metrics(y)["rmse"] < 0.1
    assert post.diagnostics["losses"][-1] < post.diagnostics["losses"][0]


@pytest.mark.slow
def test_dropout_mlp_trains_with_keys():
    X, y = br.datasets.gap_example(n=60, noise=0.05)
    post = br.fit(br.MLP((64,), dropout=0.2), X, y, method=br.MAP(steps=500))
    assert np.isfinite(post.diagnostics["final_loss"])


def test_progress_bar_does_not_change_the_result(linear_data, capsys):
    X, y, _ = linear_data
    a = br.fit(br.Linear(), X, y, method=br.MAP(steps=300, progress_bar=True))
    b = br.fit(br.Linear(), X, y, method=br.MAP(steps=300))
    np.testing.assert_allclose(_coefs(a), _coefs(b), rtol=1e-6)
    assert "300/300" in capsys.readouterr().err


def test_divergence_is_an_error_not_a_nan(linear_data):
    X, y, _ = linear_data
    with pytest.raises(FloatingPointError, match="lower lr"):
        br.fit(br.Linear(), X * 1e3, y, method=br.MAP(optimizer="gd", lr=10.0, steps=200,
                                                       schedule="constant"),
               likelihood=br.GaussianLikelihood(0.1))


def test_classification_map_separates_classes():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 2))
    y = (X[:, 0] + X[:, 1] > 0).astype(float)
    post = br.fit(br.Linear(), X, y, likelihood=br.Bernoulli(), method=br.MAP(steps=1000))
    w = post.params["weights"][0][0, :, 0]
    assert w[0] > 1 and w[1] > 1
    labels = rng.integers(0, 3, 150)
    Xc = np.eye(3)[labels] + 0.1 * rng.standard_normal((150, 3))
    post = br.fit(br.Linear(), Xc, labels, likelihood=br.Categorical(), method=br.MAP(steps=500))
    assert post.likelihood.num_classes == 3
    logits = Xc @ post.params["weights"][0][0] + post.params["biases"][0][0]
    assert np.mean(logits.argmax(1) == labels) > 0.95


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"optimizer": "rmsprop"}, "optimizer"), ({"lr": 0.0}, "lr"), ({"steps": 0}, "steps"),
     ({"batch_size": -1}, "batch_size"), ({"schedule": "step"}, "schedule"),
     ({"momentum": 1.0}, "momentum"), ({"epochs": 0}, "epochs"),
     ({"optimizer": "lbfgs", "batch_size": 10}, "full batch")],
)
def test_bad_settings_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        br.MAP(**kwargs)


def test_custom_optax_transformation_is_used_as_given(linear_data, exact_mean):
    import optax

    X, y, _ = linear_data
    # (a decaying rate: at a constant 0.05 Adam circles the mode at ~2e-3 in the bias)
    adam = optax.adam(optax.cosine_decay_schedule(0.05, 3000))
    post = br.fit(br.Linear(), X, y, method=br.MAP(optimizer=adam, steps=3000),
                  prior=PRIOR, likelihood=br.GaussianLikelihood(SIGMA))
    np.testing.assert_allclose(_coefs(post), exact_mean, atol=1e-3)
    assert post.config["optimizer"] == "custom"


def test_lbfgs_reaches_the_mode_of_an_ill_conditioned_polynomial(book_data):
    X, y = book_data
    kw = {"prior": br.Gaussian(30.0), "likelihood": br.GaussianLikelihood(0.3)}
    exact = _coefs(br.fit(br.Polynomial(5), X, y, method=br.Exact(), **kw))
    lbfgs = _coefs(br.fit(br.Polynomial(5), X, y, method=br.MAP(optimizer="lbfgs"), **kw))
    adam = _coefs(br.fit(br.Polynomial(5), X, y, method=br.MAP(steps=2000), **kw))
    scale = np.abs(exact).max()
    assert np.abs(lbfgs - exact).max() < 1e-4 * scale
    assert np.abs(adam - exact).max() > 10 * np.abs(lbfgs - exact).max()


@pytest.mark.slow
def test_fits_on_many_training_sizes_share_a_few_programs():
    """Full-batch training pads the rows to a geometric bucket and masks the padding: 15
    training sizes from 20 to 34 compile 3 programs (24, 32, 48 rows), not 15."""
    rng = np.random.default_rng(0)
    br.fit(br.MLP((4,)), rng.uniform(-1, 1, 20), rng.normal(size=20), method=br.MAP(steps=60))
    before = train_compiled._cache_size()
    for n in range(21, 35):
        X = rng.uniform(-1, 1, n)
        br.fit(br.MLP((4,)), X, np.sin(3 * X) + 0.1 * rng.normal(size=n),
               method=br.MAP(steps=60))
    assert train_compiled._cache_size() - before <= 2


def test_a_diverging_custom_optimizer_is_not_blamed_on_an_unused_lr():
    # MAP(optimizer=br.optim.gd(0.1)) diverging said "lower lr, now 0.01": the default lr,
    # which a given optax transformation never uses
    X = np.linspace(0, 1, 50)
    with pytest.raises(FloatingPointError, match="rate of the optax transformation") as err:
        br.fit(br.Linear(), 1e3 * X, 3 * X, method=br.MAP(optimizer=br.optim.gd(10.0), steps=50),
               prior=br.Gaussian(1.0), likelihood=br.GaussianLikelihood(0.1))
    assert "now 0.01" not in str(err.value)
