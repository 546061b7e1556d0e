import json
import os
import re

import matplotlib.image as mpimg
import numpy as np
import pytest

from bayesreg import cli


@pytest.mark.slow  # the full demo / a NUTS run through the CLI
def test_demo_writes_figure_and_table(tmp_path, capsys):
    assert cli.main(["demo", "--out", str(tmp_path), "--knots", "6", "--quick"]) == 0
    image = mpimg.imread(tmp_path / "bands.png")
    assert image.shape[0] > 500 and image.shape[1] > 800 and image.std() > 0.05
    rows = json.loads((tmp_path / "metrics.json").read_text())
    methods = [r["method"] for r in rows]
    assert methods == ["Exact"] * 3 + ["MAP", "Laplace", "VI", "NUTS", "MC dropout",
                                       "Ensemble(10)"]
    exact100 = rows[1]
    for r in rows[3:7]:  # same basis and prior: the same mean as the exact posterior
        assert r["rmse"] == pytest.approx(exact100["rmse"], abs=0.01)
    assert rows[4]["log_evidence"] == pytest.approx(exact100["log_evidence"], rel=1e-6)
    assert "| method |" in capsys.readouterr().out


def _csv(path, n=60, bad=None):
    rng = np.random.default_rng(0)
    x1, x2 = rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)
    y = 3 * x1 - x2 + 10 + 0.5 * rng.standard_normal(n)
    lines = ["x1,x2,y"] + [f"{a},{b},{c}" for a, b, c in zip(x1, x2, y, strict=True)]
    if bad:
        lines[5] = bad
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
def test_compare_writes_report_metrics_and_figure(tmp_path, capsys):
    data = _csv(tmp_path / "d.csv")
    out = tmp_path / "out"
    code = cli.main(["compare", str(data), "--target", "y", "--methods", "map,exact,laplace",
                     "--model", "linear", "--prior", "gaussian:1.0", "--out", str(out)])
    assert code == 0
    report = (out / "report.md").read_text()
    assert "| map |" in report and "| exact |" in report
    metrics = json.loads((out / "metrics.json").read_text())
    rows = {r["method"]: r for r in metrics["rows"]}
    # original units: noise sd 0.5 on a target around 10, so the RMSE is near 0.5
    assert 0.3 < rows["exact"]["rmse"] < 0.8
    assert rows["exact"]["rmse"] == pytest.approx(rows["map"]["rmse"], abs=1e-3)
    assert mpimg.imread(out / "compare.png").std() > 0.01
    assert "fitting map" in capsys.readouterr().err


@pytest.mark.slow
def test_compare_skips_methods_that_do_not_apply(tmp_path):
    data = _csv(tmp_path / "d.csv")
    out = tmp_path / "o"
    assert cli.main(["compare", str(data), "--target", "y", "--features", "x1",
                     "--methods", "exact,ensemble", "--model", "mlp:8", "--quick",
                     "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert [r["method"] for r in metrics["rows"]] == ["ensemble"]
    assert metrics["skipped"] and metrics["features"] == ["x1"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compare", "missing.csv", "--target", "y"], "no such file"),
        (["compare", "{csv}", "--target", "z"], "no column 'z'"),
        (["compare", "{csv}", "--target", "y", "--features", "x9"], "no column"),
        (["compare", "{bad}", "--target", "y"], "is not a number"),
        (["compare", "{csv}", "--target", "y", "--methods", "svm"], "--methods"),
        (["compare", "{csv}", "--target", "y", "--model", "tree"], "--model"),
        (["compare", "{csv}", "--target", "y", "--prior", "gaussian"], "--prior"),
        (["compare", "{csv}", "--target", "y", "--test-size", "1.5"], "--test-size"),
    ],
)
def test_compare_user_errors_exit_with_code_2(tmp_path, capsys, args, message):
    good = _csv(tmp_path / "good.csv")
    bad = _csv(tmp_path / "bad.csv", bad="0.1,abc,3")
    args = [a.format(csv=good, bad=bad) for a in args]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("command", [[], ["demo"], ["compare"]])
def test_help_on_every_command(capsys, command):
    with pytest.raises(SystemExit) as err:
        cli.main([*command, "--help"])
    assert err.value.code == 0
    assert "usage: bayesreg" in capsys.readouterr().out


def test_bench_comparisons_report_ratios():
    from bayesreg import bench

    small = {"map": lambda: bench.bench_map(n=50, steps=20, repeats=1),
             "exact": lambda: bench.bench_exact(n=200, d=3, repeats=1)}
    results = {"device": "cpu", "machine": "test", **{k: f() for k, f in small.items()}}
    text = bench.to_markdown(results)
    assert "| MAP, 1-50-1 MLP" in text and "BayesianRidge" in text
    for r in (results["map"], results["exact"]):
        assert r["ratio"] > 0 and r["bayesreg"]["median_seconds"] > 0


@pytest.mark.slow  # the full demo / a NUTS run through the CLI
def test_compare_with_nuts_reports_the_w1_floor(tmp_path, monkeypatch):
    import bayesreg as br

    make = cli.make_method
    monkeypatch.setattr(cli, "make_method", lambda name, quick=False: br.NUTS(
        num_warmup=100, num_samples=200, num_chains=1, progress_bar=False)
        if name == "nuts" else make(name, quick))
    data = _csv(tmp_path / "d.csv")
    out = tmp_path / "out"
    assert cli.main(["compare", str(data), "--target", "y", "--methods", "exact,nuts",
                     "--model", "linear", "--prior", "gaussian:1.0", "--out", str(out)]) == 0
    rows = json.loads((out / "metrics.json").read_text())["rows"]
    floor = rows[0]["w1_floor"]
    assert floor > 0 and all(r["w1_floor"] == floor for r in rows)
    assert all(r["w1_to_nuts"] > 0 for r in rows)
    assert "| w1_to_nuts | w1_floor |" in (out / "report.md").read_text()


PROGRESS = re.compile(r"^[^:]+: \d+/\d+( \w+)? \(\d+%\), ")


def _one_error_line(err):
    """stderr of a refused run: the error, on one line, and no traceback (progress lines
    'fitting ...' and a slow fit's 'MAP (adam): 500/1000 (50%), 2.1 s' aside)."""
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("fitting ")
             and not PROGRESS.match(ln)]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("bayesreg compare: error: ")
    return lines[0]


