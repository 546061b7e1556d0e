"""Small pytree helpers shared by priors, likelihoods and posteriors.

Priors and likelihoods are frozen dataclasses registered as pytrees: their numbers
(scale, loc, noise) are leaves, so a jitted training loop takes them as traced
arguments and a second fit with another prior scale reuses the compiled program.
Construction-time validation runs in ``__post_init__``; unflattening (which JAX does
with tracers inside ``jit``) bypasses ``__init__`` so that it never inspects a tracer.
"""

from __future__ import annotations

import jax
import numpy as np


def pytree_dataclass(data_fields: tuple[str, ...], meta_fields: tuple[str, ...] = ()):
    """Register a frozen dataclass as a pytree with the given leaf and static fields."""

    def register(cls):
        def flatten(obj):
            return tuple(getattr(obj, f) for f in data_fields), tuple(
                getattr(obj, f) for f in meta_fields
            )

        def unflatten(meta, data):
            obj = object.__new__(cls)
            for name, value in zip(data_fields, data, strict=True):
                object.__setattr__(obj, name, value)
            for name, value in zip(meta_fields, meta, strict=True):
                object.__setattr__(obj, name, value)
            return obj

        jax.tree_util.register_pytree_node(cls, flatten, unflatten)
        return cls

    return register


def leaf_names(tree) -> list[str]:
    """Readable names of a pytree's leaves, e.g. ``weights_0``, ``biases_1``."""
    paths, _ = jax.tree_util.tree_flatten_with_path(tree)
    names = []
    for path, _leaf in paths:
        parts = []
        for entry in path:
            if isinstance(entry, jax.tree_util.DictKey):
                parts.append(str(entry.key))
            elif isinstance(entry, jax.tree_util.SequenceKey):
                parts.append(str(entry.idx))
            else:  # attribute or flattened index
                parts.append(str(getattr(entry, "name", getattr(entry, "idx", entry))))
        names.append("_".join(parts))
    return names


def _real_number_array(name: str, value) -> np.ndarray:
    """``value`` as a float array, or ``TypeError`` naming ``name`` when it is not made of real
    numbers. NumPy would parse the string "1" as 1.0 and True as 1.0; both are refused here
    rather than reaching JAX as a number the user did not write."""
    arr = np.asarray(value)
    if arr.dtype.kind == "O":
        bad = [v for v in arr.ravel()
               if v is None or isinstance(v, bool | np.bool_ | str | bytes | complex)]
        if not bad:
            try:
                return arr.astype(float)
            except (TypeError, ValueError):
                bad = [value]
        what = type(value).__name__ if bad[0] is value else f"holding {bad[0]!r}"
        raise TypeError(f"{name} must be a real number; got {value!r} ({what})")
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a real number; got {value!r} "
                        f"({type(value).__name__})")
    return arr.astype(float)


def check_positive(name: str, value, *, allow_zero: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is finite and positive (or >= 0); ``TypeError``
    when it is not a real number (a string, a bool, None, a complex number)."""
    arr = _real_number_array(name, value)
    bad = ~np.isfinite(arr) | ((arr < 0) if allow_zero else (arr <= 0))
    if np.any(bad):
        want = "finite and >= 0" if allow_zero else "finite and > 0"
        raise ValueError(f"{name} must be {want}; got {value!r}")


def signature(tree) -> tuple:
    """``tree``'s structure and its leaves' shapes and dtype names: a hashable key for a
    program cached per shapes (NUTS's chains, Laplace's Newton refinement).

    Examples
    --------
    >>> import numpy as np
    >>> signature({"w": np.zeros((2, 3), np.float32)})[1]
    (((2, 3), 'float32'),)
    """
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return treedef, tuple((np.shape(a), np.result_type(a).name) for a in leaves)

