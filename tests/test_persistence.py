"""Saving is atomic; loading refuses anything that is not a whole, consistent posterior."""

import io
import json
import os
import signal
import stat
import subprocess
import sys
import time
import zipfile
import zlib

import numpy as np
import pytest

import bayesreg as br
from bayesreg import archive, persistence

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
    lambda a, m: m.update(n_layers=10**9),
    lambda a, m: m["model"].update(hidden=[10**9]),
], ids=["column-short", "negative-layers", "fewer-layers", "float16", "chains", "nan",
        "rows", "other-model", "missing-array", "1e9-layers", "1e9-wide"])
def test_tampered_files_fail_at_load_not_at_predict(post, tmp_path, change):
    path = _tampered(post, tmp_path, change)
    with pytest.raises(ValueError, match="not a bayesreg posterior file"):
        br.load(path)


def test_a_missing_file_is_still_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        br.load(tmp_path / "nowhere.npz")


# --- hostile files: refused before they cost memory ----------------------------------------

GiB = 1 << 30


def _zeros_entry(zf, name, nbytes, header=b""):
    """A deflated entry of ``header`` and ``nbytes`` zeros, written in a fraction of the time
    zlib needs: every MiB of zeros is the same full-flushed deflate block."""
    zero = bytes(1 << 20)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(zero) + c.flush(zlib.Z_FULL_FLUSH)
    final = zlib.compressobj(9, zlib.DEFLATED, -15)

    class Repeat:
        def compress(self, data):
            return block if data == zero else (
                final.compress(data) + final.flush(zlib.Z_FULL_FLUSH))

        def flush(self):
            return final.flush()

    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    original = zipfile._get_compressor
    zipfile._get_compressor = lambda *args: Repeat()
    try:
        with zf.open(info, "w", force_zip64=True) as fh:
            fh.write(header)
            for _ in range(nbytes >> 20):
                fh.write(zero)
    finally:
        zipfile._get_compressor = original


