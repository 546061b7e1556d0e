"""One protocol for every method: each fits through ``br.fit`` into a Posterior that predicts,
survives save → load unchanged, exports to ArviZ and takes part in ``br.compare``, and a
second fit of the same shapes compiles nothing new.

The settings are small (a few hundred updates or draws): the numbers of each method are
checked against closed forms and independent implementations in its own test file; here
the boundary every method shares is."""

import warnings

import numpy as np
import pytest

import bayesreg as br
from tests.test_posterior import _compiled_programs

QUICK = br.MAP(steps=60, progress_bar=False)
METHODS = {
    "MAP": (br.MLP((4,)), QUICK),
    "Exact": (br.Polynomial(2), br.Exact()),
    "LaplaceApprox": (br.MLP((4,)), br.LaplaceApprox(training=QUICK)),
    "VI": (br.MLP((4,)), br.VI(steps=60, num_samples=20, progress_bar=False)),
    "NUTS": (br.MLP((4,)), br.NUTS(num_warmup=30, num_samples=30, num_chains=1,
                                   progress_bar=False)),
    "MCDropout": (br.MLP((4,)), br.MCDropout(rate=0.1, num_samples=10, training=QUICK)),
    "Ensemble": (br.MLP((4,)), br.Ensemble(members=2, training=QUICK)),
    "SWAG": (br.MLP((4,)), br.SWAG(epochs=4, rank=3, num_samples=10, batch_size=8,
                                   training=QUICK)),
    "SGLD": (br.MLP((4,)), br.SGLD(num_samples=20, num_warmup=40, thinning=2, num_chains=1)),
}
# Compiled programs a second fit of the same shapes may add: none (NUTS's chains run in a loop
# compiled once per kernel, bayesreg.training.chains; MCMC.run compiled "_fori_collect_loop"
# again on every call)
RECOMPILES: dict[str, set[str]] = {}


def _data(seed):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, 24)
    return X, np.sin(3 * X) + 0.2 * rng.standard_normal(24)


def _fit(name, seed=0):
    model, method = METHODS[name]
    X, y = _data(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short runs: convergence warnings are expected
        return br.fit(model, X, y, method=method, prior=br.Gaussian(1.0),
                      likelihood=br.GaussianLikelihood(0.2), seed=seed)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_answers_through_the_same_posterior(name, tmp_path):
    post = _fit(name)
    # the settings as run: the method's own, with the defaults it resolved filled in
    assert post.method == name and post.config.keys() == METHODS[name][1].to_dict().keys()
    X_new = np.linspace(-1, 1, 7)
    pred = post.predict(X_new)
    assert pred.mean.shape == pred.std.shape == (7,)
    assert np.all(np.isfinite(pred.std)) and np.all(pred.std > 0)
    lo, hi = pred.interval(0.9)
    assert np.all(lo < pred.mean) and np.all(pred.mean < hi)

    post.save(tmp_path / "post.npz")
    back = br.load(tmp_path / "post.npz")
    again = back.predict(X_new)
    assert back.method == post.method and back.num_draws == post.num_draws
    np.testing.assert_array_equal(again.mean, pred.mean)
    np.testing.assert_array_equal(again.std, pred.std)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # point estimates and ensembles say what they are
        idata = post.to_arviz()
    assert idata.posterior.sizes["draw"] * idata.posterior.sizes["chain"] == post.num_draws


@pytest.mark.parametrize("name", sorted(METHODS))
def test_a_second_fit_of_the_same_shapes_compiles_nothing_new(name):
    _fit(name, seed=0)
    names = _compiled_programs(lambda: _fit(name, seed=1))  # other values and seed, same shapes
    allowed = RECOMPILES.get(name, set())
    assert [n for n in names if not any(a in n for a in allowed)] == [], names


@pytest.mark.slow  # ~14 s: every method fitted again; in the slow set, which CI runs, to keep
# the default suite under 10 minutes (tests/test_compare.py checks compare by default)
def test_compare_takes_every_method_and_names_each_row():
    X, y = _data(0)
    methods = [m for model, m in METHODS.values() if isinstance(model, br.MLP)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = br.compare(br.MLP((4,)), X, y, methods=methods, prior=br.Gaussian(1.0),
                         likelihood=br.GaussianLikelihood(0.2))
    assert [r["method"] for r in res.rows] == [n for n in METHODS if n != "Exact"]
