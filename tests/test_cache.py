"""The persistent compilation cache of the command line (bayesreg.cache)."""

import os
import subprocess
import sys
import textwrap

import pytest

from bayesreg import cache


def test_the_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(cache.ENV, str(tmp_path / "c"))
    assert cache.default_cache_dir() == str(tmp_path / "c")
    monkeypatch.setenv(cache.ENV, "off")
    assert cache.default_cache_dir() is None and cache.enable_compilation_cache() is None
    monkeypatch.delenv(cache.ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache.default_cache_dir() == str(tmp_path / "bayesreg" / "jax")


def test_a_second_process_reads_the_programs_the_first_wrote(tmp_path):
    """Two fresh processes fit the same model: the first writes its compiled programs, the
    second compiles none of them again (JAX's cache hits) — the training loop included,
    which holds no progress callback while reports are silenced (JAX does not write a
    program with host callbacks to its cache: before, the loop was compiled in every
    process)."""
    code = textwrap.dedent(f"""
        from jax import monitoring
        import bayesreg as br
        from bayesreg.cache import enable_compilation_cache
        hits, compiled = [], []
        monitoring.register_event_listener(
            lambda e, **k: hits.append(e) if "cache_hits" in e else None)
        monitoring.register_event_duration_secs_listener(
            lambda e, s, **k: compiled.append(e) if e.endswith("backend_compile_duration")
            else None)
        enable_compilation_cache({str(tmp_path / "jax")!r})
        X, y = br.datasets.gap_example(n=30)
        br.fit(br.MLP((8,)), X, y, method=br.MAP(steps=50))
        print(len(hits), len(compiled))
    """)
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "BAYESREG_PROGRESS": "0"}
    runs = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, timeout=300) for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr + runs[1].stderr
    (first, _), (second, programs) = (map(int, r.stdout.split()[-2:]) for r in runs)
    assert first == 0 and second >= 2, (first, second)
    assert second == programs, f"{programs - second} of {programs} programs compiled again"
    cache.clear_compilation_cache(tmp_path / "jax")
    assert not (tmp_path / "jax").exists()


TRACED_CHILD = """
import sys
import numpy as np
from jax import monitoring
import bayesreg as br
from bayesreg import cache
traced = []
monitoring.register_event_duration_secs_listener(
    lambda e, s, fun_name="", **k: traced.append(fun_name)
    if e.endswith("jaxpr_trace_duration") and fun_name in ("flat", "train_loop") else None)
where = cache.enable_compilation_cache(sys.argv[1])
X, y = br.datasets.gap_example(n=30)
steps = int(sys.argv[2])
with cache.traced_programs(where):
    mean = br.fit(br.MLP((8,)), X, y, method=br.MAP(steps=steps)).predict(X).mean
loops = len(traced)
# outside the block the same fit is traced here, not read back
plain = br.fit(br.MLP((8,)), X, y, method=br.MAP(steps=steps)).predict(X).mean
print(loops, float(np.max(np.abs(mean - plain))))
"""


