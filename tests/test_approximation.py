"""The protocol between methods and Posterior (bayesreg/approximation.py)."""

import dataclasses
import json
import pathlib
import zipfile

import numpy as np
import pytest

import bayesreg as br
from bayesreg.approximation import FunctionDraws, LoadContext, draw_outputs, lookup, register

DATA = pathlib.Path(__file__).parent / "data"
GRID = np.linspace(-1.5, 1.5, 7)


@register
@dataclasses.dataclass(frozen=True)
class Shifted:
    """A toy approximation defined outside the package: the draws' outputs plus a constant
    shift. If predict, save or load knew the methods, it could not work."""

    shift: np.ndarray

    name = "test_shifted"

    def outputs(self, post, X, chunk_size=None):
        return FunctionDraws(draw_outputs(post.model, post.params, X, chunk_size)
                             + float(self.shift))

    def arrays(self):
        return {"shift": np.asarray(self.shift)}

    @classmethod
    def from_arrays(cls, arrays, context: LoadContext):
        assert context.num_params == 3  # Polynomial(2): two weights and a bias
        return cls(arrays["shift"])


def test_a_new_approximation_needs_no_change_in_the_core(tmp_path):
    X, y = br.datasets.gap_example(n=12)
    post = br.fit(br.Polynomial(2), X, y, method=br.MAP(steps=200))
    shifted = dataclasses.replace(post, approximation=Shifted(np.asarray(5.0)))
    np.testing.assert_allclose(shifted.predict(GRID).mean, post.predict(GRID).mean + 5.0,
                               rtol=1e-6)
    shifted.save(tmp_path / "p.npz")
    back = br.load(tmp_path / "p.npz")
    assert isinstance(back.approximation, Shifted)
    np.testing.assert_array_equal(back.predict(GRID).mean, shifted.predict(GRID).mean)


def test_register_refuses_what_is_not_an_approximation():
    class NoName:
        def outputs(self): ...
        def arrays(self): ...
        @classmethod
        def from_arrays(cls, a, c): ...

    with pytest.raises(TypeError, match="name must be a non-empty string"):
        register(NoName)

    class NoArrays:
        name = "x"

        def outputs(self): ...

    with pytest.raises(TypeError, match="must define arrays"):
        register(NoArrays)

    class Clash(Shifted):
        name = "gaussian"

    with pytest.raises(ValueError, match="already registered"):
        register(Clash)


def test_an_unknown_approximation_in_a_file_is_a_clear_error(tmp_path):
    X, y = br.datasets.gap_example(n=12)
    post = br.fit(br.Polynomial(2), X, y, method=br.Exact(num_samples=3))
    post.save(tmp_path / "p.npz")
    with np.load(tmp_path / "p.npz") as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(arrays["meta"].tobytes())
    meta["approximation"] = "no_such_thing"
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(tmp_path / "q.npz", **arrays)
    with pytest.raises(ValueError, match=r"not a bayesreg posterior file.*'no_such_thing'"):
        br.load(tmp_path / "q.npz")
    with pytest.raises(ValueError, match="no method of this version registers"):
        lookup("no_such_thing")


@pytest.mark.parametrize("name", ["exact", "laplace", "ensemble"])
def test_files_written_before_the_protocol_still_load(name):
    """Files saved by the version before the approximation protocol (commit c34a46b):
    an Exact Gaussian, a Laplace linearisation and a median ensemble predict as they did."""
    path = DATA / f"legacy_{name}.npz"
    with zipfile.ZipFile(path) as z:  # really the old layout
        assert not any(n.startswith("approximation/") for n in z.namelist())
    post = br.load(path)
    pred = post.predict(GRID)
    expected = np.load(DATA / f"legacy_{name}_expected.npy")
    np.testing.assert_allclose(np.stack([pred.mean, pred.std, *pred.interval(0.9)]), expected,
                               rtol=1e-6, atol=1e-7)
    kinds = {"exact": "gaussian", "laplace": "linearization", "ensemble": None}
    assert getattr(post.approximation, "name", None) == kinds[name]
    if name == "ensemble":
        assert post.point == "median"
        assert post.draws_kind.startswith("independently trained ensemble members")


def test_earlier_attribute_names_still_answer():
    X, y = br.datasets.gap_example(n=12)
    post = br.fit(br.Polynomial(2), X, y, method=br.Exact(num_samples=3))
    assert post.gaussian is post.approximation and post.linearization is None
    np.testing.assert_allclose(post.gaussian.cov, post.approximation.chol_cov
                               @ post.approximation.chol_cov.T)
    with pytest.raises(AttributeError, match="no attribute 'gaussion'"):
        post.gaussion  # noqa: B018