def _write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        # silent wrong answers before: the target as a feature gave RMSE 0.000
        (["--features", "x1,y"], "--features lists the target 'y'"),
        (["--features", "x1,x1"], "--features lists 'x1' twice"),
        (["--seed", "-1"], "--seed must be an integer >= 0; got -1"),
        (["--out", "{file}"], "is a file, not a folder"),
        (["--out", "{file}/sub"], "cannot create the folder"),
        # the default model is a network: Exact cannot fit it and nothing was left to run
        (["--methods", "exact"], "none of --methods exact can fit --model mlp:50; these can: map,"
                                 "laplace,laplace-ll,vi,nuts"),
    ],
)
def test_compare_argument_errors_are_one_line_exit_2(tmp_path, capsys, extra, message):
    data = _csv(tmp_path / "d.csv")
    file = _write(tmp_path / "a-file", "x")
    args = ["compare", str(data), "--target", "y", "--out", str(tmp_path / "out"),
            *[a.format(file=file) for a in extra]]
    assert cli.main(args) == 2
    assert message in _one_error_line(capsys.readouterr().err)


def _rows(n=30, seed=1):
    rng = np.random.default_rng(seed)
    x1, x2 = rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)
    return [f"{a},{b},{3 * a - b + 0.1 * e}"
            for a, b, e in zip(x1, x2, rng.standard_normal(n), strict=True)]


@pytest.mark.parametrize(
    ("text", "extra", "message"),
    [
        # a duplicated header used the first column twice, silently
        ("a,a,y\n" + "\n".join(r for r in _rows()) + "\n", [],
         "column 'a' appears 2 times in the header"),
        ("x1,x2,y\n" + "\n".join(f"{r.rsplit(',', 1)[0]},5" for r in _rows()) + "\n", [],
         "the target 'y' is constant (5 in every training row)"),
        # a wide prior given: 4 rows and 4 coefficients interpolate (a learned prior shrinks)
        ("x1,x2,y\n" + "\n".join(_rows()[:5]) + "\n", ["--model", "poly:3", "--methods",
                                                        "exact", "--prior", "gaussian:100"],
         "exact failed on 4 training rows with --model poly:3: cannot learn the noise"),
        ("x1,x2,y\n" + "\n".join([*_rows()[:7], "0.5,,1.0", *_rows()[7:]]) + "\n", [],
         "column 'x2' has 1 missing cell, the first at line 9; pass --dropna"),
        ("x1,x2,y\n" + "\n".join([*_rows()[:3], "0.5,abc,1.0", *_rows()[3:]]) + "\n", [],
         "line 5, column 'x2': 'abc' is not a number"),
        ("x1,x2,y\n" + "\n".join([*_rows()[:3], "0.5,inf,1.0", *_rows()[3:]]) + "\n", [],
         "line 5, column 'x2': inf is not a finite number"),
        ("x1,x2,y\n" + "\n".join([*_rows()[:3], "0.5,1,1.0,7", *_rows()[3:]]) + "\n", [],
         "line 5"),
        ("x1,x2,y\n\n\n", [], "needs a header row and at least one data row"),
    ],
)
def test_compare_data_errors_are_one_line_exit_2(tmp_path, capsys, text, extra, message):
    data = _write(tmp_path / "d.csv", text)
    args = ["compare", str(data), "--target", "y", "--out", str(tmp_path / "out"),
            *(extra or ["--model", "linear", "--methods", "exact"])]
    assert cli.main(args) == 2
    assert message in _one_error_line(capsys.readouterr().err)


