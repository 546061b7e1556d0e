"""Inference methods: each is a frozen configuration object whose ``_run(problem)`` returns a
:class:`bayesreg.Posterior`. Call them through :func:`bayesreg.fit`."""

from bayesreg.methods.dropout import MCDropout
from bayesreg.methods.ensemble import Ensemble
from bayesreg.methods.exact import Exact
from bayesreg.methods.laplace import LaplaceApprox
from bayesreg.methods.map import MAP
from bayesreg.methods.nuts import NUTS
from bayesreg.methods.sgld import SGLD
from bayesreg.methods.swag import SWAG
from bayesreg.methods.vi import VI

__all__ = ["MAP", "NUTS", "SGLD", "SWAG", "VI", "Ensemble", "Exact", "LaplaceApprox", "MCDropout"]
