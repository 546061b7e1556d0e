"""Deprecated location of the method classes (now :mod:`bayesreg.methods`); kept for one
release. ``from bayesreg.inference import MAP`` warns and returns ``bayesreg.MAP``."""

import warnings

from bayesreg import methods as _methods


def __getattr__(name):
    if name in _methods.__all__:
        warnings.warn(f"bayesreg.inference.{name} moved to bayesreg.{name} (bayesreg.methods); "
                      "bayesreg.inference goes in the next release", DeprecationWarning,
                      stacklevel=2)
        return getattr(_methods, name)
    raise AttributeError(f"module 'bayesreg.inference' has no attribute {name!r}")
