"""Several devices (4 CPU devices forced in a subprocess) and float64 precision."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import bayesreg as br

SCRIPT = textwrap.dedent("""
    import json, warnings
    import jax, numpy as np, bayesreg as br
    from bayesreg.training import run as map_module
    warnings.simplefilter("ignore")
    assert len(jax.devices()) == 4, jax.devices()
    X, y = br.datasets.gap_example(n=40)
    compiled = {}
    train = map_module.train_compiled
    def spy(*args, **kwargs):  # keep the compiled training loop's HLO
        compiled["hlo"] = train.lower(*args, **kwargs).compile().as_text()
        return train(*args, **kwargs)
    map_module.train_compiled = spy
    minibatch = br.fit(br.MLP((8,)), X, y, method=br.MAP(batch_size=16, steps=200),
                       likelihood=br.GaussianLikelihood(0.1), seed=0)
    map_module.train_compiled = train
    members = map_module.train_members
    def spy_members(*args, **kwargs):  # the devices the chains' states come back on
        out = members(*args, **kwargs)
        compiled["sgld_devices"] = len(jax.tree_util.tree_leaves(out[0])[0].sharding.device_set)
        return out
    map_module.train_members = spy_members
    langevin = br.fit(br.MLP((8,)), X, y, likelihood=br.GaussianLikelihood(0.1), seed=0,
                      method=br.SGLD(num_samples=50, batch_size=16, num_warmup=50,
                                     num_chains=2))
    map_module.train_members = members
    post = br.fit(br.MLP((8,)), X, y, method=br.Ensemble(members=8, training=br.MAP(steps=200)),
                  likelihood=br.GaussianLikelihood(0.1), seed=0)
    nuts = br.fit(br.Linear(), X, y, likelihood=br.GaussianLikelihood(0.1),
                  method=br.NUTS(num_warmup=100, num_samples=100, num_chains=4,
                                 chain_method="parallel", progress_bar=False))
    print(json.dumps({"w": np.asarray(post.params["weights"][0]).tolist(),
                      "minibatch_w": np.asarray(minibatch.params["weights"][0]).tolist(),
                      "all_reduce": "all-reduce" in compiled["hlo"],
                      "sgld_w": np.asarray(langevin.params["weights"][0]).tolist(),
                      "sgld_devices": compiled["sgld_devices"],
                      "chains": nuts.num_chains, "draws": nuts.num_draws,
                      "rhat": nuts.diagnostics["r_hat"]}))
""")


@pytest.fixture(scope="module")
def four_devices():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    import json

    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_sharded_ensemble_equals_the_single_device_one(four_devices):
    X, y = br.datasets.gap_example(n=40)
    post = br.fit(br.MLP((8,)), X, y, method=br.Ensemble(members=8, training=br.MAP(steps=200)),
                  likelihood=br.GaussianLikelihood(0.1), seed=0)
    np.testing.assert_allclose(np.array(four_devices["w"]), post.params["weights"][0],
                               rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_minibatch_map_is_data_parallel_and_equals_the_single_device_fit(four_devices):
    """Each of the 4 devices evaluates 4 of a batch's 16 rows and the gradient is summed
    across them (an all-reduce in the compiled loop); the fit is the single-device one up
    to the order of the sums."""
    assert four_devices["all_reduce"]
    X, y = br.datasets.gap_example(n=40)
    post = br.fit(br.MLP((8,)), X, y, method=br.MAP(batch_size=16, steps=200),
                  likelihood=br.GaussianLikelihood(0.1), seed=0)
    np.testing.assert_allclose(np.array(four_devices["minibatch_w"]), post.params["weights"][0],
                               rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_sgld_chains_are_spread_over_the_devices_and_equal_the_single_device_ones(four_devices):
    """SGLD's chains are members of the training loop: their axis is spread over the 4
    devices (2 chains padded to 4), and each chain is the single-device one."""
    assert four_devices["sgld_devices"] == 4
    X, y = br.datasets.gap_example(n=40)
    post = br.fit(br.MLP((8,)), X, y, likelihood=br.GaussianLikelihood(0.1), seed=0,
                  method=br.SGLD(num_samples=50, batch_size=16, num_warmup=50, num_chains=2))
    np.testing.assert_allclose(np.array(four_devices["sgld_w"]), post.params["weights"][0],
                               rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_parallel_nuts_chains_run_one_per_device(four_devices):
    assert four_devices["chains"] == 4 and four_devices["draws"] == 400
    assert four_devices["rhat"] < 1.1


def test_shard_members_places_the_member_axis_on_every_device():
    import jax

    from bayesreg.training.run import shard_members

    if len(jax.devices()) > 1:
        pytest.skip("the single-device path is what this process can check")
    inputs = ({"a": np.zeros((4, 2))}, np.zeros(4), np.zeros((3, 1)), np.zeros(3), {})
    assert shard_members(4, inputs, (None, None)) is inputs


@pytest.mark.slow
def test_float64_changes_precision_and_nothing_else():
    X, y = br.datasets.book_example()
    kw = {"prior": br.Gaussian(10.0), "likelihood": br.GaussianLikelihood(0.3)}
    exact = br.fit(br.Polynomial(5), X, y, method=br.Exact(), dtype="float64", **kw)
    method = br.MAP(optimizer="lbfgs", steps=300)
    a = br.fit(br.Polynomial(5), X, y, method=method, **kw)
    b = br.fit(br.Polynomial(5), X, y, method=method, dtype="float64", **kw)
    assert a.params["weights"][0].dtype == np.float32
    assert b.params["weights"][0].dtype == np.float64
    pa, pb = a.predict(X), b.predict(X)
    assert pb.draws.dtype == np.float64
    np.testing.assert_allclose(pa.mean, pb.mean, rtol=1e-4, atol=1e-4)  # the same fit ...
    err64 = np.abs(b.params["weights"][0][0, :, 0] - exact.gaussian.mean[:-1]).max()
    err32 = np.abs(a.params["weights"][0][0, :, 0] - exact.gaussian.mean[:-1]).max()
    assert err64 < err32 / 10  # ... to more digits
    import jax

    assert not jax.config.jax_enable_x64  # the flag is left as it was
    with pytest.raises(ValueError, match="dtype"):
        br.fit(br.Linear(), X, y, dtype="float16")
