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
# ``import jax``): NumPyro by VI and Prior.to_numpyro, blackjax by NUTS (1.3 s to import),
# SciPy's stats/optimize/special by Predictive and calibrate, ArviZ by to_arviz and NUTS
# diagnostics, matplotlib by plots, pandas by the CLI, scipy.linalg by Exact and the Laplace
# approximation (bayesreg._lazy).
LAZY = ("numpyro", "blackjax", "arviz", "xarray", "matplotlib", "pandas", "sklearn",
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
        X, y = br.datasets.book_example(n=12, seed=0)
        pred = br.fit(br.Polynomial(2), X, y, method=br.Exact()).predict(X)
        lo, hi = pred.interval(0.9)
        assert np.all(lo < hi)
        print(sorted(m for m in ("numpyro", "scipy.special", "scipy.stats") if m in sys.modules))
    """)
    assert out.returncode == 0, out.stderr
    # a Gaussian predictive's interval needs scipy.special (0.09 s to import), not scipy.stats
    # (0.66 s, which every command-line process paid for its metrics)
    assert out.stdout.strip().splitlines()[-1] == "['numpyro', 'scipy.special']"


def _package_imports():
    """{module: (modules it imports at the top, [(line, module) imported inside a function])}
    for every module of the package, from its source."""
    import ast
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    paths = {".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): p
             for p in (root / "bayesreg").rglob("*.py")}

    def resolve(name):
        while name and name not in paths:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for name, path in paths.items():
        top, inner = set(), []

        def visit(node, in_function, name=name, top=top, inner=inner):
            for child in ast.iter_child_nodes(node):
                deeper = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
                if isinstance(child, ast.Import):
                    targets = [a.name for a in child.names]
                elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                    targets = [f"{child.module}.{a.name}" if f"{child.module}.{a.name}" in paths
                               else child.module for a in child.names]
                else:
                    visit(child, deeper)
                    continue
                found = {resolve(t) for t in targets if t.split(".")[0] == "bayesreg"}
                found -= {"", name}
                if deeper:
                    inner.extend((child.lineno, t) for t in sorted(found))
                else:
                    top.update(found)

        visit(ast.parse(path.read_text()), False)
        graph[name] = (top, inner)
    return graph


def test_the_package_has_no_import_cycle():
    """A module that imports another at the top may not be imported by it, directly or
    through others (a cycle makes the import order matter and hides a missing layer)."""
    graph = {m: top for m, (top, _) in _package_imports().items()}
    seen, done, cycles = set(), set(), []

    def walk(module, path):
        seen.add(module)
        for nxt in sorted(graph[module]):
            if nxt in path:
                cycles.append([*path[path.index(nxt):], nxt])
            elif nxt not in done and nxt not in seen:
                walk(nxt, [*path, nxt])
        done.add(module)

    for module in sorted(graph):
        if module not in done:
            seen.clear()
            walk(module, [module])
    assert cycles == [], cycles


def test_no_module_of_the_package_imports_another_inside_a_function():
    """Imports of the package's own modules sit at the top of the module; only third-party
    imports with a measured start-up cost are deferred (see LAZY above)."""
    inner = {m: lines for m, (_, lines) in _package_imports().items() if lines}
    assert inner == {}, inner
