"""Command line: ``bayesreg demo``, ``bayesreg compare`` and ``bayesreg bench``.

Progress goes to stderr: a "fitting ..." line per method, and for a sampler (NUTS, VI,
SGLD) that runs longer than 2 s a bar (terminal) or a line every 5 s (pipe, log); see
``bayesreg._progress``. The training loops (MAP, the ensemble, MC dropout, SWAG, Laplace)
report only by their "fitting" line, so their compiled programs hold no host callback and the
disk cache keeps them (``--loop-progress``: their in-loop reports too, compiled again in every
run). ``--quiet`` (or ``BAYESREG_PROGRESS=0``) silences every report; warnings, errors and
results still print. Compiled programs are kept on disk for the next run (``~/.cache/bayesreg/jax``;
``BAYESREG_COMPILATION_CACHE=off`` or another folder: :mod:`bayesreg.cache`).

Examples
--------
$ bayesreg demo --out bayesreg-demo
$ bayesreg compare data.csv --target y --methods map,laplace,ensemble --model mlp:50
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import sys
import time
import warnings

import numpy as np

import bayesreg as br
from bayesreg import _progress, bench, methods, plots
from bayesreg._random import holdout
from bayesreg._report import column_notes, json_rows, messages, say
from bayesreg._report import table as markdown_table
from bayesreg.cache import enable_compilation_cache, traced_programs
from bayesreg.compare import check_test_rows, w1_to_reference
from bayesreg.demo import demo
from bayesreg.selection import learn_prior

METHOD_NAMES = tuple(methods.command_line())


class UsageError(Exception):
    """A user error: printed without a traceback, exit code 2."""


def make_method(name: str, quick: bool = False):
    """The method the command line runs as ``name`` (the methods package lists them)."""
    return methods.command_line(quick)[name]


def parse_model(text: str):

    kind, _, arg = text.partition(":")
    try:
        if kind == "linear" and not arg:
            return br.Linear()
        if kind == "poly":
            return br.Polynomial(int(arg))
        if kind == "mlp":
            return br.MLP(tuple(int(h) for h in arg.split(",")) if arg else (50,))
    except ValueError as err:
        raise UsageError(f"--model {text!r}: {err}") from None
    raise UsageError(f"--model must be linear, poly:DEGREE or mlp:WIDTH[,WIDTH...]; got {text!r}")


def parse_prior(text: str):
    """A prior from the command line; "learned" (the default) is None: compare then learns
    Gaussian scales once by the evidence (``bayesreg.selection.learn_prior``) and every
    method fits under them."""
    if text == "learned":
        return None
    kind, *args = text.split(":")
    try:
        values = [float(a) for a in args]
        if kind == "flat" and not values:
            return br.Flat()
        if kind in ("gaussian", "laplace", "cauchy") and len(values) == 1:
            return {"gaussian": br.Gaussian, "laplace": br.Laplace, "cauchy": br.Cauchy}[kind](
                values[0])
        if kind == "studentt" and len(values) == 2:
            return br.StudentT(values[0], values[1])
    except ValueError as err:
        raise UsageError(f"--prior {text!r}: {err}") from None
    raise UsageError("--prior must be learned, gaussian:SCALE, laplace:SCALE, cauchy:SCALE, "
                     f"studentt:DF:SCALE or flat; got {text!r}")


def _line_of(path: str, row: int) -> int:
    """The file line of data row ``row`` (0-based, as pandas numbers them: blank lines
    skipped, the header on line 1). Only called to word an error message."""
    seen = -1
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        next(fh, None)
        for line_no, line in enumerate(fh, start=2):
            if line.strip():
                seen += 1
                if seen == row:
                    return line_no
    return row + 2


SEPARATORS = ",;\t|"  # what the header line is sniffed for when --sep is not given


def sniff_separator(line: str) -> str:
    r"""The field separator of a header line: the one of ``SEPARATORS`` that occurs most
    (a comma when none does).

    Examples
    --------
    >>> sniff_separator("x\ty\tz"), sniff_separator("a;b"), sniff_separator("one")
    ('\t', ';', ',')
    """
    counts = {sep: line.count(sep) for sep in SEPARATORS}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def read_csv(path: str, target: str, features: list[str] | None, dropna: bool = False,
             sep: str | None = None):
    """(X, y, feature names, rows dropped) from a CSV with a header row.

    Read by pandas (fast, little memory); blank lines are skipped. ``sep`` is the field
    separator; None: sniffed from the header line (comma, semicolon, tab or bar). Every used
    cell must be a finite number. A missing cell is an error naming its column and line,
    unless ``dropna``: then every row with a missing cell in a used column is dropped (and
    counted).
    """
    import pandas as pd  # deferred: 0.15 s to import, paid only by commands that read a CSV

    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such file")
    if sep is not None and len(sep) != 1:
        raise UsageError(f"--sep must be one character (e.g. ';' or '\\t' for a tab); got "
                         f"{sep!r}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            line = fh.readline()
        sep = sniff_separator(line) if sep is None else sep
        first = next(csv.reader([line], delimiter=sep), None)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise UsageError(f"{path}: cannot read as CSV ({err})") from None
    if not first:
        raise UsageError(f"{path}: needs a header row and at least one data row")
    header = [h.strip() for h in first]
    if target not in header:
        hint = (f" (the header splits into {len(header)} column(s) at {sep!r}: give the "
                "file's separator with --sep)") if len(header) < 3 else ""
        raise UsageError(f"{path}: no column {target!r}; columns are {header}{hint}")
    if features:
        if target in features:
            raise UsageError(f"--features lists the target {target!r}: a column cannot "
                             "predict itself; leave it out of --features")
        twice = sorted({f for f in features if features.count(f) > 1})
        if twice:
            raise UsageError(f"--features lists {twice[0]!r} twice")
        missing = [f for f in features if f not in header]
        if missing:
            raise UsageError(f"{path}: no column(s) {missing}; columns are {header}")
    else:
        unnamed = [i + 1 for i, h in enumerate(header) if not h]
        if unnamed:
            print(f"ignoring column(s) {unnamed} of {path}: no name in the header",
                  file=sys.stderr)
        features = [h for h in header if h and h != target]
    if not features:
        raise UsageError(f"{path}: no feature columns besides the target")
    used = [*features, target]
    for name in used:
        if header.count(name) > 1:
            places = [i + 1 for i, h in enumerate(header) if h == name]
            raise UsageError(f"{path}: column {name!r} appears {len(places)} times in the "
                             f"header (columns {places}); rename the copies")
    cols = [header.index(c) for c in used]
    try:
        frame = pd.read_csv(path, sep=sep, encoding="utf-8-sig", low_memory=False)
    except pd.errors.EmptyDataError:
        raise UsageError(f"{path}: needs a header row and at least one data row") from None
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as err:
        reason = str(err).strip().splitlines()[-1].replace("Error tokenizing data. C error: ",
                                                           "")
        raise UsageError(f"{path}: cannot read as CSV ({reason})") from None
    if not isinstance(frame.index, pd.RangeIndex):
        raise UsageError(f"{path}, line 2: more fields than the header's {len(header)} names "
                         "(a trailing comma, or a column without a name?)")
    if len(frame) == 0:
        raise UsageError(f"{path}: needs a header row and at least one data row")
    frame = frame.iloc[:, cols]
    frame.columns = used
    for name in used:
        column = frame[name]
        if column.dtype.kind in "biuf":
            continue
        numbers = pd.to_numeric(column, errors="coerce")
        bad = np.flatnonzero(numbers.isna().to_numpy() & column.notna().to_numpy())
        if bad.size:
            raise UsageError(f"{path}, line {_line_of(path, int(bad[0]))}, column {name!r}: "
                             f"{column.iloc[bad[0]]!r} is not a number")
        frame[name] = numbers
    data = frame.to_numpy(dtype=np.float64)
    infinite = np.isinf(data)
    if infinite.any():
        i, j = (int(v[0]) for v in np.nonzero(infinite))
        raise UsageError(f"{path}, line {_line_of(path, i)}, column {used[j]!r}: "
                         f"{data[i, j]} is not a finite number")
    missing = np.isnan(data)
    dropped = 0
    if missing.any():
        rows = missing.any(axis=1)
        if not dropna:
            j = int(np.flatnonzero(missing.any(axis=0))[0])
            count = int(missing[:, j].sum())
            first_row = int(np.flatnonzero(missing[:, j])[0])
            raise UsageError(
                f"{path}: column {used[j]!r} has {count} missing cell{'s' if count > 1 else ''}, "
                f"the first at line {_line_of(path, first_row)}; pass --dropna to drop rows "
                "with missing cells")
        dropped = int(rows.sum())
        data = data[~rows]
        if len(data) == 0:
            raise UsageError(f"{path}: every row has a missing cell; nothing is left after "
                             "--dropna")
    return data[:, :-1], data[:, -1], features, dropped


def _prepare_out(out: str) -> None:
    """Create the output folder and check that it takes files, before any fitting."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--out {out} is a file, not a folder; name a folder to write into")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as err:
        raise UsageError(f"--out {out}: cannot create the folder ({err.strerror or err})"
                         + (": part of that path is a file"
                            if isinstance(err, NotADirectoryError | FileExistsError) else "")
                         ) from None
    probe = os.path.join(out, ".bayesreg-write-test")
    try:
        with open(probe, "w") as fh:
            fh.write("")
        os.remove(probe)
    except OSError as err:
        raise UsageError(f"cannot write to --out {out} ({err.strerror or err})") from None


