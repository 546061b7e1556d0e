"""What ``import bayesreg`` costs and needs, checked in a fresh interpreter."""

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