def _npy_header(shape, descr="<f8"):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _hostile(kind, post, exact_relu, folder):
    """A small file that, read naively, costs gigabytes or a RecursionError."""
    path = folder / f"{kind}.npz"
    if kind == "relu-basis-1e9":
        exact_relu.save(path)
        arrays = _arrays(path)
        meta = _meta(arrays)
        meta["model"]["name"] = "relu_basis(1000000000, 0.0, 1.0)"
        _write(path, {k: v for k, v in arrays.items() if k != "meta"}, meta)
        return path
    post.save(path)
    arrays = _arrays(path)
    meta = _meta(arrays)
    if kind == "nested-meta":
        deep = json.dumps(meta)[:-1] + ', "deep": ' + "[" * 100_000 + "]" * 100_000 + "}"
        arrays["meta"] = np.frombuffer(deep.encode(), np.uint8)
    elif kind == "huge-meta":
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode() + b" " * (17 << 20), np.uint8)
    with zipfile.ZipFile(path, "w") as zf:
        for k, v in arrays.items():
            if kind == "header-1e12" and k == "params/weights_0":
                zf.writestr(f"{k}.npy", _npy_header((10**6, 10**6)) + bytes(64))
            else:
                zf.writestr(f"{k}.npy", _npy_bytes(v))
        if kind == "zeros-unused-entry":
            _zeros_entry(zf, "junk.npy", GiB)
        elif kind == "zeros-known-name":
            _zeros_entry(zf, "diagnostics/junk.npy", GiB, _npy_header((GiB // 8,)))
    return path


def _npy_bytes(a):
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


HOSTILE = {  # kind: what the refusal names
    "zeros-unused-entry": "'junk.npy' that no bayesreg posterior holds",
    "zeros-known-name": "claims 1073741952 bytes from",
    "header-1e12": "header claims shape (1000000, 1000000)",
    "relu-basis-1e9": "needs a size of 1e+09",
    "nested-meta": "nests 100001 deep",
    "huge-meta": "expected at most 16777216 bytes",
}


@pytest.fixture(scope="module")
def exact_relu():
    return br.fit(br.relu_basis(5), X, Y, method=br.Exact())


@pytest.mark.parametrize("kind", [k for k in HOSTILE if k != "relu-basis-1e9"])
def test_hostile_files_are_refused_naming_the_limit(post, exact_relu, tmp_path, kind):
    """(relu_basis(10**9) once allocated 8 GB: it is checked in a subprocess, below)"""
    path = _hostile(kind, post, exact_relu, tmp_path)
    assert path.stat().st_size < 18 << 20  # 1 MB for the zeros, 17 MB for huge-meta
    with pytest.raises(ValueError, match="not a bayesreg posterior file") as err:
        br.load(path)
    assert HOSTILE[kind] in str(err.value)


PEAK_RSS = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))  # old code: MemoryError, not 8 GB
import bayesreg as br

def peak():
    # VmHWM: this process's own high-water mark. ru_maxrss is not: Linux carries the
    # parent's peak across fork and exec, so under a large test process it is the parent's
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

out = {}
br.load(sys.argv[1]).predict(br.load(sys.argv[1]).X_train)  # the baseline: a real load
out["baseline"] = ["loaded", peak()]
for path in sys.argv[2:]:
    try:
        br.load(path)
        outcome = "loaded"
    except Exception as err:
        outcome = f"{type(err).__name__}: {err}"
    out[path] = [outcome, peak()]
print(json.dumps(out))
"""


def test_hostile_files_are_refused_below_a_bounded_peak_memory(post, exact_relu, tmp_path):
    """Peak resident memory of one process loading a genuine file, then each hostile one
    (ru_maxrss only grows): each refusal may add at most 100 MB, and stays below 900 MB.
    Read naively, the zeros cost 1 GiB each, the header 4 TB, relu_basis(10**9) 8 GB."""
    good = tmp_path / "good.npz"
    post.save(good)
    paths = [str(_hostile(kind, post, exact_relu, tmp_path)) for kind in HOSTILE]
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": os.path.dirname(os.path.dirname(br.__file__))}
    run = subprocess.run([sys.executable, "-c", PEAK_RSS, str(good), *paths], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.splitlines()[-1])
    baseline = out.pop("baseline")[1]
    for path, (outcome, peak) in out.items():
        kind = os.path.basename(path)[:-4]
        assert outcome.startswith("ValueError: not a bayesreg posterior file"), (kind, outcome)
        assert HOSTILE[kind] in outcome, (kind, outcome)
        assert peak < baseline + (100 << 20) and peak < 900 << 20, (kind, peak, baseline)


def test_more_values_than_the_model_implies_are_refused(post, tmp_path, monkeypatch):
    monkeypatch.setattr(persistence, "DIAGNOSTICS_ALLOWANCE", 1000)
    path = _tampered(post, tmp_path, lambda a, m: a.update({"diagnostics/extra": np.ones(5000)}))
    with pytest.raises(ValueError, match=r"holds \d+ values; its model, 1 draws and 12 "
                                         r"training rows imply at most"):
        br.load(path)
    monkeypatch.undo()
    br.load(path)  # within the real allowance: a long loss trace is fine


@pytest.mark.parametrize("change", [
    lambda a, m: a.update({"params/weights_0": a["params/weights_0"].astype(object)}),
    lambda a, m: a.update({"X_train": a["X_train"].astype("U3")}),
], ids=["object", "strings"])
def test_entries_that_are_not_plain_numbers_are_refused_from_their_header(post, tmp_path,
                                                                         change):
    path = tmp_path / "post.npz"
    post.save(path)
    arrays = _arrays(path)
    change(arrays, None)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)  # savez pickles the object array
    with pytest.raises(ValueError, match="expected plain numbers"):
        br.load(path)


# --- a tampered noise ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def learned_noise():
    return br.fit(br.Linear(), X, Y, method=br.Exact())


@pytest.mark.parametrize("log_noise", [100.0, -1e4])
def test_a_tampered_noise_is_refused_at_load_not_predicted_as_inf(learned_noise, tmp_path,
                                                                 log_noise):
    path = _tampered(learned_noise, tmp_path, lambda a, m: a.update(
        {"theta/log_noise": np.full_like(a["theta/log_noise"], log_noise)}))
    with pytest.raises(ValueError, match=r"theta/log_noise holds .*overflow float32"):
        br.load(path)


def test_a_tampered_fixed_noise_is_refused_and_a_wide_one_still_loads(post, tmp_path):
    path = _tampered(post, tmp_path, lambda a, m: m["likelihood"].update(noise=1e100))
    with pytest.raises(ValueError, match="the likelihood's noise is σ = 1e\\+100"):
        br.load(path)
    path = _tampered(post, tmp_path, lambda a, m: m["likelihood"].update(noise=1e12))
    assert np.all(np.isfinite(br.load(path).predict(X).std))


# --- save: modes, links, leftovers ---------------------------------------------------------

@pytest.mark.parametrize("mode", [0o644, 0o640, 0o600])
def test_saving_over_a_file_keeps_its_mode(post, tmp_path, mode):
    path = tmp_path / "post.npz"
    path.write_bytes(b"old")
    path.chmod(mode)
    post.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    np.testing.assert_array_equal(br.load(path).predict(X).mean, post.predict(X).mean)


def test_a_new_file_gets_the_mode_open_would_give(post, tmp_path):
    old = os.umask(0o027)
    try:
        post.save(tmp_path / "post.npz")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "post.npz").stat().st_mode) == 0o640


@pytest.mark.parametrize("dangling", [False, True], ids=["to-a-file", "dangling"])
def test_saving_through_a_symlink_writes_its_target(post, tmp_path, dangling):
    (tmp_path / "store").mkdir()
    target = tmp_path / "store" / "real.npz"
    if not dangling:
        target.write_bytes(b"stale")
    link = tmp_path / "link.npz"
    link.symlink_to(os.path.join("store", "real.npz"))  # relative, as links often are
    post.save(link)
    assert link.is_symlink() and os.readlink(link) == os.path.join("store", "real.npz")
    np.testing.assert_array_equal(br.load(target).predict(X).mean, post.predict(X).mean)
    assert sorted(os.listdir(tmp_path)) == ["link.npz", "store"]


def test_a_save_removes_stale_temporary_files_of_its_own(post, tmp_path):
    hour_ago = time.time() - 3600
    for name in (".bayesreg-killed.tmp", ".bayesreg-running.tmp", "mine.tmp",
                 ".bayesreg-dir.tmp"):
        p = tmp_path / name
        p.mkdir() if name == ".bayesreg-dir.tmp" else p.write_bytes(b"x")
        if name != ".bayesreg-running.tmp":  # a save in progress writes: recent mtime
            os.utime(p, (hour_ago, hour_ago))
    post.save(tmp_path / "post.npz")
    assert sorted(os.listdir(tmp_path)) == [".bayesreg-dir.tmp", ".bayesreg-running.tmp",
                                            "mine.tmp", "post.npz"]


KILLED_SAVE = """
import os, signal, sys
import numpy as np
import bayesreg as br

post = br.load(sys.argv[1])
def killed(fh, **arrays):
    fh.write(b"PK half an archive")
    fh.flush()
    os.kill(os.getpid(), signal.SIGKILL)  # no handler, no finally runs
np.savez = killed
post.save(sys.argv[1])
"""


def test_a_killed_save_leaves_the_previous_file_and_a_temporary_file_the_next_save_removes(
        post, tmp_path):
    """What docs/reliability.md promises for SIGKILL: the previous file whole; its temporary
    file stays until a later save in that folder finds it older than STALE_AFTER."""
    path = tmp_path / "post.npz"
    post.save(path)
    before = path.read_bytes()
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": os.path.dirname(os.path.dirname(br.__file__))}
    run = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(path)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == -signal.SIGKILL, run.stderr[-3000:]
    assert path.read_bytes() == before
    (left,) = [n for n in os.listdir(tmp_path) if n != "post.npz"]
    assert left.startswith(".bayesreg-") and left.endswith(".tmp")
    post.save(path)  # too recent to be another save's leftover: kept
    assert sorted(os.listdir(tmp_path)) == sorted([left, "post.npz"])
    old = time.time() - archive.STALE_AFTER - 1
    os.utime(tmp_path / left, (old, old))
    post.save(path)
    assert os.listdir(tmp_path) == ["post.npz"]


def test_the_target_offset_round_trips(tmp_path):
    # br.fit centres a regression target; the offset is saved, and a loaded posterior
    # predicts in the units of y (a file without it loads with offset 0)
    X = np.linspace(0, 1, 20)
    y = 100.0 + 3 * X
    post = br.fit(br.Linear(), X, y, method=br.Exact(), prior=br.Gaussian(1.0),
                  likelihood=br.GaussianLikelihood(0.1))
    assert post.offset == pytest.approx(np.mean(y))
    post.save(tmp_path / "p.npz")
    back = br.load(tmp_path / "p.npz")
    assert back.offset == post.offset
    np.testing.assert_array_equal(back.predict(X).mean, post.predict(X).mean)
    np.testing.assert_allclose(back.predict(X).mean, y, atol=0.05)
