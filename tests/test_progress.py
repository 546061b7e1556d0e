"""Progress reports (bayesreg._progress): periodic lines in a pipe, silence for short work,
with ``progress_bar=False`` and with ``--quiet``, one report for a vmapped ensemble, and the
same draws with progress on as off.

pytest's captured stderr is not a terminal, so every report here is the pipe's plain lines.
"Long" fits are made long by lowering the 2 s threshold (``DELAY``) to 0, not by running
for seconds; the clock-driven rules are checked with a fake clock.
"""

import re

import jax
import numpy as np
import pytest

import bayesreg as br
from bayesreg import _progress, cli

LINE = re.compile(r"^(?P<desc>[^:]+): (?P<done>\d+)/(?P<total>\d+)( \w+)? \((?P<pct>\d+)%\), "
                  r"(?P<t>[\d.]+) s")


def _lines(err: str, desc: str) -> list[re.Match]:
    return [m for m in map(LINE.match, err.splitlines()) if m and m["desc"] == desc]


@pytest.fixture
def long_work(monkeypatch):
    """Every loop counts as long (no 2 s wait) and every tick prints a line (the heartbeat of
    NUTS and VI then repeats the last count every 50 ms: tests count distinct counts)."""
    monkeypatch.setattr(_progress, "DELAY", 0.0)
    monkeypatch.setattr(_progress, "INTERVAL", 0.0)
    monkeypatch.delenv("BAYESREG_PROGRESS", raising=False)


class _Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_reporter_waits_two_seconds_then_prints_a_line_every_interval(monkeypatch, capsys):
    clock = _Clock()
    monkeypatch.setattr(_progress.time, "perf_counter", clock)
    monkeypatch.delenv("BAYESREG_PROGRESS", raising=False)
    rep = _progress.Reporter("MAP (adam)", 8000)
    for step in range(0, 8001, 80):  # 100 ticks over 20 s of fake wall time
        rep.update(step)
        clock.now += 0.2
    lines = _lines(capsys.readouterr().err, "MAP (adam)")
    # nothing in the first 2 s, then one line per 5 s, and one at the end
    assert [int(m["done"]) for m in lines] == [800, 2800, 4800, 6800, 8000]
    assert float(lines[0]["t"]) >= _progress.DELAY
    assert all(int(m["total"]) == 8000 for m in lines)


def test_short_work_prints_nothing(monkeypatch, capsys):
    clock = _Clock()
    monkeypatch.setattr(_progress.time, "perf_counter", clock)
    monkeypatch.delenv("BAYESREG_PROGRESS", raising=False)
    rep = _progress.Reporter("MAP (adam)", 1000)
    for step in range(0, 1001, 10):  # 1.9 s in all
        rep.update(step)
        clock.now += 0.019
    rep.close()
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_a_short_fit_with_the_default_prints_nothing(linear_data, capsys, monkeypatch):
    monkeypatch.delenv("BAYESREG_PROGRESS", raising=False)
    X, y, _ = linear_data
    # the loop runs well under 2 s (MAP counts from the loop's start, compilation aside)
    br.fit(br.Linear(), X, y, method=br.MAP(steps=300))
    br.fit(br.MLP((8,)), X, y, method=br.Ensemble(members=3, training=br.MAP(steps=300)))
    assert capsys.readouterr().err == ""


def test_map_in_a_pipe_prints_periodic_lines_and_the_end(linear_data, capsys, long_work):
    X, y, _ = linear_data
    br.fit(br.Linear(), X, y, method=br.MAP(steps=5000, hyperparameters="joint"),
           prior=br.Gaussian(1.0))
    err = capsys.readouterr().err
    lines = _lines(err, "MAP (adam)")
    # a tick every 1000 updates (MIN_UNITS; at most 100 in all), not one line per step
    assert [int(m["done"]) for m in lines] == [0, 1000, 2000, 3000, 4000, 5000], err
    assert lines[-1]["pct"] == "100"
    assert "\r" not in err  # plain lines, no bar redrawn in place


def test_ensemble_reports_once_not_per_member(linear_data, capsys, long_work):
    X, y, _ = linear_data
    br.fit(br.MLP((8,)), X, y, prior=br.Gaussian(1.0), likelihood=br.GaussianLikelihood(0.5),
           method=br.Ensemble(members=5, training=br.MAP(steps=3000)))
    err = capsys.readouterr().err
    lines = _lines(err, "Ensemble")  # the method's own name, not its members' "MAP (adam)"
    assert "MAP (adam)" not in err
    done = [int(m["done"]) for m in lines]
    assert done == [0, 1000, 2000, 3000]  # one line per tick, not one per member
    assert len(done) == len(set(done)) and len(done) <= 102


