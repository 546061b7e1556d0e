"""Input checks shared by every entry point.

Errors name the argument, what came and what is expected.

Data must be numeric: integers, floats or booleans (``True``/``False`` are 1/0: binary
features, Bernoulli labels), or object arrays holding such numbers. Strings are refused even
when they spell numbers (``X.astype(str)``): NumPy would parse ``"1.5"`` silently, and a column
read as text is more often a mistake (a header row, a stray unit) than an intent.
"""

from __future__ import annotations

import dataclasses
import numbers

import numpy as np


def _numeric(value, name: str) -> np.ndarray:
    """``value`` as an array of a numeric (or boolean) dtype, or ``ValueError`` naming ``name``."""
    arr = np.asarray(value)
    kind = arr.dtype.kind
    if kind in "biuf":
        return arr
    if kind in "US":
        raise ValueError(
            f"{name} must be numeric; got an array of {'str' if kind == 'U' else 'bytes'} "
            f"(dtype {arr.dtype}). Strings are not parsed as numbers: convert them first, "
            f"e.g. np.asarray({name}, dtype=float)")
    if kind == "O":
        for v in arr.ravel():
            if isinstance(v, str | bytes | complex):
                v = v.item() if isinstance(v, np.generic) else v
                raise ValueError(
                    f"{name} must be numeric; got an object array holding {v!r} "
                    f"({type(v).__name__}). Convert it first, e.g. np.asarray({name}, "
                    "dtype=float)")
        return arr
    raise ValueError(f"{name} must be numeric (real numbers or booleans); got dtype {arr.dtype}")


def check_dense(value, name: str) -> None:
    """A ``TypeError`` naming ``name`` for a SciPy sparse matrix or array, with the fix: the
    models are dense, and NumPy would wrap the matrix in a 0-d object array (then "cannot
    reshape array of size 1")."""
    if type(value).__module__.startswith("scipy.sparse"):
        raise TypeError(
            f"{name} is a SciPy sparse {type(value).__name__} of shape {value.shape}; bayesreg's "
            f"models take dense arrays: pass {name}.toarray() (or reduce the columns first, "
            "e.g. sklearn's TruncatedSVD, if the dense array would not fit in memory)")


def check_columns(shape, name: str = "X") -> None:
    """A ``ValueError`` for an X of 0 columns: the model would have no inputs."""
    if len(shape) == 2 and shape[1] == 0:
        raise ValueError(f"{name} has 0 columns (shape {tuple(shape)}); expected at least one "
                         f"feature, shape (N, D) with D >= 1. For a model of the mean alone, "
                         f"pass a column of zeros: np.zeros((N, 1))")


def check_X(X, name: str = "X", n_features: int | None = None) -> np.ndarray:
    """Return X as a float (N, D) array; a 1-D X is one feature."""
    check_dense(X, name)
    raw = _numeric(X, name)
    try:
        arr = np.asarray(raw, dtype=np.float64 if raw.dtype == np.float64 else np.float32)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a numeric array of shape (N, D); {err}") from None
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (N, D) or (N,); got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} must have at least one row; got shape {arr.shape}")
    check_columns(arr.shape, name)
    if not np.all(np.isfinite(arr)):
        bad = int(np.sum(~np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} NaN or infinite values; expected finite numbers")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(
            f"{name} has {arr.shape[1]} features (shape {arr.shape}); "
            f"the model was fitted on {n_features} features, expected shape (N, {n_features})"
        )
    return arr


