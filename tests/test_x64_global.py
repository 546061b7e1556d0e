"""JAX's 64-bit mode switched on globally by the user, in a subprocess (the flag is global).

With ``jax.config.update("jax_enable_x64", True)`` a fit in the default working precision
(float32) mixed float64 data and constants (NumPy float64 arrays and scalars, ``jnp.zeros``)
with float32 parameters: the objective came out float64 and L-BFGS's line search —
MAP(optimizer="lbfgs"), the Laplace approximation's mode, VI's starting point — failed with
"cond branches must have equal output types" (NUTS, ensembles and MLPs failed the same way).
A fit in its working precision must not depend on the global flag: the same numbers as
with the flag off.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import json, sys, warnings
    import jax
    jax.config.update("jax_enable_x64", True)  # as a user would, before anything else
    import numpy as np, bayesreg as br
    warnings.simplefilter("ignore")
    X, y = br.datasets.book_example(n=15, noise=0.3, seed=0)
    lbfgs = br.MAP(optimizer="lbfgs", steps=500)  # one compiled loop for MAP and Laplace
    methods = {
        "map_lbfgs": lbfgs,
        "laplace": br.LaplaceApprox(num_samples=50, training=lbfgs),
        "vi": br.VI(steps=200, num_samples=50, progress_bar=False),  # L-BFGS start, then SVI
    }
    methods = {k: methods[k] for k in sys.argv[1:]}

    def run():
        out = {}
        for name, method in methods.items():
            try:
                post = br.fit(br.Polynomial(3), X, y, method=method, seed=0)
                out[name] = {"mean": post.predict(X).mean.tolist(),
                             "dtype": str(np.asarray(post.params["weights"][0]).dtype)}
            except Exception as err:
                out[name] = {"error": f"{type(err).__name__}: {str(err)[:300]}"}
        return out

    on = run()
    x64_after = bool(jax.config.jax_enable_x64)
    jax.config.update("jax_enable_x64", False)  # the reference: the flag off
    print(json.dumps({"on": on, "off": run(), "x64_after": x64_after}))
""")

def _run(*names):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=root)
    out = subprocess.run([sys.executable, "-c", SCRIPT, *names], env=env, capture_output=True,
                         text=True, timeout=600, cwd=root)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def runs():
    return _run("map_lbfgs", "laplace")


@pytest.fixture(scope="module")
def vi_runs():  # VI's L-BFGS start compiles a loop of its own: ~10 s more
    return _run("vi")


def _same_fit(runs, name):
    got, want = runs["on"][name], runs["off"][name]
    assert "error" not in got, got.get("error")
    assert got["dtype"] == want["dtype"] == "float32"  # the working dtype, not the flag's
    # the same float32 computation with draws from the same keys: the same numbers
    assert got["mean"] == pytest.approx(want["mean"], rel=1e-6, abs=1e-7)


@pytest.mark.parametrize("name", ["map_lbfgs", "laplace"])
def test_float32_fit_ignores_the_global_x64_flag(runs, name):
    _same_fit(runs, name)


@pytest.mark.slow
def test_float32_vi_ignores_the_global_x64_flag(vi_runs):
    _same_fit(vi_runs, "vi")


def test_the_global_flag_is_left_as_the_user_set_it(runs):
    assert runs["x64_after"] is True
