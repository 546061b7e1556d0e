r"""Closed-form Gaussian posterior of a linear-in-parameters model with Gaussian noise.

With design matrix Φ = [features(X), 1] (N × P), noise σ and a prior that is Gaussian
N(m₀ⱼ, sⱼ²) or Flat on each coefficient (prior precision Λ₀ = diag(1/sⱼ²), 0 for Flat):

    A = ΦᵀΦ/σ² + Λ₀              posterior precision
    m = A⁻¹(Φᵀy/σ² + Λ₀m₀)       posterior mean (= the MAP estimate)
    log p(y) = Σᵢ log N(yᵢ | φᵢᵀm, σ²) + Σⱼ log N(mⱼ | m₀ⱼ, sⱼ²) + (P/2) log 2π − ½ log|A|

The evidence formula is exact for Gaussian priors (the log joint is quadratic, so the
Laplace identity holds exactly); a Flat coefficient has no normalising constant, so then
``log_evidence`` is ``nan`` with a warning.

A learned noise (``GaussianLikelihood(noise=None)``) is set by type-II maximum likelihood,
as scikit-learn's ``BayesianRidge`` does for its noise precision, with MacKay's fixed
point σ² ← ‖y − Φm‖² / (N − γ), γ = P − tr(A⁻¹Λ₀), which is the stationarity condition
∂ log p(y)/∂σ² = 0. (Flat coefficients count fully in γ: the REML estimate.)

The algebra (float64 on the host, a QR route where A is ill-conditioned, the streamed QR
factor of [Φ, y] for an X read by chunks, and the checks below) is
:mod:`bayesreg.conjugate`; docs/methods/exact.md has the derivations.

Refused with a ``ValueError`` that says why: a learned noise from one row or from a constant
y (the evidence grows without bound as σ → 0); Flat coefficients that the rows cannot
determine (an improper posterior); and, in float32, a y, σ or coefficient spread beyond
``bayesreg.conjugate.FLOAT32_LIMIT`` (≈ 1.8e15), whose squares would overflow into an
infinite predictive std (use ``dtype="float64"`` or rescale y).
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np

from bayesreg import conjugate
from bayesreg._deprecated import renamed
from bayesreg._random import numpy_rng
from bayesreg._validation import Setting, check_settings
from bayesreg.fitted import Fitted
from bayesreg.latent import check_hierarchical
from bayesreg.likelihoods import GaussianLikelihood
from bayesreg.priors import is_proper
from bayesreg.problem import Problem


@dataclasses.dataclass(frozen=True)
class Exact:
    """Exact conjugate posterior for ``Linear``, ``Polynomial`` and ``Basis`` models.

    Parameters
    ----------
    num_samples : int
        Coefficient draws kept for ``pred.draws`` and ArviZ export; the predictive's
        mean, std, intervals, log density and CRPS are analytic and do not use them.
        (``num_draws=`` is its old name: it still works, with a DeprecationWarning.)
    max_iter, tol : int, float
        Fixed-point iterations and relative tolerance on σ² when the noise is learned.

    Notes
    -----
    An X read by chunks (a memmap, see :mod:`bayesreg.data.stream`) streams, whatever its size: one
    pass over chunks accumulates the QR factor of [Φ, y], never Φ itself
    (:func:`bayesreg.conjugate.design`).

    Examples
    --------
    >>> import numpy as np, bayesreg as br
    >>> X = np.linspace(0, 1, 15); y = np.sin(6 * X)
    >>> post = br.fit(br.Polynomial(3), X, y, method=br.Exact(), prior=br.Gaussian(10.0),
    ...               likelihood=br.GaussianLikelihood(0.3))
    >>> bool(np.isfinite(post.log_evidence))
    True
    """

    num_samples: int = 1000
    max_iter: int = 1000
    tol: float = 1e-12
    num_draws: dataclasses.InitVar[int | None] = None  # the old name of num_samples

    def __post_init__(self, num_draws):
        object.__setattr__(self, "num_samples", renamed(
            "Exact", "num_draws", num_draws, "num_samples", self.num_samples, default=1000))
        check_settings(self, {"num_samples": Setting("int", 1), "max_iter": Setting("int", 1),
                              "tol": Setting("real", 0.0, low_open=True)})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def why_not_streamed(self, n: int, likelihood) -> None:
        """None: an X read by chunks is streamed (sufficient statistics by chunks), never
        loaded, whatever ``n``."""
        del n, likelihood

    def supports(self, model, likelihood) -> bool:
        """Whether this method can fit ``model`` under ``likelihood`` (a linear-in-parameters model
        and a Gaussian likelihood with one σ)."""
        return (model.linear_in_params and isinstance(likelihood, GaussianLikelihood)
                and not likelihood.heteroscedastic)

    def fit(self, problem: Problem) -> Fitted:
        model, lik = problem.model, problem.likelihood
        if not getattr(model, "linear_in_params", False):
            raise ValueError(
                f"Exact needs a linear-in-parameters model (Linear, Polynomial, Basis), whose "
                f"features give the closed form; got {type(model).__name__}. Use "
                f"br.LaplaceApprox (exact for a model linear in its parameters), br.VI or "
                f"br.NUTS for networks."
            )
        if not isinstance(lik, GaussianLikelihood):
            raise ValueError(f"Exact needs a GaussianLikelihood; got {type(lik).__name__}")
        check_hierarchical(problem.prior, "Exact")
        fit = conjugate.solve(model, problem.X, problem.y, problem.prior,
                              noise=None if lik.learned_noise else float(lik.noise),
                              float32=problem.dtype == "float32", max_iter=self.max_iter,
                              tol=self.tol, learn_prior=problem.learn_prior)
        if not is_proper(fit.prior):
            warnings.warn(
                "log_evidence is nan: a Flat prior is improper and has no evidence; "
                "use a Gaussian prior on every coefficient to compare models by evidence",
                UserWarning, stacklevel=3,
            )
            log_ev_public = math.nan
        else:
            log_ev_public = fit.log_evidence
        coeffs = conjugate.GaussianCoefficients(mean=fit.mean,
                                                chol_cov=conjugate.chol_cov(fit.chol_prec))
        z = numpy_rng(problem.key).standard_normal((self.num_samples, fit.mean.size))
        flat_draws = fit.mean + z @ coeffs.chol_cov.T
        k = fit.mean.size - 1
        params = {"weights": [flat_draws[:, :k, None].astype(problem.dtype)],
                  "biases": [flat_draws[:, k:].astype(problem.dtype)]}
        theta = ({"log_noise": np.full(self.num_samples, math.log(fit.sigma))}
                 if lik.learned_noise else {})
        return Fitted(
            model=model, likelihood=lik, prior=fit.prior, name="Exact", params=params,
            theta=theta, X_train=problem.X, y_train=problem.y,
            diagnostics={"noise_std": fit.sigma, "noise_iterations": fit.iterations,
                         "log_evidence_improper": fit.log_evidence,
                         **(_learned(fit) if problem.learn_prior else {})},
            log_evidence=log_ev_public, approximation=coeffs, config=self.to_dict(),
        )


def _learned(fit) -> dict:
    """The diagnostics MAP reports for learned prior scales: the scales by layer and
    λ = σ²/s² (one layer: arrays of one value)."""
    scales = {g: np.array([float(p.scale)]) for g, p in fit.prior.items()}
    return {"hyperparameters": "evidence", "prior_scales": scales,
            "l2_strength": {g: fit.sigma ** 2 / s ** 2 for g, s in scales.items()}}
