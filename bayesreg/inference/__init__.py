"""Inference methods: each is a frozen configuration object whose ``_run(problem)`` returns a
:class:`bayesreg.Posterior`. Call them through :func:`bayesreg.fit`."""

from bayesreg.inference.dropout import MCDropout
from bayesreg.inference.ensemble import Ensemble
from bayesreg.inference.exact import Exact
from bayesreg.inference.laplace import LaplaceApprox
from bayesreg.inference.map import MAP
from bayesreg.inference.nuts import NUTS
from bayesreg.inference.sgld import SGLD
from bayesreg.inference.swag import SWAG
from bayesreg.inference.vi import VI

__all__ = ["MAP", "NUTS", "SGLD", "SWAG", "VI", "Ensemble", "Exact", "LaplaceApprox", "MCDropout"]
