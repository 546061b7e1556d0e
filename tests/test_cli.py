import json

import matplotlib.image as mpimg
import numpy as np
import pytest

from bayesreg import cli


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
