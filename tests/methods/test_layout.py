"""The shape the methods keep (issue 19): each public method is one small module that knows
nothing of rows on disk, devices or other methods, and nothing downstream names a method."""

import ast
import pathlib

import bayesreg as br

ROOT = pathlib.Path(br.__file__).resolve().parent
METHOD_CLASSES = {"MAP", "Exact", "LaplaceApprox", "VI", "NUTS", "MCDropout", "Ensemble", "SWAG",
                  "SGLD"}
DOWNSTREAM = ("posterior", "predictive", "persistence", "archive", "compare", "cli",
              "estimators", "summary", "fitted")


def _imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            for a in node.names:  # ``from bayesreg.methods import map``: a submodule
                sub = ROOT.parent / f"{node.module}.{a.name}".replace(".", "/")
                if sub.with_suffix(".py").exists() or (sub / "__init__.py").exists():
                    yield f"{node.module}.{a.name}"


def test_each_public_method_is_one_small_module_of_its_own():
    modules = {type(getattr(br, name)()).__module__ for name in METHOD_CLASSES}
    assert modules == {f"bayesreg.methods.{p.stem}" for p in (ROOT / "methods").glob("*.py")
                       if p.stem != "__init__"}
    for module in modules:
        path = ROOT / "methods" / f"{module.rsplit('.', 1)[1]}.py"
        assert len(path.read_text().splitlines()) <= 300, path
        imported = set(_imports(path))
        others = {m for m in imported if m.startswith("bayesreg.methods")}
        assert others == set(), (path, others)
        data_path = {m for m in imported if m.startswith("bayesreg.data")}
        assert data_path == set(), (path, data_path)  # rows and devices: training/, data/
        assert "device_count" not in path.read_text(), path


def test_nothing_downstream_of_the_methods_names_one():
    for name in DOWNSTREAM:
        tree = ast.parse((ROOT / f"{name}.py").read_text())
        named = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
            n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        assert named & METHOD_CLASSES == set(), (name, named & METHOD_CLASSES)
        assert not any(m.startswith("bayesreg.methods.") for m in _imports(ROOT / f"{name}.py"))
