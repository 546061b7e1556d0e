"""Side-by-side comparison of methods on the same data, prior and likelihood.

Distance to a reference: when a reference method is among those compared — the first with
``is_reference = True`` (``NUTS``), or the one named by ``reference=`` — each method's
predictive is compared with the reference's by the 1-Wasserstein distance between their predictive
distributions of y at each test point, estimated from 2000 draws of y from each (for two
equal-size samples in 1-D, W₁ is the mean absolute difference of the sorted draws), and
averaged over the test points (``w1_to_nuts``). It is in the units of y.

Two finite samples are never at distance 0, even from one distribution: the estimate has a
Monte Carlo floor of order σ/√2000. ``w1_floor`` is that floor, measured — the same
estimate between a second, independent set of 2000 draws from NUTS's predictive and the
reference draws — so a method whose ``w1_to_nuts`` is near ``w1_floor`` cannot be told
apart from NUTS at this number of draws; only the excess over the floor is a difference.

Examples
--------
>>> import numpy as np, bayesreg as br
>>> X, y = br.datasets.book_example(n=30)
>>> res = br.compare(br.Polynomial(3), X, y, methods=[br.MAP(), br.Exact()],
...                  likelihood=br.GaussianLikelihood(0.3))
>>> [row["method"] for row in res.rows]
['MAP', 'Exact']
>>> print(res)  # doctest: +ELLIPSIS
Comparison of 2 methods on 24 training and 6 test rows; prior: learned once by the exact ...
  method  rmse    nll  coverage_95   crps  fit_seconds
  MAP     ...
  Exact   ...
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable, Sequence

import numpy as np

from bayesreg._random import holdout
from bayesreg._report import column_notes
from bayesreg._validation import check_X, check_y
from bayesreg.fit import fit
from bayesreg.likelihoods import GaussianLikelihood
from bayesreg.selection import learn_prior

W1_DRAWS = 2000


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One row of test metrics per method, and the fitted posteriors by name."""

    rows: list[dict]
    posteriors: dict
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    prior: dict | None = None
    prior_note: str = "given"

    def to_dict(self) -> dict:
        return {"rows": [dict(r) for r in self.rows]}

    def columns(self) -> list[str]:
        """The table's columns: method, the metrics the rows have, fit time, W₁ columns."""
        columns = [c for c in ("method", "rmse", "nll", "coverage_95", "crps", "accuracy",
                               "brier", "ece", "fit_seconds") if any(c in r for r in self.rows)]
        columns += sorted({c for r in self.rows for c in r if c.startswith("w1_to_")})
        columns += ["w1_floor"] if any("w1_floor" in r for r in self.rows) else []
        return columns

    def to_markdown(self, columns: Sequence[str] | None = None, notes: bool = True) -> str:
        """The table in Markdown, then the prior and (``notes=True``) what each column means."""
        columns = self.columns() if columns is None else list(columns)
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for r in self.rows:
            cells = []
            for c in columns:
                v = r.get(c, "")
                cells.append(f"{v:.3f}" if isinstance(v, float) else str(v))
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", f"Prior, the same for every row: {self.prior_note}."]
        if notes:
            lines += ["", *column_notes(columns)]
        return "\n".join(lines)

    def __repr__(self) -> str:
        """A few lines: the sizes, the prior, and one aligned row of numbers per method (no
        arrays; ``.posteriors``, ``.rows`` and ``to_markdown()`` hold the rest)."""
        columns = self.columns()
        cells = [[c for c in columns]]
        for r in self.rows:
            v = [r.get(c, "") for c in columns]
            cells.append([f"{x:.3g}" if isinstance(x, float) else str(x) for x in v])
        width = [max(len(row[k]) for row in cells) for k in range(len(columns))]
        table = ["  " + "  ".join(x.rjust(w) if k else x.ljust(w)
                                  for k, (x, w) in enumerate(zip(row, width, strict=True)))
                 for row in cells]
        head = (f"Comparison of {len(self.rows)} methods on {len(self.y_train)} training and "
                f"{len(self.y_test)} test rows; prior: {self.prior_note}")
        return "\n".join([head, *table])

    __str__ = __repr__


def wasserstein1(a, b) -> float:
    """1-Wasserstein distance between two equal-size 1-D samples (per column, then mean)."""
    a, b = np.sort(np.asarray(a), axis=0), np.sort(np.asarray(b), axis=0)
    return float(np.mean(np.abs(a - b)))


def w1_floor(pred, ref, seed: int) -> float:
    """The Monte Carlo floor of ``wasserstein1(draws, ref)`` for ``ref`` = draws of y from
    ``pred``: the distance of an independent sample of as many draws from ``pred`` itself
    (what a method with exactly ``pred``'s predictive would score)."""
    return wasserstein1(pred.sample_y(len(ref), seed), ref)


def w1_to_reference(preds: dict, reference: str, seed: int) -> tuple[dict, float]:
    """({name: W₁ of its predictive to ``preds[reference]``'s}, the Monte Carlo floor), each
    from ``W1_DRAWS`` draws of y per test point: the reference's draws use ``seed``, every
    method's ``seed + 1``, the floor's second reference sample ``seed + 2``."""
    ref = preds[reference].sample_y(W1_DRAWS, seed=seed)
    dist = {name: wasserstein1(pred.sample_y(W1_DRAWS, seed + 1), ref)
            for name, pred in preds.items()}
    return dist, w1_floor(preds[reference], ref, seed + 2)


