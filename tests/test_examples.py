"""Every example runs with reduced sizes (``quick=True``) and writes its figure."""

import importlib
import pathlib
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
def test_example_runs_quick(name, tmp_path):
    module = importlib.import_module(name)
    path = module.main(quick=True, out=str(tmp_path))
    image = mpimg.imread(path)
    assert image.shape[0] > 200 and image.std() > 0.01
