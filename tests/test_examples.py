"""Every example runs with reduced sizes (``quick=True``) and writes its figure."""

import importlib
import inspect
import pathlib
import subprocess
import sys

import matplotlib.image as mpimg
import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
NAMES = sorted(p.stem for p in EXAMPLES.glob("*.py") if not p.stem.startswith("_"))


@pytest.fixture(scope="module", autouse=True)
def examples_on_path():
    sys.path.insert(0, str(EXAMPLES))
    yield
    sys.path.remove(str(EXAMPLES))


def test_every_lecture_topic_has_an_example():
    assert len(NAMES) >= 12


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.slow  # every example end to end: ~80 s in all
def test_example_runs_quick(name, tmp_path):
    module = importlib.import_module(name)
    path = module.main(quick=True, out=str(tmp_path))
    image = mpimg.imread(path)
    assert image.shape[0] > 200 and image.std() > 0.01


def test_examples_write_to_an_untracked_folder(monkeypatch):
    """Running an example (script or ``main()``) never writes over a tracked file."""
    import _common

    output = EXAMPLES / "output"
    assert pathlib.Path(_common.OUTPUT) == output
    for name in NAMES:
        main = importlib.import_module(name).main
        assert inspect.signature(main).parameters["out"].default == _common.OUTPUT, name
    seen = {}
    monkeypatch.setattr(sys, "argv", ["example.py", "--quick"])
    _common.cli("doc", lambda quick, out: seen.update(quick=quick, out=out))
    assert seen == {"quick": True, "out": _common.OUTPUT}
    repo = EXAMPLES.parent
    try:
        ignored = subprocess.run(["git", "check-ignore", "-q", "examples/output/x.png"],
                                 cwd=repo, capture_output=True, timeout=30)
        tracked = subprocess.run(["git", "ls-files", "examples/output"], cwd=repo,
                                 capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        pytest.skip("git is not available")
    if ignored.returncode == 128:
        pytest.skip("not a git checkout")
    assert ignored.returncode == 0, "examples/output/ must be in .gitignore"
    assert tracked.stdout == ""