def check_y(y, n: int | None = None, name: str = "y") -> np.ndarray:
    """Return y as an (N,) array; (N, 1) is accepted as (N,), never broadcast."""
    check_dense(y, name)
    raw = _numeric(y, name)
    try:
        arr = np.asarray(raw, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a numeric array of shape (N,); {err}") from None
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must have shape (N,) or (N, 1); got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.sum(~np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} NaN or infinite values; expected finite numbers")
    if n is not None and arr.shape[0] != n:
        raise ValueError(
            f"{name} has {arr.shape[0]} rows but X has {n}; expected shape ({n},)"
        )
    return arr


def check_level(level) -> float:
    """A central-interval probability strictly between 0 and 1."""
    try:
        lv = float(level)
    except (TypeError, ValueError):
        raise ValueError(f"level must be a number in (0, 1); got {level!r}") from None
    if not 0.0 < lv < 1.0:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95; got {level!r}")
    return lv


class Setting:
    """The rule for one setting of a configuration object, and the one check every setting
    goes through: its type (``TypeError``), finiteness and range (``ValueError``), with the
    argument's name, what came and a valid example in the message.

    ``kind`` is "int" (a Python or NumPy integer, never a bool or a float such as 2.5),
    "real" (a finite real number: ints and floats, never a bool, a string, None or a complex
    number), "bool" (``True``/``False`` only, so "yes" is not silently true) or "choice" (one
    of ``choices``). ``optional`` lets ``None`` through; ``low``/``high`` bound the value,
    closed unless ``low_open``/``high_open``.

    Examples
    --------
    >>> Setting("real", 0.0, 1.0, high_open=True).check("momentum", 0.5)
    0.5
    >>> Setting("int", 1).check("num_samples", 2.5, example=1000)
    Traceback (most recent call last):
    ...
    TypeError: num_samples must be an integer >= 1; got 2.5 (float), e.g. num_samples=1000
    """

    __slots__ = ("choices", "example", "high", "high_open", "kind", "low", "low_open",
                 "optional")

    def __init__(self, kind: str, low=None, high=None, *, low_open: bool = False,
                 high_open: bool = False, optional: bool = False, choices: tuple = (),
                 example=None):
        self.kind, self.low, self.high, self.example = kind, low, high, example
        self.low_open, self.high_open = low_open, high_open
        self.optional, self.choices = optional, tuple(choices)

    def describe(self, finite: bool = False) -> str:
        """What a valid value is; ``finite``: phrased for a real number that came NaN, ±inf or
        out of range ("finite and in (0, inf)") rather than of the wrong type."""
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        left = "(" if self.low_open or self.low is None else "["
        right = ")" if self.high_open or self.high is None else "]"
        bounded = self.low is not None or self.high is not None
        interval = f"{left}{lo}, {hi}{right}"
        if self.kind == "bool":
            what = "True or False"
        elif self.kind == "choice":
            what = f"one of {self.choices}"
        elif self.kind == "int":
            what = "an integer" + (
                "" if not bounded else f" {'>' if self.low_open else '>='} {lo}"
                if self.high is None else f" in {interval}")
        elif finite:
            what = "finite" + (f" and in {interval}" if bounded else "")
        else:
            what = "a real number" + (f" in {interval}" if bounded else "")
        return what + (" or None" if self.optional else "")

    def check(self, name: str, value, example=None):
        """``value`` (an int, a float or a bool; None where optional) if it obeys the rule,
        else the error naming ``name``; ``example`` is a valid value shown as the fix."""
        if value is None and self.optional:
            return None
        eg = "" if example is None else f", e.g. {name}={example!r}"
        got = f"got {value!r} ({type(value).__name__}){eg}"
        if self.kind == "choice":
            if isinstance(value, str | int | float | bool | None) and value in self.choices:
                return value
            raise ValueError(f"{name} must be {self.describe()}; {got}")
        if self.kind == "bool":
            if isinstance(value, bool | np.bool_):
                return bool(value)
            raise TypeError(f"{name} must be {self.describe()}; {got}")
        scalar = np.isscalar(value) or (isinstance(value, np.ndarray) and value.ndim == 0)
        if self.kind == "int":
            ok = scalar and not isinstance(value, bool | np.bool_) and isinstance(
                value.item() if isinstance(value, np.ndarray | np.generic) else value,
                int)
            if not ok:
                raise TypeError(f"{name} must be {self.describe()}; {got}")
            v = int(value)
        else:
            if (not scalar or isinstance(value, bool | np.bool_ | str | bytes | complex)
                    or np.iscomplexobj(value)):
                raise TypeError(f"{name} must be {self.describe()}; {got}")
            try:
                v = float(value)
            except (TypeError, ValueError):
                raise TypeError(f"{name} must be {self.describe()}; {got}") from None
        lo, hi = self.low, self.high
        if (self.kind == "real" and not np.isfinite(v)) or (
                lo is not None and (v < lo or (self.low_open and v == lo))) or (
                hi is not None and (v > hi or (self.high_open and v == hi))):
            raise ValueError(f"{name} must be {self.describe(finite=True)}; {got}")
        return v


def check_settings(obj, rules: dict[str, Setting]) -> None:
    """Check every field of the configuration object ``obj`` named in ``rules`` with its
    :class:`Setting`, the field's default (or the rule's ``example``) as the example of a
    valid value in the message; an int given for
    a real setting is stored as a float (``lr=1`` is 1.0), so equal settings compare equal.

    Examples
    --------
    >>> import dataclasses
    >>> @dataclasses.dataclass(frozen=True)
    ... class Opts:
    ...     steps: int = 100
    ...     def __post_init__(self):
    ...         check_settings(self, {"steps": Setting("int", 1)})
    >>> Opts(steps=0)
    Traceback (most recent call last):
    ...
    ValueError: Opts steps must be an integer >= 1; got 0 (int), e.g. steps=100
    """
    defaults = {f.name: f.default for f in dataclasses.fields(obj)}
    cls = type(obj).__name__
    for name, rule in rules.items():
        value = getattr(obj, name)
        example = defaults.get(name)
        if example is None or example is dataclasses.MISSING:
            example = rule.example if rule.example is not None else EXAMPLES.get(rule.kind)
        try:
            v = rule.check(name, value, example)
        except (TypeError, ValueError) as err:
            raise type(err)(f"{cls} {err}") from None
        if rule.kind == "real" and v is not None and not isinstance(value, float):
            object.__setattr__(obj, name, v)


EXAMPLES = {"bool": True}  # an example where a setting's default is None


def check_int(name: str, value, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``: a ``TypeError`` naming ``name`` for anything but an
    integer (a float such as 2.5, a string, a bool, None), a ``ValueError`` below the minimum.

    Examples
    --------
    >>> check_int("members", 0)
    Traceback (most recent call last):
    ...
    ValueError: members must be an integer >= 1; got 0 (int)
    """
    return Setting("int", minimum).check(name, value)


def check_real(name: str, value, low: float | None = None, high: float | None = None, *,
               low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a finite float in [low, high] (an end open with ``low_open`` /
    ``high_open``): a ``TypeError`` naming ``name`` for a string, bool, None or complex, a
    ``ValueError`` for NaN, ±inf or a value out of range (:class:`Setting`).

    Examples
    --------
    >>> check_real("momentum", 0.9, 0.0, 1.0, high_open=True)
    0.9
    >>> check_real("momentum", "a", 0.0, 1.0)
    Traceback (most recent call last):
    ...
    TypeError: momentum must be a real number in [0, 1]; got 'a' (str)
    """
    return Setting("real", low, high, low_open=low_open, high_open=high_open).check(name, value)


def check_bool(name: str, value) -> bool:
    """``value`` if it is a bool (NumPy's too), else a ``TypeError`` naming ``name`` (a string
    such as "yes" is not silently true)."""
    return Setting("bool").check(name, value)


def as_float(value):
    """A real number (a NumPy scalar or 0-d array included) as a float; anything else as it
    is, for a check to refuse with its own message.

    Examples
    --------
    >>> as_float(np.float32(0.5)), as_float(np.array(2)), as_float("auto"), as_float(True)
    (0.5, 2.0, 'auto', True)
    """
    if isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Real) or (isinstance(value, np.ndarray | np.generic)
                                            and np.ndim(value) == 0 and np.isrealobj(value)):
        return float(value)
    return value
