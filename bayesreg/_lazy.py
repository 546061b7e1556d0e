"""A module imported on first attribute access, to keep ``import bayesreg`` fast.

``scipy.linalg`` alone costs ~0.15 s at import; only Exact and the Laplace approximation
need it, and only once they run.
"""

from __future__ import annotations

import importlib


class LazyModule:
    """Stands for the module ``name``; imports it when an attribute is first read."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str):
        return getattr(importlib.import_module(self._name), attr)


linalg = LazyModule("scipy.linalg")
