"""Inference methods: each is a frozen configuration object whose ``_run(problem)`` returns a
:class:`bayesreg.Posterior`. Call them through :func:`bayesreg.fit`."""

from bayesreg.inference.exact import Exact
from bayesreg.inference.map import MAP

__all__ = ["MAP", "Exact"]