def compare_csv(path, target, features=None, methods="map,laplace,ensemble", model="mlp:50",
                prior="learned", test_size=0.2, seed=0, out="bayesreg-compare",
                quick=False, dropna=False, sep=None) -> dict:
    """Standardise, fit every method, report test metrics in the data's original units."""
    import matplotlib

    matplotlib.use("Agg")

    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UsageError(f"--seed must be an integer >= 0; got {seed}")
    X, y, names, dropped = read_csv(path, target, features, dropna, sep)
    if dropped:
        print(f"dropped {dropped} rows with missing cells (--dropna)", file=sys.stderr)
    model_obj, prior_obj = parse_model(model), parse_prior(prior)
    wanted = [m.strip() for m in methods.split(",") if m.strip()]
    bad = [m for m in wanted if m not in METHOD_NAMES]
    if bad or not wanted:
        raise UsageError(f"--methods takes a comma list of {', '.join(METHOD_NAMES)}; got {bad}")
    if not 0 < test_size < 1:
        raise UsageError(f"--test-size must be in (0, 1); got {test_size}")
    if len(y) < 5:
        raise UsageError(f"{path}: {len(y)} rows is too few to split into train and test")
    # each method says what it can fit (method.supports); the others are skipped, and said so
    lik = br.GaussianLikelihood()
    methods_run, skipped = [], []
    for m in wanted:
        method = make_method(m, quick)
        if method.supports(model_obj, lik):
            methods_run.append((m, method))
        else:
            skipped.append(f"{m}: cannot fit --model {model}")
    if not methods_run:
        able = [n for n in METHOD_NAMES if make_method(n, quick).supports(model_obj, lik)]
        raise UsageError(f"none of --methods {','.join(wanted)} can fit --model {model}; "
                         f"these can: {','.join(able)}")
    test, train = holdout(len(y), test_size, seed)
    if len(train) < 2:  # before the target's spread: one row is "constant" for another reason
        raise UsageError(f"--test-size {test_size:g} holds out {len(test)} of {len(y)} rows and "
                         f"leaves {len(train)} to train on; lower --test-size (e.g. 0.2)")
    check_test_rows(len(test), "--test-size")
    if np.ptp(y[train]) == 0:
        raise UsageError(f"the target {target!r} is constant ({y[train][0]:g} in every training "
                         "row): there is nothing to fit")
    mx, sx = X[train].mean(0), X[train].std(0)
    sx[sx == 0] = 1.0
    my, sy = y[train].mean(), y[train].std() or 1.0

    def zx(a):
        return (a - mx) / sx

    _prepare_out(out)
    X_fit, y_fit = zx(X[train]), (y[train] - my) / sy
    if prior_obj is None:  # one prior for every method, learned once (bayesreg.selection)
        say(f"learning the prior once on {len(train)} rows, for every method ...")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                prior_obj, prior_note = learn_prior(model_obj, X_fit, y_fit, seed=seed)
        except (ValueError, FloatingPointError) as err:
            raise UsageError(f"learning the prior failed on {len(train)} training rows with "
                             f"--model {model}: {' '.join(str(err).split())}; give one with "
                             "--prior gaussian:SCALE") from None
    else:
        prior_note = f"given (--prior {prior})"
    rows, preds = [], {}
    for name, method in methods_run:
        say(f"fitting {name} on {len(train)} rows ...")
        start = time.perf_counter()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", UserWarning)
                post = br.fit(model_obj, X_fit, y_fit, method=method, prior=prior_obj,
                              seed=seed)
            seconds = time.perf_counter() - start
            pred = post.predict(zx(X[test])).affine(sy, my)  # back to the original units
        except (ValueError, FloatingPointError) as err:
            reason = " ".join(str(err).split())
            raise UsageError(f"{name} failed on {len(train)} training rows with --model "
                             f"{model}: {reason}") from None
        preds[name] = (post, pred)
        row = {"method": name, **pred.metrics(y[test]), "fit_seconds": seconds,
               "prior": prior_note,
               "log_evidence": None if math.isnan(post.log_evidence) else post.log_evidence,
               "warnings": messages(caught)}
        for message in row["warnings"]:  # in full, on the terminal as in the report
            print(f"  warning ({name}): {message}", file=sys.stderr, flush=True)
        rows.append(row)
    cols = ["method", "rmse", "nll", "coverage_95", "crps", "fit_seconds"]
    # W₁ to the reference sampler beside its Monte Carlo floor, as bayesreg.compare does
    reference = next((name for name, method in methods_run
                      if getattr(method, "is_reference", False) and name in preds), None)
    if reference is not None:
        dist, floor = w1_to_reference({k: p for k, (_, p) in preds.items()}, reference, seed)
        for row in rows:
            row[f"w1_to_{reference}"], row["w1_floor"] = dist[row["method"]], floor
        cols += [f"w1_to_{reference}", "w1_floor"]
    table = markdown_table(rows, cols)
    report = [f"# bayesreg compare: {os.path.basename(path)}", "",
              f"Target `{target}`, features {', '.join(f'`{n}`' for n in names)}; "
              f"{len(train)} training rows, {len(test)} test rows (seed {seed}).",
              f"Model `{model}` on standardised features and target; metrics in the target's "
              "original units.", "",
              f"Prior, the same for every method: {prior_note}.", "", table, "",
              *column_notes(cols), ""]
    if dropped:
        report[2:2] = [f"{dropped} rows with missing cells dropped (--dropna).", ""]
    if skipped:
        report += ["Skipped: " + "; ".join(skipped), ""]
    notes = [f"- {r['method']}: {m}" for r in rows for m in r["warnings"]]
    if notes:
        report += ["Warnings:", "", *notes, ""]
    try:
        _compare_figure(preds, X, y, train, test, zx, sy, my, names,
                        os.path.join(out, "compare.png"), target=target)
        with open(os.path.join(out, "report.md"), "w") as fh:
            fh.write("\n".join(report))
        with open(os.path.join(out, "metrics.json"), "w") as fh:
            json.dump({"rows": json_rows(rows), "skipped": skipped, "target": target,
                       "features": names, "model": model, "prior": prior, "seed": seed,
                       "dropped_rows": dropped}, fh, indent=2)
    except OSError as err:
        raise UsageError(f"cannot write to --out {out} ({err.strerror or err})") from None
    print(table)
    if skipped:
        print("skipped: " + "; ".join(skipped))
    print(f"\nwrote {out}/report.md, {out}/metrics.json, {out}/compare.png")
    return {"rows": rows, "skipped": skipped, "dropped_rows": dropped}


