"""What ``import bayesreg`` costs and needs, checked in a fresh interpreter."""

import json
import os
import subprocess
import sys
import textwrap


def _run(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=300)


def test_estimators_without_sklearn_says_which_extra_to_install():
    out = _run("""
        import sys
        sys.modules["sklearn"] = None  # as if scikit-learn were not installed
        try:
            import bayesreg.estimators
        except ImportError as err:
            print(type(err).__name__, err, sep=": ")
        else:
            print("imported")
    """)
    assert out.returncode == 0, out.stderr
    message = out.stdout.strip()
    assert message.startswith("ImportError: bayesreg.estimators needs scikit-learn"), message
    assert 'pip install "bayesreg[sklearn]"' in message


# Imported where they are used, not by ``import bayesreg`` (which should cost little more than
# ``import jax``): NumPyro by NUTS, VI and Prior.to_numpyro, SciPy's stats/optimize/special by
# Predictive and calibrate, ArviZ by to_arviz and NUTS diagnostics, matplotlib by plots, pandas
# by the CLI, scipy.linalg by Exact and the Laplace approximation (bayesreg._lazy).
LAZY = ("numpyro", "arviz", "xarray", "matplotlib", "pandas", "sklearn",
        "scipy.stats", "scipy.optimize", "scipy.special", "scipy.linalg")


def test_import_bayesreg_leaves_heavy_dependencies_unloaded():
    out = _run(f"""
        import json, sys
        import bayesreg
        print(json.dumps([m for m in {LAZY!r} if m in sys.modules]))
    """)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_lazy_imports_load_on_use():
    out = _run("""
        import sys
        import numpy as np
        import bayesreg as br
        br.Gaussian(1.0).to_numpyro()
        br.NUTS().kernel(lambda: None)
        X, y = br.datasets.book_example(n=12, seed=0)
        pred = br.fit(br.Polynomial(2), X, y, method=br.Exact()).predict(X)
        lo, hi = pred.interval(0.9)
        assert np.all(lo < hi)
        print(sorted(m for m in ("numpyro", "scipy.stats") if m in sys.modules))
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "['numpyro', 'scipy.stats']"
