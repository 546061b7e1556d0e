"""Issue 23: the command line's seeds and splits, refused on one line with exit code 2."""

from __future__ import annotations

import pytest

from bayesreg import cli
from tests.test_cli import _csv, _one_error_line


@pytest.mark.parametrize(("extra", "message"), [
    # a traceback before (every row held out)
    (["--test-size", "0.99"], "--test-size 0.99 holds out 20 of 20 rows and leaves 0 to train on"),
    # "the target is constant" before: one training row is constant for another reason
    (["--test-size", "0.97"], "--test-size 0.97 holds out 19 of 20 rows and leaves 1 to train on"),
    # argparse's usage block and "invalid int value" before
    (["--seed", "2**70"], "--seed must be an integer >= 0; got 2**70"),
    (["--seed", "-1"], "--seed must be an integer >= 0; got -1"),
    (["--test-size", "x"], "argument --test-size: invalid float value: 'x'"),
])
def test_seed_and_split_errors_are_one_line_exit_2(tmp_path, capsys, extra, message):
    data = _csv(tmp_path / "d.csv", n=20)
    args = ["compare", str(data), "--target", "y", "--out", str(tmp_path / "out"),
            "--methods", "map", "--model", "linear", "--quick", *extra]
    assert _exit_code(args) == 2
    assert message in _one_error_line(capsys.readouterr().err)


def _exit_code(args) -> int:
    """cli.main's return code, or the code argparse exits with."""
    try:
        return cli.main(args)
    except SystemExit as stop:
        return stop.code


def test_a_seed_beyond_64_bits_is_accepted(tmp_path, capsys):
    # OverflowError from JAX (exit 1, a traceback) before
    data = _csv(tmp_path / "d.csv", n=40)
    args = ["compare", str(data), "--target", "y", "--out", str(tmp_path / "out"),
            "--methods", "map", "--model", "linear", "--quick", "--prior", "gaussian:1",
            "--seed", str(2**70)]
    assert cli.main(args) == 0
    assert "Traceback" not in capsys.readouterr().err