def test_the_command_line_reads_back_the_traced_training_loop(tmp_path):
    """The command line keeps the training loops as traced and lowered (traced_programs): a
    second process fitting the same settings traces no loop and gets the numbers of a loop
    traced in place; other settings (more steps) are not read from the first program, and a
    damaged file is exported again."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "BAYESREG_PROGRESS": "0"}

    def run(steps):
        r = subprocess.run([sys.executable, "-c", TRACED_CHILD, str(tmp_path / "jax"),
                            str(steps)], env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        loops, gap = r.stdout.split()[-2:]
        return int(loops), float(gap)

    first, second, other = run(50), run(50), run(60)
    assert first[0] >= 1 and second[0] == 0 and other[0] >= 1, (first, second, other)
    # the same program gives the same bits here; 1e-5 leaves XLA room to fuse the exported
    # call differently elsewhere (float32 rounding, predictions of size ~1), while a stale
    # program is far off: 50 and 60 steps differ by 0.17 in the predictive mean
    assert max(first[1], second[1], other[1]) <= 1e-5, (first, second, other)
    programs = list((tmp_path / "jax" / "traced").glob("*/*"))
    assert len(programs) == 2, programs
    for p in programs:
        p.write_bytes(b"not a program")
    loops, gap = run(50)
    assert loops == 1 and gap <= 1e-5, (loops, gap)
    assert sum(p.read_bytes() != b"not a program" for p in programs) == 1  # exported again


def _apply(f, x):
    return f(x)


def _product(a, b):
    return a @ b


def _double(x):
    return 2 * x


def _triple(x):
    return 3 * x


def test_a_setting_or_function_without_a_name_is_traced_in_place(tmp_path, monkeypatch):
    import jax
    import jax.numpy as jnp

    monkeypatch.setattr(cache, "_TRACED", str(tmp_path))
    applied = jax.jit(_apply, static_argnums=0)
    assert float(cache.traced_call(applied, 1, (), lambda x: 3 * x, jnp.ones(()))) == 3.0
    assert list(tmp_path.iterdir()) == []
    # two lambdas share the name "<lambda>": neither may be read back for the other
    for k in (2.0, 3.0):
        assert float(cache.traced_call(jax.jit(lambda x, k=k: k * x), 0, (), jnp.ones(()))) == k
    assert list(tmp_path.iterdir()) == []
    assert float(cache.traced_call(applied, 1, (), abs, -jnp.ones(()))) == 1.0
    # two functions with names: a program each
    assert float(cache.traced_call(jax.jit(_double), 0, (), jnp.ones(()))) == 2.0
    assert float(cache.traced_call(jax.jit(_triple), 0, (), jnp.ones(()))) == 3.0
    assert len(list(tmp_path.iterdir())) == 3


def test_a_jax_flag_set_for_the_call_keys_its_own_program(tmp_path):
    """A program traced under other JAX flags (here the matmul precision, set by a context
    manager for one call) is not read back: it is traced and stored apart."""
    import jax
    import jax.numpy as jnp

    product = jax.jit(_product)
    a = jnp.ones((3, 3))
    with cache.traced_programs(tmp_path):
        cache.traced_call(product, 0, (), a, a)
        with jax.default_matmul_precision("highest"):
            cache.traced_call(product, 0, (), a, a)
        cache.traced_call(product, 0, (), a, a)
    assert len(list((tmp_path / "traced").glob("*/*"))) == 2


def test_a_program_that_cannot_be_written_is_still_used(tmp_path, monkeypatch):
    import jax
    import jax.numpy as jnp

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache.tempfile, "mkstemp", full)
    with cache.traced_programs(tmp_path):
        out = cache.traced_call(jax.jit(_double), 0, (), jnp.ones(2))
    assert out.tolist() == [2.0, 2.0]
    assert list((tmp_path / "traced").glob("*/*")) == []


def test_the_programs_of_other_source_files_are_removed_and_nothing_else(tmp_path):
    stale = tmp_path / "traced" / ("0123456789abcdef" * 2) / "program"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"traced by another version")
    (tmp_path / "traced" / "notes").mkdir()  # not a fingerprint's folder: kept
    with cache.traced_programs(tmp_path):
        pass
    assert sorted(p.name for p in (tmp_path / "traced").iterdir()) == sorted(
        [cache._fingerprint(), "notes"])


def test_a_cache_folder_that_cannot_be_made_warns_and_runs_without(tmp_path):
    blocked = tmp_path / "a file"
    blocked.write_text("in the way")
    with pytest.warns(UserWarning, match="no compilation cache"):
        assert cache.enable_compilation_cache(blocked / "jax") is None


def test_a_call_under_a_transformation_is_traced_in_place(tmp_path):
    import jax
    import jax.numpy as jnp

    with cache.traced_programs(tmp_path):
        out = jax.vmap(lambda x: cache.traced_call(jax.jit(_double), 0, (), x))(jnp.ones(3))
    assert out.tolist() == [2.0, 2.0, 2.0]
    assert list((tmp_path / "traced").glob("*/*")) == []
