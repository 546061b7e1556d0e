import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayesreg as br
from bayesreg.masks import DropoutNetwork, sample_mask

QUICK = br.MAP(steps=600)


@pytest.fixture(scope="module")
def gap():
    return br.datasets.gap_example(n=60, noise=0.1)


@pytest.mark.slow
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


@pytest.mark.slow
def test_objective_uses_the_tempered_prior(gap):
    """With fixed noise the dropout objective is the MAP objective of the masked network with
    the weight prior raised to the power (1 − p): for N(0, s²) that is N(0, s²/(1 − p)) on
    the weights, biases untouched. So MCDropout must train exactly the parameters that MAP
    trains on the same masked network (same seed: same initialisation and masks) with the
    explicitly tempered prior. Without input dropout the first layer and the biases appear
    unmasked in every draw, and the last layer's kept rows are W/(1 − p)."""
    X, y = gap
    p, s = 0.5, 0.3
    lik = br.GaussianLikelihood(0.1)
    mc = br.fit(br.MLP((16,)), X, y, prior=br.Gaussian(s), likelihood=lik, seed=3,
                method=br.MCDropout(rate=p, num_samples=8, drop_input=False, training=QUICK))
    net = DropoutNetwork(br.MLP((16,)), p, "bernoulli", drop_input=False)

    def gap_to_map(weight_scale):
        post = br.fit(net, X, y, likelihood=lik, seed=3, method=QUICK,
                      prior={"weights": br.Gaussian(weight_scale), "biases": br.Gaussian(s)})
        ref = jax.tree_util.tree_map(lambda a: np.asarray(a)[0], post.params)
        last = np.asarray(mc.params["weights"][1]) * (1 - p)
        kept = last != 0
        assert kept.any()
        return max(np.abs(mc.params["weights"][0] - ref["weights"][0]).max(),
                   np.abs(np.where(kept, last - ref["weights"][1], 0.0)).max(),
                   *(np.abs(mc.params["biases"][i] - ref["biases"][i]).max() for i in (0, 1)))

    # same float32 program up to how the prior's gradient is rounded: measured 0
    assert gap_to_map(s / np.sqrt(1 - p)) < 1e-4
    # the untempered (power 1) and inverted (power 1/(1 − p)) priors train visibly different
    # weights (measured 0.21 and 0.54), so the check above can tell them apart
    assert gap_to_map(s) > 1e-2
    assert gap_to_map(s * np.sqrt(1 - p)) > 1e-2


@pytest.mark.slow
def test_learned_noise_maximises_the_validation_log_likelihood(gap):
    X, y = gap
    post = br.fit(br.MLP((32,)), X, y, method=br.MCDropout(rate=0.05, training=br.MAP(
        steps=1500, hyperparameters="validation")))
    d = post.diagnostics
    sigma, grid, scores = d["noise_std"], d["noise_grid"], d["validation_logliks"]
    assert np.all(post.noise_std() == pytest.approx(sigma))
    # the chosen σ is the grid's maximiser, an interior one (the grid spans 0.02-1 × std y)
    best = int(np.argmax(scores))
    assert sigma == grid[best] and d["validation_loglik"] == scores[best]
    assert 0 < best < len(grid) - 1
    assert 0.05 < sigma < 0.2  # the data's noise is 0.1
    # the network returned is the selected one, trained on the rows left for training: its
    # own predictive at σ scores the held-out rows as the selection did, within the Monte
    # Carlo error of two independent sets of 100 masks (sd of the score ~0.02 here)
    held = ~np.isin(X[:, 0], post.X_train[:, 0])
    assert held.sum() == len(X) - len(post.X_train) == round(0.2 * len(X))
    again = float(np.mean(post.predict(X[held]).log_prob(y[held])))
    assert again == pytest.approx(d["validation_loglik"], abs=0.1)


@pytest.mark.slow  # ~4.5 s; in the slow set, which CI runs, to keep the default suite short
def test_evidence_noise_with_dropout_is_the_data_noise(gap):
    X, y = gap
    post = br.fit(br.MLP((32,)), X, y, method=br.MCDropout(rate=0.05, training=br.MAP(
        steps=1500)))
    assert post.diagnostics["hyperparameters"] == "evidence"
    assert 0.07 < float(post.diagnostics["noise_std"]) < 0.14  # the data's noise is 0.1


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


