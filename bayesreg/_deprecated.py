"""Renamed arguments: the old name keeps working for one release, with a DeprecationWarning
that names the new one.

A frozen dataclass keeps the new name as its field and takes the old one as an ``InitVar``
defaulting to None; ``__post_init__`` calls :func:`renamed`, which warns and returns the
value to store.

Examples
--------
>>> import warnings
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     renamed("Exact", "num_draws", 5, "num_samples", 1000, default=1000)
5
>>> str(caught[0].message)
'Exact(num_draws=...) is now Exact(num_samples=...); num_draws= goes in the next release'
"""

from __future__ import annotations

import warnings


def renamed(owner: str, old: str, old_value, new: str, new_value, *, default=None,
            stacklevel: int = 4):
    """The value of argument ``new`` given that its old name ``old`` got ``old_value``.

    ``old_value`` None: ``new_value``, silently. Otherwise a DeprecationWarning, and
    ``old_value`` — unless ``new`` was also given (``new_value`` not ``default``), which is a
    ``TypeError``. ``stacklevel`` 4 points at the user's line through a dataclass's
    generated ``__init__`` and its ``__post_init__``.
    """
    if old_value is None:
        return new_value
    if new_value is not default and new_value != default:
        raise TypeError(f"{owner} got both {old}= and {new}=; {old}= is the old name of "
                        f"{new}=: give {new}= only")
    warnings.warn(f"{owner}({old}=...) is now {owner}({new}=...); {old}= goes in the next "
                  "release", DeprecationWarning, stacklevel=stacklevel)
    return old_value
