"""bayesreg — a regularizer is a prior.

One prior drives MAP fitting, exact conjugate posteriors and the approximations; every
method answers through the same :class:`Predictive`.

Examples
--------
>>> import numpy as np, bayesreg as br
>>> X, y = br.datasets.book_example(seed=0)
>>> post = br.fit(br.Polynomial(3), X, y, method=br.Exact(), prior=br.Gaussian(10.0))
>>> lo, hi = post.predict(X).interval(0.95)
"""

from bayesreg import augment, datasets, implicit, metrics, optim
from bayesreg.calibration import CalibratedPosterior, calibrate
from bayesreg.compare import Comparison, compare
from bayesreg.equivalence import (
    l1_strength,
    l2_strength,
    prior_from_l1,
    prior_from_l2,
    weight_decay,
)
from bayesreg.fit import fit
from bayesreg.function_model import FunctionModel
from bayesreg.invariance import AugmentationEvidence, augmentation_evidence
from bayesreg.likelihoods import (
    Bernoulli,
    Categorical,
    GaussianLikelihood,
    HeteroscedasticGaussian,
)
from bayesreg.methods import (
    MAP,
    NUTS,
    SGLD,
    SWAG,
    VI,
    Ensemble,
    Exact,
    LaplaceApprox,
    MCDropout,
)
from bayesreg.models import MLP, Basis, Linear, Polynomial, relu_basis
from bayesreg.persistence import load
from bayesreg.posterior import Posterior
from bayesreg.predictive import (
    ClassPredictive,
    MultiTaskPredictive,
    Predictive,
    StreamingPredictive,
)
from bayesreg.priors import Cauchy, Flat, Gaussian, HalfCauchy, HalfNormal, Laplace, StudentT
from bayesreg.selection import PriorScaleSelection, select_prior_scale
from bayesreg.transfer import transfer_prior, warm_start

__version__ = "0.1.0"

__all__ = [
    "MAP",
    "MLP",
    "NUTS",
    "SGLD",
    "SWAG",
    "VI",
    "AugmentationEvidence",
    "Basis",
    "Bernoulli",
    "CalibratedPosterior",
    "Categorical",
    "Cauchy",
    "ClassPredictive",
    "Comparison",
    "Ensemble",
    "Exact",
    "Flat",
    "FunctionModel",
    "Gaussian",
    "GaussianLikelihood",
    "HalfCauchy",
    "HalfNormal",
    "HeteroscedasticGaussian",
    "Laplace",
    "LaplaceApprox",
    "Linear",
    "MCDropout",
    "MultiTaskPredictive",
    "Polynomial",
    "Posterior",
    "Predictive",
    "PriorScaleSelection",
    "StreamingPredictive",
    "StudentT",
    "augment",
    "augmentation_evidence",
    "calibrate",
    "compare",
    "datasets",
    "fit",
    "implicit",
    "l1_strength",
    "l2_strength",
    "load",
    "metrics",
    "optim",
    "prior_from_l1",
    "prior_from_l2",
    "relu_basis",
    "select_prior_scale",
    "transfer_prior",
    "warm_start",
    "weight_decay",
]
