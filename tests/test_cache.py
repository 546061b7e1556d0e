"""The persistent compilation cache of the command line (bayesreg.cache)."""

import os
import subprocess
import sys
import textwrap

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
