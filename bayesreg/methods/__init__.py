"""The methods: each is a frozen configuration object with ``supports(model, likelihood)``,
``to_dict()`` and ``fit(problem) -> Fitted`` (:mod:`bayesreg.fitted`); :func:`bayesreg.fit`
turns the ``Fitted`` into a :class:`bayesreg.Posterior`. Call them through ``br.fit``."""

from bayesreg.methods.dropout import MCDropout
from bayesreg.methods.ensemble import Ensemble
from bayesreg.methods.exact import Exact
from bayesreg.methods.laplace import LaplaceApprox
from bayesreg.methods.map import MAP
from bayesreg.methods.nuts import NUTS
from bayesreg.methods.sgld import SGLD
from bayesreg.methods.swag import SWAG
from bayesreg.methods.vi import VI

# What the draws of the methods that do not sample a posterior were, for files written
# before ``draws_kind`` was stored (bayesreg.persistence reads them by the method's name).
DRAWS_KIND_BEFORE_FORMAT_1 = {
    "Ensemble": "independently trained ensemble members, not posterior samples",
    "MCDropout": "dropout masks of one trained network, not posterior samples",
}

__all__ = ["MAP", "NUTS", "SGLD", "SWAG", "VI", "Ensemble", "Exact", "LaplaceApprox", "MCDropout"]