def _compare_figure(preds, X, y, train, test, zx, sy, my, names, path, target=None):
    """One panel per method: bands over the one feature, or predicted against observed.

    The axes are held to the observed range (1st–99th percentile of y, padded by 10%), so one
    method's wild predictions cannot squash every panel; each title says how many points fall
    outside."""
    import matplotlib.pyplot as plt  # deferred: 0.33 s, paid only when a figure is drawn


    target = target or "target"
    q1, q99 = np.percentile(y, [1, 99])
    pad = 0.1 * max(q99 - q1, 1e-12)
    lim = (q1 - pad, q99 + pad)
    # rows of at most 3-4 panels: ten methods in one row made a 4 000-pixel strip
    fig, axes = plots.panel_grid(len(preds), panel=(4.2, 3.6), sharey=True)
    for ax, (name, (post, pred)) in zip(axes.flat, preds.items(), strict=False):
        if X.shape[1] == 1:
            grid = np.linspace(X[:, 0].min(), X[:, 0].max(), 200)
            gp = post.predict(zx(grid[:, None])).affine(sy, my)
            plots.bands(gp, grid, X=X[train], y=y[train], ax=ax, xlabel=names[0],
                        ylabel=target, legend=False)
            ax.scatter(X[test, 0], y[test], marker="x", color="C3", s=12, label="test")
            lo, hi = gp.interval(0.95)
            outside = int(np.sum((gp.mean < lim[0]) | (gp.mean > lim[1])))
            what = "grid points' means"
        else:
            lo, hi = pred.interval(0.95)
            ax.errorbar(y[test], pred.point, yerr=[pred.point - lo, hi - pred.point], fmt="o",
                        ms=3, alpha=0.6, elinewidth=0.8,
                        label=f"test rows, {plots.band_label(pred, 0.95)}")
            ax.plot(lim, lim, "k--", linewidth=1, label="perfect prediction")
            ax.set_xlim(*lim)
            ax.set_xlabel(f"observed {target} (test)")
            outside = int(np.sum((pred.point < lim[0]) | (pred.point > lim[1])
                                 | (y[test] < lim[0]) | (y[test] > lim[1])))
            what = "test points"
        ax.set_ylim(*lim)
        ax.set_title(name if not outside else f"{name}\n({outside} {what} off the axes)",
                     fontsize=9)
        ax.legend(fontsize=8, loc="best")
    for ax in axes[:, 0]:
        ax.set_ylabel(f"predicted {target}" if X.shape[1] != 1 else target)
    fig.suptitle("on the diagonal = right; the 95% bars should cover it for ~95% of rows"
                 if X.shape[1] != 1 else "predictive bands per method", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except for flags (off) and options without one."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or (
                action.default is argparse.SUPPRESS):
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """argparse, with a refused argument on one line (no usage block), exit code 2: the
    same shape as every other refusal of the command line."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _seed(text: str) -> int:
    """``--seed``: a decimal integer >= 0 of any size (``br.fit`` uses every bit)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(
            f"--seed must be an integer >= 0; got {text} (decimal digits of any size, e.g. "
            "--seed 0)")
    return value