def _sine(n=300):
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (n, 1))
    return X, np.sin(2 * X[:, 0]) + 0.2 * rng.standard_normal(n)


@pytest.mark.slow  # five dropout networks in two programs (candidates, refit): ~10 s
def test_the_rate_chosen_on_held_out_rows_is_the_best_and_refitted_on_every_row():
    X, y = _sine(200)
    training = br.MAP(steps=150)
    post = br.fit(br.MLP((8,)), X, y, method=br.MCDropout(rate="validation",
                                                         training=training), seed=0)
    _assert_refit_is_the_direct_fit(post, X, y, training)
    scores = dict(zip(post.diagnostics["rate_grid"].tolist(),
                      post.diagnostics["rate_scores"].tolist(), strict=True))
    assert sorted(scores) == [0.005, 0.01, 0.05, 0.1]
    # the scores separate the candidates (0.1 is far worse here), and the best one is used
    assert max(scores.values()) - min(scores.values()) > 0.05
    best = max(scores, key=scores.get)
    assert post.diagnostics["rate"] == best and post.config["rate"] == "validation"


@pytest.mark.slow  # ten dropout networks: ~15 s
@pytest.mark.parametrize("given", [
    {"likelihood": br.HeteroscedasticGaussian()},  # the default rate is 0.01 for these two
    {"prior": br.Laplace(1.0), "likelihood": br.GaussianLikelihood(0.2)}])
def test_the_refit_trains_as_a_direct_fit_under_any_likelihood_and_prior(given):
    X, y = _sine(150)
    training = br.MAP(steps=60)
    post = br.fit(br.MLP((8,)), X, y, method=br.MCDropout(rate=(0.01, 0.1), training=training),
                  seed=0, **given)
    _assert_refit_is_the_direct_fit(post, X, y, training, **given)


