"""Input checks shared by every entry point.

Errors name the argument, what came and what is expected.
"""

from __future__ import annotations

import numpy as np


def check_X(X, name: str = "X", n_features: int | None = None) -> np.ndarray:
    """Return X as a float (N, D) array; a 1-D X is one feature."""
    try:
        arr = np.asarray(X, dtype=np.float64 if np.asarray(X).dtype == np.float64 else np.float32)
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
    try:
        arr = np.asarray(y, dtype=float)
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