def main(argv=None) -> int:
    parser = _Parser(prog="bayesreg", description="bayesreg command line")
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser(
        "demo", help="fit the book's 15-point example with every method",
        formatter_class=_HelpFormatter,
        description="Fit the book's 15-point example (exp(sin 2πx) + N(0, 0.3²)) with the "
                    "exact posterior under prior variances 1000, 100, 10 and with MAP, Laplace, "
                    "VI, NUTS, MC dropout and an ensemble; write bands.png and a metrics table.")
    p_demo.add_argument("--out", default="bayesreg-demo", help="output folder")
    p_demo.add_argument("--seed", type=_seed, default=0, help="data and fit seed")
    p_demo.add_argument("--knots", type=int, default=10, help="number of ReLU features")
    p_demo.add_argument("--quick", action="store_true", help="fewer draws and steps")
    p_demo.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    p_demo.add_argument("--loop-progress", action="store_true", help=LOOP_PROGRESS_HELP)
    p_cmp = sub.add_parser(
        "compare", help="compare methods on a CSV file", formatter_class=_HelpFormatter,
        description="Fit several methods to a CSV file's columns with the same prior and "
                    "report test metrics (original units), report.md, metrics.json and "
                    "compare.png.")
    p_cmp.add_argument("csv", help="CSV file with a header row")
    p_cmp.add_argument("--target", required=True, help="name of the target column")
    p_cmp.add_argument("--features",
                       help="comma list of feature columns; without it, every other column")
    p_cmp.add_argument("--methods", default="map,laplace,ensemble",
                       help=f"comma list of {','.join(METHOD_NAMES)}")
    p_cmp.add_argument("--model", default="mlp:50", help="linear | poly:DEGREE | mlp:WIDTH")
    p_cmp.add_argument("--prior", default="learned",
                       help="learned (Gaussian scales learned once by the evidence, exact for "
                            "linear and poly, then used by every method) | gaussian:S | "
                            "laplace:S | cauchy:S | studentt:DF:S | flat")
    p_cmp.add_argument("--test-size", type=float, default=0.2, help="held-out fraction")
    p_cmp.add_argument("--seed", type=_seed, default=0, help="split and fit seed (>= 0)")
    p_cmp.add_argument("--out", default="bayesreg-compare", help="output folder")
    p_cmp.add_argument("--quick", action="store_true", help="fewer draws and steps")
    p_cmp.add_argument("--dropna", action="store_true",
                       help="drop rows with a missing cell in a used column (without it, a "
                            "missing cell is an error naming its column and line)")
    p_cmp.add_argument("--sep", default=None,
                       help="field separator, one character ('\\t' for a tab); without it, "
                            "sniffed from the header line (comma, semicolon, tab or |)")
    p_cmp.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    p_cmp.add_argument("--loop-progress", action="store_true", help=LOOP_PROGRESS_HELP)
    p_bench = sub.add_parser(
        "bench", help="time bayesreg against hand-written JAX and scikit-learn (quick subset)",
        formatter_class=_HelpFormatter,
        description="Time MAP, Ensemble, Exact and the MC dropout predictive against the code "
                    "a user would otherwise write, in this process; print ratios.")
    p_bench.add_argument("--full", action="store_true", help="full sizes and the scaling runs")
    p_bench.add_argument("--out", default=None, help="folder for bench_*.json and bench_*.md")
    p_bench.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # a refused argument (one line, _Parser.error) returns 2,
        if stop.code != 2:      # as every other refusal does; --help exits as argparse does
            raise
        return 2
    try:
        with _progress.silenced() if args.quiet else contextlib.nullcontext():
            _dispatch(args)
    except UsageError as err:
        print(f"bayesreg {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


LOOP_PROGRESS_HELP = (
    "report progress from inside the training loops (MAP, ensemble, MC dropout, SWAG, Laplace) "
    "as a script does; their compiled programs then hold host callbacks, which JAX's disk "
    "cache does not keep, so the next run compiles them again")
QUIET_HELP = ("no progress on stderr (the 'fitting ...' lines, and the bar or periodic lines "
              "of fits longer than 2 s); warnings, errors and results still print")


def _dispatch(args) -> None:
    """Run the subcommand ``args.command``. The demo and compare keep their compiled
    programs on disk for the next run (:mod:`bayesreg.cache`; the benchmarks time a cold
    process, so they do not)."""
    where = enable_compilation_cache() if args.command != "bench" else None
    # the training loops' programs hold no progress callbacks, so the cache keeps them, and
    # their traced programs (bayesreg.cache.traced_programs)
    with (_progress.cacheable_loops() if args.command != "bench" and not args.loop_progress
          else contextlib.nullcontext()), traced_programs(where):
        _run(args)


def _run(args) -> None:
    if args.command == "bench":

        bench.run(quick=not args.full, out=args.out)
    elif args.command == "demo":
        if args.seed < 0:
            raise UsageError(f"--seed must be an integer >= 0; got {args.seed}")
        if args.knots < 1:
            raise UsageError(f"--knots must be an integer >= 1; got {args.knots}")
        _prepare_out(args.out)
        demo(args.out, args.seed, args.knots, args.quick)
    else:
        compare_csv(args.csv, args.target,
                    [f.strip() for f in args.features.split(",")] if args.features
                    else None, args.methods, args.model, args.prior, args.test_size,
                    args.seed, args.out, args.quick, args.dropna,
                    None if args.sep is None else args.sep.replace("\\t", "\t"))


if __name__ == "__main__":
    sys.exit(main())