def _assert_refit_is_the_direct_fit(post, X, y, training, **given):
    scores = dict(zip(post.diagnostics["rate_grid"].tolist(),
                      post.diagnostics["rate_scores"].tolist(), strict=True))
    best = max(scores, key=scores.get)
    # the returned fit is the best rate's on all rows: the same as asking for it directly,
    # up to float32 rounding — the refit runs in the candidates' batched program (the rate
    # traced), whose sums run in another order (measured: 9e-6 relative after 150 updates;
    # a refit at another rate differs by 0.09, and one on the held-in rows has 160 rows)
    direct = br.fit(br.MLP((8,)), X, y, method=br.MCDropout(rate=best, training=training),
                    seed=0, **given)
    assert direct.X_train.shape == post.X_train.shape
    for a, b in zip(jax.tree_util.tree_leaves(post.params),
                    jax.tree_util.tree_leaves(direct.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.slow  # five dropout networks: ~6 s
def test_the_rate_grid_and_scores_survive_save_and_load(tmp_path):
    X, y = _sine(200)
    post = br.fit(br.MLP((8,)), X, y, method=br.MCDropout(rate=(0.01, 0.1),
                                                         training=br.MAP(steps=50)), seed=0)
    post.save(tmp_path / "p")
    back = br.load(tmp_path / "p").diagnostics
    np.testing.assert_array_equal(back["rate_grid"], [0.01, 0.1])
    np.testing.assert_array_equal(back["rate_scores"], post.diagnostics["rate_scores"])
    assert back["rate"] == post.diagnostics["rate"]


def test_a_rate_grid_is_checked():
    for bad in ((), (0.1, 1.0), "gal", (True,), np.array([0.1, 0.2])):
        with pytest.raises((TypeError, ValueError), match="rate"):
            br.MCDropout(rate=bad)
    for given in (np.float32(0.05), np.array(0.05), 0):  # NumPy scalars and ints are rates
        assert isinstance(br.MCDropout(rate=given).rate, float)
    method = br.MCDropout(rate=[0.01, 0.1])
    assert method.rate == (0.01, 0.1) and hash(method)
    assert br.MCDropout().rates == (0.005, 0.01, 0.05, 0.1)  # "auto": Gal's grid


@pytest.mark.slow  # three dropout networks: ~5 s
def test_a_rate_grid_on_few_held_out_rows_warns():
    method = br.MCDropout(rate=[0.01, 0.1], training=br.MAP(steps=30))
    X, y = _sine(40)
    with pytest.warns(UserWarning, match="8 held-out rows"):
        post = br.fit(br.MLP((8,)), X, y, method=method, seed=0)
    assert post.diagnostics["rate"] in (0.01, 0.1)


def test_auto_rate_on_few_rows_is_the_fixed_rate_without_a_warning():
    X, y = _sine(40)  # 8 held-out rows: too few to choose on
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        post = br.fit(br.MLP((8,)), X, y, method=br.MCDropout(training=br.MAP(steps=30)),
                      likelihood=br.GaussianLikelihood(0.2), prior=br.Gaussian(1.0), seed=0)
    assert post.diagnostics["rate"] == 0.05 and "rate_scores" not in post.diagnostics
    assert post.config["rate"] == "auto"


def test_an_mlps_own_dropout_fixes_the_rate(tmp_path):
    X, y = _sine(120)  # enough rows for "auto" to choose, but the MLP's rate decides
    kw = dict(likelihood=br.GaussianLikelihood(0.2), prior=br.Gaussian(1.0), seed=0)
    post = br.fit(br.MLP((8,), dropout=0.1), X, y,
                  method=br.MCDropout(training=br.MAP(steps=30)), **kw)
    assert post.diagnostics["rate"] == 0.1 and post.config["rate"] == "auto"
    assert post.X_train.shape == (120, 1)
    with pytest.raises(ValueError, match="fixes the rate"):
        br.fit(br.MLP((8,), dropout=0.3), X, y, method=br.MCDropout(rate="validation"), **kw)
    post.save(tmp_path / "p")
    assert br.load(tmp_path / "p").diagnostics["rate"] == 0.1


@pytest.mark.slow  # three programs compiled: ~20 s on the shared 2-core CPU
def test_the_candidate_rates_train_as_one_program_and_choose_as_one_at_a_time(monkeypatch):
    """The four candidates are one call of one compiled program (the rate a traced input),
    another grid compiles nothing more, and each candidate scores the held-out rows as its
    rate fitted alone on the same rows and seed does: the same initialisation, keys and
    masks, so the scores differ by float rounding between the vmapped and the single
    program (measured ~1e-6), far below the ~0.02 between two sets of masks."""
    from bayesreg.training import members

    X, y = _sine(120)
    training = br.MAP(steps=100)
    calls, units, real = [], [], members._train_values

    def counting(*args, **kwargs):
        calls.append(len(args[6]))  # the values: one network per rate
        units.append(args[2])  # the updates of each network (full batch: one an epoch)
        return real(*args, **kwargs)

    monkeypatch.setattr(members, "_train_values", counting)
    post = br.fit(br.MLP((8,)), X, y, method=br.MCDropout(rate="validation",
                                                         training=training), seed=0)
    # the candidates together, then the refit on every row: a program of one rate, the
    # rate traced, so whichever rate wins compiles nothing more
    assert calls == [4, 1]
    assert units == [50, 100]  # the candidates rank on half the final fit's updates
    # each network masked at its own rate: 0.1 scores far below 0.005 here
    assert np.ptp(post.diagnostics["rate_scores"]) > 0.1
    compiled = real._cache_size()
    br.fit(br.MLP((8,)), X, y, method=br.MCDropout(rate=(0.02, 0.03, 0.2, 0.3),
                                                   training=training), seed=1)
    assert real._cache_size() == compiled  # other candidate rates and winner, same programs
    # the selection with each candidate trained alone (a program of one rate each)
    from bayesreg.methods.dropout import MCDropout
    together = MCDropout._train
    monkeypatch.setattr(MCDropout, "_train", lambda self, problem, rates, hook: [
        together(self, problem, [r], hook)[0] for r in rates])
    alone = br.fit(br.MLP((8,)), X, y, method=br.MCDropout(rate="validation",
                                                          training=training), seed=0)
    assert calls[-5:] == [1, 1, 1, 1, 1]  # four candidates alone, then the refit
    np.testing.assert_allclose(post.diagnostics["rate_scores"],
                               alone.diagnostics["rate_scores"], atol=1e-4)
    assert post.diagnostics["rate"] == alone.diagnostics["rate"]