def test_compare_unwritable_out_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    data = _csv(tmp_path / "d.csv")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.access(locked, os.W_OK):  # root ignores the mode: make cli's open() say it instead
        real_open = open

        def refusing_open(path, *args, **kwargs):
            if str(path).startswith(str(locked)):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(cli, "open", refusing_open, raising=False)
    code = cli.main(["compare", str(data), "--target", "y", "--model", "linear", "--methods",
                     "exact", "--out", str(locked)])
    locked.chmod(0o700)
    assert code == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "cannot write to --out" in line and "Permission denied" in line


def test_compare_accepts_trailing_blank_lines_and_drops_missing_rows_on_request(tmp_path,
                                                                               capsys):
    rows = _rows(40)
    clean = _write(tmp_path / "clean.csv", "x1,x2,y\n" + "\n".join(rows) + "\n")
    blank = _write(tmp_path / "blank.csv", "x1,x2,y\n" + "\n".join(rows) + "\n\n\n")
    holes = _write(tmp_path / "holes.csv",
                   "x1,x2,y\n" + "\n".join([*rows, "0.1,,2.0", ",0.2,"]) + "\n")
    common = ["--target", "y", "--model", "linear", "--methods", "exact"]
    results = {}
    for name, path, extra in (("clean", clean, []), ("blank", blank, []),
                              ("holes", holes, ["--dropna"])):
        assert cli.main(["compare", str(path), *common, *extra,
                         "--out", str(tmp_path / name)]) == 0, capsys.readouterr().err
        results[name] = json.loads((tmp_path / name / "metrics.json").read_text())
    assert results["blank"]["rows"][0]["rmse"] == results["clean"]["rows"][0]["rmse"]
    # the same 40 complete rows survive --dropna, and the report says how many were dropped
    assert results["holes"]["rows"][0]["rmse"] == results["clean"]["rows"][0]["rmse"]
    assert results["holes"]["dropped_rows"] == 2 and results["clean"]["dropped_rows"] == 0
    assert "2 rows with missing cells dropped" in (tmp_path / "holes" / "report.md").read_text()
    assert "dropped 2 rows with missing cells" in capsys.readouterr().err


def test_compare_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        cli.main(["compare", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for default in ("(default: map,laplace,ensemble)", "(default: mlp:50)",
                    "(default: learned)", "(default: 0.2)", "(default: 0)",
                    "(default: bayesreg-compare)"):
        assert default in out
    assert "--dropna" in out


def test_compare_shows_every_warning_in_full(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 40)
    path = tmp_path / "exact.csv"
    path.write_text("x,y\n" + "".join(f"{a},{2 * a + 1}\n" for a in x))  # noiseless
    out = tmp_path / "o"
    assert cli.main(["compare", str(path), "--target", "y", "--methods", "map",
                     "--model", "linear", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    report = (out / "report.md").read_text()
    # the message has colons: all of it, after the first colon too, in both places
    tail = "the model fits these targets exactly"
    assert "noise at its floor" in err and tail in err
    assert tail in report
    rows = json.loads((out / "metrics.json").read_text())["rows"]
    assert any(tail in m for m in rows[0]["warnings"])


@pytest.mark.parametrize("sep", ["\t", ";"])
def test_compare_sniffs_the_separator_and_takes_sep(tmp_path, capsys, sep):
    # a tab- or semicolon-separated file was read as one column ("no column 'y'; columns are
    # ['x1\tx2\ty']"): the header line is sniffed, and --sep names it outright
    text = _csv(tmp_path / "c.csv").read_text().replace(",", sep)
    data = _write(tmp_path / "d.txt", text)
    X, y, names, _ = cli.read_csv(str(data), "y", None)
    assert names == ["x1", "x2"] and X.shape == (60, 2) and y.shape == (60,)
    X2, *_ = cli.read_csv(str(data), "y", None, sep=sep)
    np.testing.assert_array_equal(X, X2)
    # the wrong separator given: one line that names --sep
    args = ["compare", str(data), "--target", "y", "--out", str(tmp_path / "out"),
            "--sep", ",", "--model", "linear", "--methods", "exact"]
    assert cli.main(args) == 2
    assert "--sep" in _one_error_line(capsys.readouterr().err)
    args[args.index(",")] = "\\t" if sep == "\t" else sep
    assert cli.main(args) == 0
