"""scikit-learn style façade: ``fit`` / ``predict`` / ``predict_proba`` / ``score``.

The estimators keep their constructor arguments as given (scikit-learn's convention) and
build the posterior in ``fit`` (``posterior_``), so they work in ``Pipeline`` and
``GridSearchCV`` — e.g. to tune the prior scale by cross-validation next to
:func:`bayesreg.select_prior_scale`'s evidence.

:class:`BayesianRegressor` standardises the target by default, as scikit-learn's
``BayesianRidge`` centres it: a prior N(0, s²) on a raw target (diabetes: mean 152) pulls the
intercept to 0 and the fit with it. The model is fitted to z = (y − ȳ)/s_y, so the prior is
on the parameters of the model of z (a unit-free scale, the same for any units of y), and
predictions, stds, intervals and densities are mapped back to the units of y.

Needs scikit-learn, an optional extra: ``pip install "bayesreg[sklearn]"``.

Examples
--------
>>> import numpy as np, bayesreg as br
>>> from bayesreg.estimators import BayesianRegressor
>>> X, y = br.datasets.book_example(n=30)
>>> reg = BayesianRegressor(model=br.Polynomial(3), method=br.Exact()).fit(X, y)
>>> mean, std = reg.predict(X[:2], return_std=True)
>>> mean.shape, bool(np.all(std > 0))
((2,), True)
>>> reg.coef_.shape  # posterior-mean coefficients of x, x², x³ in the units of y
(3,)
"""

from __future__ import annotations

import dataclasses

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as err:  # scikit-learn is an optional extra, not a core dependency
    raise ImportError(
        "bayesreg.estimators needs scikit-learn (>= 1.6), which is not installed with bayesreg "
        'by default; install it with: pip install "bayesreg[sklearn]"'
    ) from err

from bayesreg.fit import fit
from bayesreg.likelihoods import Bernoulli, Categorical, GaussianLikelihood
from bayesreg.models import Linear


