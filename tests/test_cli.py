import json

import matplotlib.image as mpimg
import pytest

from bayesreg import cli


def test_demo_writes_figure_and_table(tmp_path, capsys):
    assert cli.main(["demo", "--out", str(tmp_path), "--knots", "6"]) == 0
    image = mpimg.imread(tmp_path / "bands.png")
    assert image.shape[0] > 300 and image.shape[1] > 600 and image.std() > 0.05
    rows = json.loads((tmp_path / "metrics.json").read_text())
    assert len(rows) == 6 and {r["method"] for r in rows} == {"MAP", "Exact"}
    exact = [r for r in rows if r["method"] == "Exact"]
    maps = [r for r in rows if r["method"] == "MAP"]
    for e, m in zip(exact, maps, strict=True):
        assert e["rmse"] == pytest.approx(m["rmse"], abs=1e-4)  # same mean, as the theory says
        assert e["log_evidence"] is not None and m["log_evidence"] is None
    assert "| method |" in capsys.readouterr().out


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as err:
        cli.main(["--help"])
    assert err.value.code == 0
    assert "demo" in capsys.readouterr().out
