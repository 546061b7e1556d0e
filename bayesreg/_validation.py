"""Input checks shared by every entry point.

Errors name the argument, what came and what is expected.

Data must be numeric: integers, floats or booleans (``True``/``False`` are 1/0: binary
features, Bernoulli labels), or object arrays holding such numbers. Strings are refused even
when they spell numbers (``X.astype(str)``): NumPy would parse ``"1.5"`` silently, and a column
read as text is more often a mistake (a header row, a stray unit) than an intent.
"""

from __future__ import annotations

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


def check_X(X, name: str = "X", n_features: int | None = None) -> np.ndarray:
    """Return X as a float (N, D) array; a 1-D X is one feature."""
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


def check_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def check_real(name: str, value, low: float | None = None, high: float | None = None, *,
               low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a finite float in [low, high] (an end open with ``low_open`` /
    ``high_open``): a ``TypeError`` naming ``name`` for a string, bool, None or complex, a
    ``ValueError`` for NaN, ±inf or a value out of range. Every real-valued setting of the
    configuration objects goes through it.

    Examples
    --------
    >>> check_real("momentum", 0.9, 0.0, 1.0, high_open=True)
    0.9
    >>> check_real("momentum", "a", 0.0, 1.0)
    Traceback (most recent call last):
    ...
    TypeError: momentum must be a real number; got 'a' (str)
    """
    if isinstance(value, bool | str | bytes | complex) or value is None or (not np.isscalar(
            value) and np.ndim(value) != 0):
        raise TypeError(f"{name} must be a real number; got {value!r} ({type(value).__name__})")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number; got {value!r} "
                        f"({type(value).__name__})") from None
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    interval = f"{left}{lo}, {hi}{right}"
    if not np.isfinite(v) or (low is not None and (v < low or (low_open and v == low))) or (
            high is not None and (v > high or (high_open and v == high))):
        raise ValueError(f"{name} must be finite and in {interval}; got {value!r}")
    return v


def check_bool(name: str, value) -> bool:
    """``value`` if it is a bool (NumPy's too), else a ``TypeError`` naming ``name`` (a string
    such as "yes" is not silently true)."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise TypeError(f"{name} must be True or False; got {value!r} ({type(value).__name__})")