class _Base(BaseEstimator):
    def __init__(self, model=None, method=None, prior=None, likelihood=None, seed=0):
        self.model = model
        self.method = method
        self.prior = prior
        self.likelihood = likelihood
        self.seed = seed

    def _fit(self, X, y, likelihood):
        self.posterior_ = fit(self.model if self.model is not None else Linear(), X, y,
                              method=self.method, prior=self.prior, likelihood=likelihood,
                              seed=self.seed)
        return self

    def _predictive(self, X):
        check_is_fitted(self, "posterior_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return self.posterior_.predict(X)


class BayesianRegressor(RegressorMixin, _Base):
    """Regression with any bayesreg model, method, prior and likelihood.

    Parameters
    ----------
    model : default ``br.Linear()``
    method : default ``br.MAP()``
    prior : default None
        None leaves the prior to :func:`bayesreg.fit`'s default (passed on as None). With
        ``standardize_y`` the prior is on the parameters of the model of the standardised
        target (module docstring).
    likelihood : default ``br.GaussianLikelihood()`` (learned noise)
        A fixed noise σ (and a ``noise_prior``) is in the units of y; it is divided by s_y
        for the standardised fit.
    seed : int
    standardize_y : bool, default True
        Fit z = (y − ȳ)/s_y and map the predictive back to y = ȳ + s_y·z. False: fit y as
        given, exactly as ``br.fit`` would.

    Attributes
    ----------
    posterior_ : Posterior
        The posterior of the model of the standardised target when ``standardize_y``.
    y_mean_, y_scale_ : float
        ȳ and s_y (the population std, 1 for a constant target); 0 and 1 without
        ``standardize_y``.
    coef_, intercept_ : ndarray (n_features,), float
        Linear-in-parameters models only: the posterior mean of the coefficients and
        intercept in the units of y (``posterior_.mean_params()`` mapped back).
    n_features_in_ : int
    """

    def __init__(self, model=None, method=None, prior=None, likelihood=None, seed=0,
                 standardize_y=True):
        super().__init__(model=model, method=method, prior=prior, likelihood=likelihood,
                         seed=seed)
        self.standardize_y = standardize_y

    def fit(self, X, y):
        X, y = validate_data(self, X, y, y_numeric=True, dtype=[np.float64, np.float32])
        lik = self.likelihood
        if not self.standardize_y:
            self.y_mean_, self.y_scale_ = 0.0, 1.0
            return self._fit(X, y, lik)
        self.y_mean_ = float(np.mean(y))
        self.y_scale_ = float(np.std(y)) or 1.0
        if isinstance(lik, GaussianLikelihood):  # σ in the units of y → units of z
            lik = dataclasses.replace(
                lik, noise=(lik.noise if lik.noise is None or isinstance(lik.noise, str)
                            else lik.noise / self.y_scale_),
                noise_prior=(None if lik.noise_prior is None
                             else lik.noise_prior / self.y_scale_))
        z = (y - self.y_mean_) / self.y_scale_  # float64 for an integer y
        z = z.astype(y.dtype) if y.dtype.kind == "f" else z
        return self._fit(X, z, lik)

    def _predictive(self, X):
        pred = super()._predictive(X)
        if not self.standardize_y:
            return pred
        return pred.affine(self.y_scale_, self.y_mean_)

    @property
    def coef_(self) -> np.ndarray:
        """Posterior-mean coefficients of a linear-in-parameters model, (n_features,) over
        the model's features (the input columns for ``br.Linear()``), in the units of y —
        scikit-learn's ``coef_``. With ``method=br.Exact()`` on standardised X they equal
        ``Ridge(alpha=λ)``'s with λ = σ²/s² of the standardised fit (σ in the units of z)."""
        return self._linear_mean()[0]

    @property
    def intercept_(self) -> float:
        """Posterior-mean intercept in the units of y (scikit-learn's ``intercept_``)."""
        return self._linear_mean()[1]

    def _linear_mean(self) -> tuple[np.ndarray, float]:
        check_is_fitted(self, "posterior_")
        post = self.posterior_
        params = post.mean_params()
        if not getattr(post.model, "linear_in_params", False) or len(params["weights"]) != 1:
            # an AttributeError, so that hasattr(reg, "coef_") is False for networks
            raise AttributeError(
                f"coef_ and intercept_ exist for linear-in-parameters models (Linear, "
                f"Polynomial, Basis); this estimator's model is {type(post.model).__name__}: "
                "use posterior_.mean_params()")
        w = np.asarray(params["weights"][0], np.float64)[:, 0]
        b = float(np.asarray(params["biases"][0], np.float64)[0])
        return self.y_scale_ * w, self.y_mean_ + self.y_scale_ * b

    def predict_distribution(self, X):
        """The predictive of y (a :class:`bayesreg.Predictive`, in the units of y)."""
        return self._predictive(X)

    def predict(self, X, return_std: bool = False):
        """Predictive mean (point) of y; with ``return_std`` also its std (noise included)."""
        pred = self._predictive(X)
        return (pred.point, pred.std) if return_std else pred.point

    def predict_interval(self, X, level: float = 0.95):
        """Central predictive interval (lo, hi) of y."""
        return self._predictive(X).interval(level)


class BayesianClassifier(ClassifierMixin, _Base):
    """Classification: a Bernoulli likelihood for two classes, Categorical for more.

    Labels may be any sortable values; ``classes_`` maps them to the model's outputs.
    """

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if self.classes_.size < 2:
            raise ValueError("BayesianClassifier needs at least 2 classes; the labels hold "
                             "only one class")
        lik = self.likelihood
        if lik is None:
            lik = Bernoulli() if self.classes_.size == 2 else Categorical(self.classes_.size)
        return self._fit(X, codes.astype(float), lik)

    def predict_proba(self, X):
        """Predictive class probabilities (N, n_classes), averaged over posterior draws."""
        return self._predictive(X).probs

    def predict(self, X):
        proba = self.predict_proba(X)  # checks that the estimator is fitted
        return self.classes_[np.argmax(proba, axis=1)]
