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



def command_line(quick: bool = False) -> dict:
    """The methods ``bayesreg compare`` offers, by name, with the settings it runs them at
    (``quick``: the shorter runs of the tests and ``--quick``).

    Examples
    --------
    >>> list(command_line())[:4]
    ['map', 'exact', 'laplace', 'laplace-ll']
    """
    steps = 1000 if quick else 3000
    return {
        "map": MAP(),
        "exact": Exact(),
        "laplace": LaplaceApprox(),
        "laplace-ll": LaplaceApprox(subset="last_layer"),
        "vi": VI(steps=1500 if quick else 5000),
        "nuts": NUTS(num_warmup=200 if quick else 500, num_samples=200 if quick else 1000),
        "dropout": MCDropout(training=MAP(steps=steps)),
        "ensemble": Ensemble(members=10, training=MAP(steps=steps)),
        "sgld": SGLD(num_samples=200 if quick else 1000),
        "swag": SWAG(epochs=30 if quick else 100, training=MAP(steps=steps)),
    }


__all__ = ["MAP", "NUTS", "SGLD", "SWAG", "VI", "Ensemble", "Exact", "LaplaceApprox", "MCDropout"]
