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

The algebra is P × P, so it runs in float64 on the host (NumPy/SciPy): float32 Cholesky
factors lose digits on raw polynomial features. Where A is too ill-conditioned even for a
float64 Cholesky (a tiny fixed noise, a very wide prior) the update is solved by a QR
factorisation of [Φ/σ; Λ₀^½] instead, which never forms ΦᵀΦ.

**Data larger than memory.** On an X that ``br.fit`` reads by chunks (a memmap, an h5py or
zarr array: :mod:`bayesreg.data.stream`) Φ is never formed whole: one pass over chunks of rows
accumulates, in float64, the triangular factor R of the (N × (P+1)) matrix [Φ, y] by a
chunked (tall-skinny) QR, [R_Φ, z; 0, ρ] with ΦᵀΦ = R_ΦᵀR_Φ, Φᵀy = R_Φᵀz and
‖y − Φm‖² = ‖z − R_Φm‖² + ρ². Every formula above is then the same with (R_Φ, z) in place of
(Φ, y), N kept and ρ² added to the residual sum of squares: the update, the noise fixed point,
the evidence, the QR fallback (whose least-squares problem has the same solution) and the
Flat check (R_Φ has Φ's rank). Memory is one chunk and a (P+1)² matrix, whatever N is.

Refused with a ``ValueError`` that says why: a learned noise from one row or from a constant
y (the evidence grows without bound as σ → 0); Flat coefficients that the rows cannot
determine (an improper posterior); and, in float32, a y, σ or coefficient spread beyond
``FLOAT32_LIMIT`` (≈ 1.8e15), whose squares would overflow into an infinite predictive std
(use ``dtype="float64"`` or rescale y).
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from bayesreg._lazy import linalg
from bayesreg._random import numpy_rng
from bayesreg._validation import check_int
from bayesreg.approximation import FunctionDraws, LoadContext, draw_outputs, register
from bayesreg.data import stream as _stream
from bayesreg.data.buckets import pad_rows
from bayesreg.fitted import Fitted
from bayesreg.latent import check_hierarchical
from bayesreg.likelihoods import GaussianLikelihood
from bayesreg.priors import Flat, Gaussian, is_proper
from bayesreg.problem import Problem


@dataclasses.dataclass(frozen=True)
class Exact:
    """Exact conjugate posterior for ``Linear``, ``Polynomial`` and ``Basis`` models.

    Parameters
    ----------
    num_draws : int
        Coefficient draws kept for ``pred.draws`` and ArviZ export; the predictive's
        mean, std, intervals, log density and CRPS are analytic and do not use them.
    max_iter, tol : int, float
        Fixed-point iterations and relative tolerance on σ² when the noise is learned.

    Notes
    -----
    An X read by chunks (a memmap, see :mod:`bayesreg.data.stream`) streams, whatever its size: one
    pass over chunks accumulates the QR factor of [Φ, y], never Φ itself (module docstring).

    Examples
    --------
    >>> import numpy as np, bayesreg as br
    >>> X = np.linspace(0, 1, 15); y = np.sin(6 * X)
    >>> post = br.fit(br.Polynomial(3), X, y, method=br.Exact(), prior=br.Gaussian(10.0),
    ...               likelihood=br.GaussianLikelihood(0.3))
    >>> bool(np.isfinite(post.log_evidence))
    True
    """

    num_draws: int = 1000
    max_iter: int = 1000
    tol: float = 1e-12

    def __post_init__(self):
        check_int("num_draws", self.num_draws)
        check_int("max_iter", self.max_iter)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def _streams(self, n: int, likelihood) -> bool:
        """An X read by chunks is streamed (sufficient statistics by chunks), never loaded."""
        return True

    def supports(self, model, likelihood) -> bool:
        """Whether this method can fit ``model`` under ``likelihood`` (a linear-in-parameters model
        and a Gaussian likelihood with one σ)."""
        return (model.linear_in_params and isinstance(likelihood, GaussianLikelihood)
                and not likelihood.heteroscedastic)

    def fit(self, problem: Problem) -> Fitted:
        model, lik = problem.model, problem.likelihood
        if not getattr(model, "linear_in_params", False):
            raise ValueError(
                f"Exact needs a linear-in-parameters model (Linear, Polynomial, Basis); got "
                f"{type(model).__name__}. Use br.LaplaceApprox, br.VI or br.NUTS for networks."
            )
        if not isinstance(lik, GaussianLikelihood):
            raise ValueError(f"Exact needs a GaussianLikelihood; got {type(lik).__name__}")
        check_hierarchical(problem.prior, "Exact")
        y_all = problem.y.astype(np.float64)
        n, rss0 = y_all.size, 0.0
        if _stream.is_lazy(problem.X):  # (R_Φ, z) of a chunked QR stand in for (Φ, y)
            phi, y, rss0 = streamed_factor(model, problem.X, y_all)
        else:
            phi, y = design_matrix(model, problem.X), y_all
        m0, prec0 = prior_moments(problem.prior, phi.shape[1] - 1)
        float32 = problem.dtype == "float32"
        if float32:
            _check_float32_range("y", float(np.max(np.abs(y_all))))
        _check_flat_identified(phi, prec0, n)
        if lik.learned_noise:
            _check_noise_learnable(y_all)
            sigma, iters = _type2_noise(phi, y, m0, prec0, self.max_iter, self.tol,
                                        n=n, rss0=rss0, var=float(np.var(y_all)))
        else:
            sigma, iters = float(lik.noise), 0
        mean, chol_prec = conjugate_update(phi, y, sigma, m0, prec0)
        if float32:
            _check_float32_range("sigma", sigma)
            spread = np.sqrt(np.sum(linalg.solve_triangular(
                chol_prec, np.eye(mean.size), lower=True) ** 2, axis=0))
            _check_float32_range("coefficients", float(np.max(np.abs(mean) + spread)))
        log_ev = log_evidence(phi, y, sigma, m0, prec0, mean, chol_prec, n=n, rss0=rss0)
        if not is_proper(problem.prior):
            warnings.warn(
                "log_evidence is nan: a Flat prior is improper and has no evidence; "
                "use a Gaussian prior on every coefficient to compare models by evidence",
                UserWarning, stacklevel=3,
            )
            log_ev_public = math.nan
        else:
            log_ev_public = log_ev
        coeffs = GaussianCoefficients(mean=mean, chol_cov=_chol_cov(chol_prec))
        rng = numpy_rng(problem.key)
        z = rng.standard_normal((self.num_draws, mean.size))
        flat_draws = mean + z @ coeffs.chol_cov.T
        k = phi.shape[1] - 1
        params = {"weights": [flat_draws[:, :k, None].astype(problem.dtype)],
                  "biases": [flat_draws[:, k:].astype(problem.dtype)]}
        theta = ({"log_noise": np.full(self.num_draws, math.log(sigma))}
                 if lik.learned_noise else {})
        return Fitted(
            model=model, likelihood=lik, prior=problem.prior, name="Exact", params=params,
            theta=theta, X_train=problem.X, y_train=problem.y,
            diagnostics={"noise_std": sigma, "noise_iterations": iters,
                         "log_evidence_improper": log_ev},
            log_evidence=log_ev_public, approximation=coeffs, config=self.to_dict(),
        )


@register
@dataclasses.dataclass(frozen=True)
class GaussianCoefficients:
    """The exact posterior N(mean, L Lᵀ) over the flat coefficients [w, b] (float64): the
    :mod:`bayesreg.approximation` that :class:`Exact` (and ``LaplaceApprox`` on a
    linear-in-parameters model with a fixed noise) leaves. At rows with design φ(x) the
    function value is N(φᵀmean, ‖φᵀL‖²), so every predictive summary is analytic."""

    mean: np.ndarray
    chol_cov: np.ndarray

    name = "gaussian"

    @property
    def cov(self) -> np.ndarray:
        return self.chol_cov @ self.chol_cov.T

    def outputs(self, post, X, chunk_size=None) -> FunctionDraws:
        phi = design_matrix(post.model, pad_rows(X))[: X.shape[0]]
        mean = phi @ self.mean
        var_f = np.sum((phi @ self.chol_cov) ** 2, axis=1)
        return FunctionDraws(draw_outputs(post.model, post.params, X, chunk_size),
                             (mean, var_f))

    def arrays(self) -> dict[str, np.ndarray]:
        return {"mean": np.asarray(self.mean), "chol_cov": np.asarray(self.chol_cov)}

    @classmethod
    def from_arrays(cls, arrays, context: LoadContext) -> GaussianCoefficients:
        mean, chol = arrays["mean"], arrays["chol_cov"]
        p = context.num_params
        if mean.shape != (p,) or chol.shape != (p, p):
            raise ValueError(f"the Gaussian posterior has shapes {mean.shape}, {chol.shape}; "
                             f"the model has {p} coefficients")
        return cls(mean, chol)


def design_matrix(model, X) -> np.ndarray:
    """Φ = [features(X), 1] in float64, (N, K + 1) (features evaluated with x64 enabled)."""
    with jax.enable_x64(True):
        feats = np.asarray(model.features(jnp.asarray(X, jnp.float64)), np.float64)
    return np.concatenate([feats, np.ones((feats.shape[0], 1))], axis=1)


def streamed_factor(model, X, y) -> tuple[np.ndarray, np.ndarray, float]:
    """(R_Φ (P × P), z (P,), ρ²) of the triangular factor [R_Φ, z; 0, ρ] of [Φ, y] (float64),
    by one pass over chunks of the rows of X read by :mod:`bayesreg.data.stream`: each chunk's
    rows are stacked under the factor so far and QR-factorised again (a tall-skinny QR), so
    only one chunk of Φ is ever in memory."""
    n = X.shape[0]
    rows = max(1, _stream.CHUNK_BYTES // (8 * max(1, X.shape[1])))
    factor = None
    for a, b in _stream.spans(n, rows):
        phi = design_matrix(model, _stream.read(X, [(a, b)], np.float64))
        block = np.concatenate([phi, y[a:b, None]], axis=1)
        del phi
        if factor is not None:
            block = np.concatenate([factor, block], axis=0)
        factor = np.linalg.qr(block, mode="r")  # (min(rows, P + 1), P + 1)
        del block
    p1 = factor.shape[1]
    if factor.shape[0] < p1:  # fewer rows than P + 1: R has as many rows as [Φ, y]
        factor = np.concatenate([factor, np.zeros((p1 - factor.shape[0], p1))], axis=0)
    factor = factor[:p1]
    return factor[:-1, :-1], factor[:-1, -1], float(factor[-1, -1] ** 2)


def prior_moments(spec, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Prior mean m₀ and precision diagonal Λ₀ over [w (K), b] from a prior spec."""
    means, precs = [], []
    for group, size in (("weights", k), ("biases", 1)):
        prior = spec[group]
        if isinstance(prior, Flat):
            means.append(np.zeros(size))
            precs.append(np.zeros(size))
        elif isinstance(prior, Gaussian):
            loc = prior.loc[0] if isinstance(prior.loc, list | tuple) else prior.loc
            loc = np.asarray(loc, np.float64).ravel()
            if loc.size not in (1, size):
                raise ValueError(f"the {group} prior's loc has {loc.size} values; "
                                 f"expected 1 or {size}")
            means.append(np.broadcast_to(loc, (size,)).copy())
            precs.append(np.full(size, 1.0 / float(prior.scale) ** 2))
        else:
            raise ValueError(
                f"Exact needs Gaussian or Flat priors; the {group} prior is "
                f"{type(prior).__name__}. Use br.NUTS or br.LaplaceApprox for other priors."
            )
    return np.concatenate(means), np.concatenate(precs)


# |y|, σ and the coefficients' posterior spread must stay below this in float32: the
# predictive squares them and sums the squares over draws and rows (up to ~1e8 terms), and
# float32 overflows at 3.4e38.
FLOAT32_LIMIT = math.sqrt(float(np.finfo(np.float32).max) / 1e8)


def _check_float32_range(what: str, value: float) -> None:
    if value <= FLOAT32_LIMIT:
        return
    fix = "fit with dtype='float64', or divide y by its scale (e.g. y / y.std())"
    why = (f"in float32 (largest number {float(np.finfo(np.float32).max):.2g}) its square "
           "overflows and the predictive std would be inf")
    raise ValueError({
        "y": f"y reaches {value:.3g}: {why}; {fix}",
        "sigma": f"the learned noise σ = {value:.3g}: {why}; {fix}",
        "coefficients": f"the posterior predictive std reaches {value:.3g} through the "
                        f"coefficients (a prior too wide for what the data determine): {why}; "
                        f"use a narrower prior, or {fix}",
    }[what])


def _check_flat_identified(phi, prec0, n: int | None = None) -> None:
    """A Flat prior leaves its coefficients to the data alone: the columns of Φ under it must
    be linearly independent, or the posterior is improper. ``phi`` may be R_Φ of a streamed
    Φ (same rank) with ``n`` Φ's number of rows."""
    flat = prec0 == 0
    k = int(np.sum(flat))
    if k == 0:
        return
    n = phi.shape[0] if n is None else n
    p = phi.shape[1]
    s = np.linalg.svd(phi[:, flat], compute_uv=False)  # numpy's matrix_rank tolerance, Φ's N
    rank = int(np.sum(s > s.max(initial=0.0) * max(n, k) * np.finfo(np.float64).eps))
    if rank < k:
        rows = f"N = {n} row{'s' if n != 1 else ''}"
        why = (f"{rows} cannot determine {k} coefficients" if n < k else
               f"the features are linearly dependent (rank {rank} of {k})")
        raise ValueError(
            f"the posterior is improper: with a Flat prior on {k} of the {p} coefficients, "
            f"{why}; use a Gaussian prior (e.g. br.Gaussian(10.0)) or more rows")


def _check_noise_learnable(y) -> None:
    """Type-II maximum likelihood of σ needs a spread in y that the model cannot absorb."""
    if y.size == 1:
        raise ValueError(
            "one row cannot determine the noise: learning σ by evidence needs at least two "
            "rows (and more rows than the model's effective number of parameters); fix it "
            "with GaussianLikelihood(noise=σ), or fit on more rows")
    if np.ptp(y) == 0:
        raise ValueError(
            f"y is constant (every value is {y[0]:g}): the evidence grows without bound as "
            "σ → 0, so the noise cannot be learned; fix it with GaussianLikelihood(noise=σ), "
            "or check that y is the column you meant")


def conjugate_update(phi, y, sigma, m0, prec0):
    """Posterior mean m and the Cholesky factor of the precision A (lower)."""
    A = phi.T @ phi / sigma**2 + np.diag(prec0)
    try:
        chol = linalg.cholesky(A, lower=True)
    except linalg.LinAlgError:
        return _qr_update(phi, y, sigma, m0, prec0)
    d = np.diag(chol)
    if (d.max() / d.min()) ** 2 > 1e10:  # A is ill-conditioned: solve without forming ΦᵀΦ
        return _qr_update(phi, y, sigma, m0, prec0)
    mean = linalg.cho_solve((chol, True), phi.T @ y / sigma**2 + prec0 * m0)
    return mean, chol


def _qr_update(phi, y, sigma, m0, prec0):
    """``conjugate_update`` by a QR factorisation of the stacked matrix M = [Φ/σ; Λ₀^½].

    The posterior mean solves the least-squares problem M m ≈ [y/σ; Λ₀^½ m₀], and R of
    M = QR satisfies RᵀR = A. Forming ΦᵀΦ squares Φ's condition number: a tiny σ, raw
    polynomial features or a very wide prior can then make a positive-definite A fail a
    float64 Cholesky (or lose the mean's digits); the QR route does not square it.
    """
    p = phi.shape[1]
    root = np.sqrt(prec0)
    q, r = linalg.qr(np.vstack([phi / sigma, np.diag(root)]), mode="economic")
    d = np.diag(r)
    if not np.all(np.isfinite(r)) or np.any(d == 0):
        raise ValueError(
            f"the posterior precision ΦᵀΦ/σ² + Λ₀ is singular (σ = {sigma:.3g}, {p} "
            "coefficients): standardise X, use a Gaussian prior on every coefficient, or fit "
            "with a larger fixed noise")
    mean = linalg.solve_triangular(r, q.T @ np.concatenate([y / sigma, root * m0]))
    return mean, (r * np.sign(d)[:, None]).T


def log_evidence(phi, y, sigma, m0, prec0, mean, chol_prec, n=None, rss0=0.0) -> float:
    """log ∫ p(y | w) p(w) dw (Flat coefficients with density 1). With ``n`` and ``rss0``,
    ``phi`` and ``y`` are R_Φ and z of a streamed Φ (:func:`streamed_factor`)."""
    n = phi.shape[0] if n is None else n
    p = phi.shape[1]
    resid = y - phi @ mean
    ll = (-0.5 * (resid @ resid + rss0) / sigma**2 - n * math.log(sigma)
          - 0.5 * n * math.log(2 * math.pi))
    g = prec0 > 0
    d = mean[g] - m0[g]
    lp = float(np.sum(-0.5 * d**2 * prec0[g] + 0.5 * np.log(prec0[g] / (2 * math.pi))))
    return float(ll + lp + 0.5 * p * math.log(2 * math.pi) - np.sum(np.log(np.diag(chol_prec))))


def _chol_cov(chol_prec):
    """Lower Cholesky factor L of A⁻¹ (L Lᵀ = A⁻¹) from that of A."""
    inv = linalg.solve_triangular(chol_prec, np.eye(chol_prec.shape[0]), lower=True)
    try:
        return linalg.cholesky(inv.T @ inv, lower=True)
    except linalg.LinAlgError:
        # inv.T @ inv squares the condition number; A⁻¹ = inv.T inv = RᵀR with R from the
        # QR factorisation of inv, so Rᵀ (diagonal made positive) is the lower factor
        r = linalg.qr(inv, mode="r")[0]
        return (r * np.sign(np.diag(r))[:, None]).T


def _type2_noise(phi, y, m0, prec0, max_iter, tol, n=None, rss0=0.0,
                 var=None) -> tuple[float, int]:
    """σ by MacKay's fixed point; ``n``, ``rss0`` and ``var`` (of the real y) when ``phi``
    and ``y`` are R_Φ and z of a streamed Φ."""
    n = phi.shape[0] if n is None else n
    p = phi.shape[1]
    sigma2 = max(float(np.var(y)) if var is None else var, 1e-12)
    for it in range(1, max_iter + 1):
        mean, chol = conjugate_update(phi, y, math.sqrt(sigma2), m0, prec0)
        inv = linalg.cho_solve((chol, True), np.eye(p))
        gamma = p - float(np.sum(prec0 * np.diag(inv)))
        resid = y - phi @ mean
        rss = float(resid @ resid) + rss0
        if n - gamma <= 1e-9 or rss <= 0:
            raise ValueError(
                "cannot learn the noise by evidence: the model interpolates the data "
                f"(N = {n}, effective parameters γ = {gamma:.3g}); fix it with "
                "GaussianLikelihood(noise=σ) or use a narrower prior"
            )
        new = rss / (n - gamma)
        if abs(new - sigma2) <= tol * sigma2:
            return math.sqrt(new), it
        sigma2 = new
    warnings.warn(f"the evidence fixed point for the noise did not converge in {max_iter} "
                  "iterations", UserWarning, stacklevel=3)
    return math.sqrt(sigma2), max_iter