MIN_TEST_ROWS = 10  # below it a test metric is mostly noise: compare warns


def check_test_rows(n_test: int, name: str = "test_size") -> None:
    """A ``UserWarning`` when ``n_test`` < :data:`MIN_TEST_ROWS` test rows: the standard error
    of a mean over n rows is the rows' spread / √n, so with fewer than 10 rows the differences
    between methods in the table are mostly which rows were drawn.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     check_test_rows(4)
    >>> "4 test rows" in str(w[0].message)
    True
    """
    if n_test < MIN_TEST_ROWS:
        warnings.warn(
            f"the comparison is scored on {n_test} test rows (fewer than {MIN_TEST_ROWS}): "
            "its metrics have a standard error of about their spread / √"
            f"{n_test}, so differences between methods mean little. Raise {name} or pass "
            "more test rows", UserWarning, stacklevel=3)


def compare(model, X, y, methods, *, X_test=None, y_test=None, prior=None, likelihood=None,
            test_size: float = 0.2, seed: int = 0, reference: str | None = None,
            progress: Callable[[str], None] | None = None) -> Comparison:
    """Fit every method on the same data with the same prior; score each on test data.

    Parameters
    ----------
    model, X, y, likelihood, seed : as in :func:`bayesreg.fit`
    prior : Prior or dict, optional
        Used as given by every method. Left out, it is learned once on the training rows
        (:func:`bayesreg.selection.learn_prior`: exactly by the evidence for a model linear in
        its parameters, by MAP's Laplace–GGN evidence for a network) and then given to every
        method, so that the rows compare methods under one prior; each row's ``prior`` and
        ``Comparison.prior_note`` say which.
    methods : sequence of methods, e.g. ``[br.MAP(), br.Exact(), br.NUTS()]``
    X_test, y_test : held-out data; when omitted, ``test_size`` of the rows are held out
    reference : str, optional
        Name of the method (its class name, as in the rows) whose predictive the others are
        measured against; by default the first method with ``is_reference = True`` (NUTS).
        The columns are then ``w1_to_<name>`` and ``w1_floor``.
    progress : callable, optional
        Called with a line of text before each fit (the CLI prints it).

    Returns
    -------
    Comparison
        ``rows``: method, test metrics, ``prior`` (how the prior was set),
        ``fit_seconds`` (wall time including compilation)
        and, with a reference among the methods (NUTS by default), ``w1_to_nuts`` (or
        ``w1_to_<reference>``) and its Monte Carlo floor ``w1_floor`` (module docstring).
    """
    X = check_X(X)
    y = check_y(y, X.shape[0])
    held_out = X_test is None
    if held_out:
        if y_test is not None:
            raise ValueError("y_test was given without X_test")
        if not 0.0 < test_size < 1.0:
            raise ValueError(f"test_size must be in (0, 1); got {test_size!r}")
        test, train = holdout(len(y), test_size, seed)
        if len(train) < 2:
            raise ValueError(f"test_size={test_size!r} holds out {len(test)} of {len(y)} rows "
                             f"and leaves {len(train)} to train on; lower test_size (e.g. 0.2) "
                             "or pass X_test and y_test")
        X, y, X_test, y_test = X[train], y[train], X[test], y[test]
    else:
        X_test = check_X(X_test, "X_test", X.shape[1])
        y_test = check_y(y_test, X_test.shape[0], "y_test")
    check_test_rows(len(y_test), "test_size" if held_out else "the rows of X_test")
    lik = GaussianLikelihood() if likelihood is None else likelihood
    unfit = [type(m).__name__ for m in methods if not m.supports(model, lik)]
    if unfit:  # before any fit, not after the others have run
        raise ValueError(f"{', '.join(unfit)} cannot fit {type(model).__name__} with "
                         f"{type(lik).__name__}: leave it out of methods (method.supports("
                         "model, likelihood) says which methods can)")
    if prior is None:  # one prior for every method (bayesreg.selection.learn_prior)
        if progress:
            progress("learning the prior once, for every method ...")
        prior, prior_note = learn_prior(model, X, y, likelihood, seed)
    else:
        prior_note = "given"
    rows, posts, preds, names = [], {}, {}, []
    for method in methods:
        name = type(method).__name__
        name = name if name not in names else f"{name}_{len(names)}"
        names.append(name)
        if progress:
            progress(f"fitting {name} ...")
        start = time.perf_counter()
        post = fit(model, X, y, method=method, prior=prior, likelihood=likelihood, seed=seed)
        seconds = time.perf_counter() - start
        pred = post.predict(X_test)
        posts[name], preds[name] = post, pred
        rows.append({"method": name, **pred.metrics(y_test), "fit_seconds": seconds,
                     "prior": prior_note})
    if reference is None:
        reference = next((n for n, m in zip(names, methods, strict=True)
                          if getattr(m, "is_reference", False)), None)
    elif reference not in names:
        raise ValueError(f"reference must name one of the methods compared {names}; got "
                         f"{reference!r}")
    if reference is not None and hasattr(preds[reference], "sample_y"):
        dist, floor = w1_to_reference(preds, reference, seed)
        for row in rows:
            row[f"w1_to_{reference.lower()}"], row["w1_floor"] = dist[row["method"]], floor
    return Comparison(rows, posts, X, y, X_test, y_test, prior, prior_note)