def test_progress_bar_false_prints_nothing_and_keeps_the_result(linear_data, capsys,
                                                                 long_work):
    X, y, _ = linear_data
    kw = {"prior": br.Gaussian(1.0), "likelihood": br.GaussianLikelihood(0.5)}
    off = br.fit(br.Linear(), X, y, method=br.MAP(steps=500, progress_bar=False), **kw)
    assert capsys.readouterr().err == ""
    on = br.fit(br.Linear(), X, y, method=br.MAP(steps=500), **kw)
    assert _lines(capsys.readouterr().err, "MAP (adam)")
    for a, b in zip(jax.tree_util.tree_leaves(off.params), jax.tree_util.tree_leaves(on.params),
                    strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_silenced_and_the_environment_variable_print_nothing(linear_data, capsys, long_work,
                                                             monkeypatch):
    X, y, _ = linear_data
    method = br.MAP(steps=300, progress_bar=True)
    with _progress.silenced():
        br.fit(br.Linear(), X, y, method=method)
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("BAYESREG_PROGRESS", "0")
    br.fit(br.Linear(), X, y, method=method)
    assert capsys.readouterr().err == ""


@pytest.mark.slow
@pytest.mark.parametrize("chain_method", ["sequential", "vectorized"])
def test_nuts_lines_in_a_pipe_and_the_same_draws(book_data, capsys, long_work, chain_method):
    X, y = book_data
    kw = {"likelihood": br.GaussianLikelihood(0.3), "prior": br.Gaussian(1.0), "seed": 3}
    settings = {"num_warmup": 60, "num_samples": 40, "num_chains": 2,
                "chain_method": chain_method}
    off = br.fit(br.Polynomial(3), X, y, method=br.NUTS(progress_bar=False, **settings), **kw)
    assert capsys.readouterr().err == ""
    on = br.fit(br.Polynomial(3), X, y, method=br.NUTS(**settings), **kw)
    err = capsys.readouterr().err
    lines = _lines(err, "NUTS")
    total = 200 if chain_method == "sequential" else 100  # sequential chains count in turn
    assert lines and int(lines[-1]["done"]) == total == int(lines[-1]["total"]), err
    assert len({int(m["done"]) for m in lines}) <= 2 * 102
    assert ("chain 2/2" in err) == (chain_method == "sequential")
    for a, b in zip(jax.tree_util.tree_leaves(off.params), jax.tree_util.tree_leaves(on.params),
                    strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow
def test_vi_lines_in_a_pipe_and_the_same_draws(book_data, capsys, long_work):
    X, y = book_data
    kw = {"likelihood": br.GaussianLikelihood(0.3), "prior": br.Gaussian(1.0), "seed": 2}
    off = br.fit(br.Polynomial(3), X, y,
                 method=br.VI(steps=400, num_samples=50, progress_bar=False), **kw)
    assert capsys.readouterr().err == ""
    on = br.fit(br.Polynomial(3), X, y, method=br.VI(steps=400, num_samples=50), **kw)
    err = capsys.readouterr().err
    lines = _lines(err, "VI")
    assert lines and int(lines[-1]["done"]) == 400, err
    assert len({int(m["done"]) for m in lines}) <= 102
    np.testing.assert_array_equal(off.diagnostics["elbo"], on.diagnostics["elbo"])
    for a, b in zip(jax.tree_util.tree_leaves(off.params), jax.tree_util.tree_leaves(on.params),
                    strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _csv(path, n=40):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, n)
    y = 2 * x + 0.3 * rng.standard_normal(n)
    path.write_text("x,y\n" + "".join(f"{a},{b}\n" for a, b in zip(x, y, strict=True)))
    return path


def test_cli_quiet_prints_no_progress(tmp_path, capsys, long_work):
    args = ["compare", str(_csv(tmp_path / "d.csv")), "--target", "y", "--methods", "map",
            "--model", "linear", "--prior", "gaussian:1.0", "--out", str(tmp_path / "o")]
    assert cli.main(args) == 0
    err = capsys.readouterr().err  # a training loop reports by its line: cacheable on disk
    assert "fitting map" in err and not _lines(err, "MAP (adam)")
    assert cli.main([*args, "--loop-progress"]) == 0
    err = capsys.readouterr().err
    assert "fitting map" in err and _lines(err, "MAP (adam)")
    assert _progress.in_loop(True) is True  # the command's setting ends with it
    assert cli.main([*args, "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "| map |" in captured.out
    assert not _progress.is_silenced()  # --quiet ends with the command


@pytest.mark.parametrize("command", ["demo", "compare", "bench"])
def test_every_command_takes_quiet(command, capsys):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    assert "--quiet" in capsys.readouterr().out
    if command == "demo":  # refused before any fit: the flag parses, nothing else prints
        assert cli.main(["demo", "--quiet", "--knots", "0"]) == 2
        assert capsys.readouterr().err.startswith("bayesreg demo: error: --knots")


def test_a_silenced_fit_compiles_no_callback():
    # the program is another static setting (progress_bar=False), so it is cacheable on disk
    # and a report after the silence is not lost to a program compiled without callbacks
    model = br.MLP((4,))
    assert br.MAP().resolved(model).progress_bar is None
    with _progress.silenced():
        assert br.MAP().resolved(model).progress_bar is False
        assert br.MAP(progress_bar=True).resolved(model).progress_bar is False
    with _progress.cacheable_loops():
        assert br.MAP(progress_bar=True).resolved(model).progress_bar is False
    assert br.MAP(progress_bar=True).resolved(model).progress_bar is True
