"""Saving is atomic; loading refuses anything that is not a whole, consistent posterior."""

import json
import os

import numpy as np
import pytest

import bayesreg as br
from bayesreg import persistence

X = np.linspace(-1, 1, 12)
Y = np.sin(2 * X)


@pytest.fixture(scope="module")
def post():
    return br.fit(br.MLP((4,)), X, Y, method=br.MAP(steps=50),
                  likelihood=br.GaussianLikelihood(0.1), prior=br.Gaussian(1.0))


def _arrays(path):
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def _meta(arrays):
    return json.loads(arrays["meta"].tobytes().decode())


def _write(path, arrays, meta=None):
    if meta is not None:
        arrays = dict(arrays, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def test_a_failed_save_leaves_the_previous_file_whole(post, tmp_path, monkeypatch):
    path = tmp_path / "post.npz"
    post.save(path)
    before = path.read_bytes()

    def broken(fh, **arrays):
        fh.write(b"PK\x03\x04 half an archive")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(persistence.np, "savez", broken)
    with pytest.raises(OSError, match="No space"):
        post.save(path)
    assert path.read_bytes() == before  # the old file, untouched
    assert sorted(os.listdir(tmp_path)) == ["post.npz"]  # no temporary file left behind
    monkeypatch.undo()
    np.testing.assert_array_equal(br.load(path).predict(X).mean, post.predict(X).mean)


@pytest.mark.parametrize("content", [b"", os.urandom(256), b"a,b\n1,2\n"],
                         ids=["empty", "random", "csv"])
def test_foreign_files_are_refused_with_a_clear_error(tmp_path, content):
    path = tmp_path / "x.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a bayesreg posterior file") as err:
        br.load(path)
    assert "allow_pickle" not in str(err.value)


def test_npy_npz_without_meta_and_bad_json_are_refused(tmp_path):
    npy = tmp_path / "a.npy"
    np.save(npy, np.ones(3))
    bare = tmp_path / "b.npz"
    _write(bare, {"x": np.ones(2)})
    bad = tmp_path / "c.npz"
    _write(bad, {"meta": np.frombuffer(b"{not json", np.uint8)})
    for path in (npy, bare, bad):
        with pytest.raises(ValueError, match="not a bayesreg posterior file"):
            br.load(path)


def _tampered(post, tmp_path, change):
    path = tmp_path / "post.npz"
    post.save(path)
    arrays = _arrays(path)
    meta = _meta(arrays)
    change(arrays, meta)
    _write(path, {k: v for k, v in arrays.items() if k != "meta"}, meta)
    return path


@pytest.mark.parametrize("change", [
    lambda a, m: a.update({"params/weights_0": a["params/weights_0"][..., :-1]}),
    lambda a, m: m.update(n_layers=-1),
    lambda a, m: m.update(n_layers=1),
    lambda a, m: m.update(dtype="float16"),
    lambda a, m: m.update(num_chains=7),
    lambda a, m: a.update({"params/biases_1": np.full_like(a["params/biases_1"], np.nan)}),
    lambda a, m: a.update({"y_train": a["y_train"][:-1]}),
    lambda a, m: m.update(model={"type": "MLP", "hidden": [5], "activation": "relu",
                                 "dropout": 0.0}),
    lambda a, m: a.pop("params/weights_1"),
], ids=["column-short", "negative-layers", "fewer-layers", "float16", "chains", "nan",
        "rows", "other-model", "missing-array"])
def test_tampered_files_fail_at_load_not_at_predict(post, tmp_path, change):
    path = _tampered(post, tmp_path, change)
    with pytest.raises(ValueError, match="not a bayesreg posterior file"):
        br.load(path)


def test_a_missing_file_is_still_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        br.load(tmp_path / "nowhere.npz")
