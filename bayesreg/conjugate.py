r"""The linear-Gaussian algebra of a linear-in-parameters model with Gaussian noise: the
closed-form posterior that :class:`~bayesreg.Exact` is, and that ``LaplaceApprox`` reaches
on such a model (docs/methods/exact.md has the derivations).

With design matrix Φ = [features(X), 1] (N × P), noise σ and a prior that is Gaussian
N(m₀ⱼ, sⱼ²) or Flat on each coefficient (prior precision Λ₀ = diag(1/sⱼ²), 0 for Flat):

    A = ΦᵀΦ/σ² + Λ₀              posterior precision
    m = A⁻¹(Φᵀy/σ² + Λ₀m₀)       posterior mean (= the MAP estimate)
    log p(y) = Σᵢ log N(yᵢ | φᵢᵀm, σ²) + Σⱼ log N(mⱼ | m₀ⱼ, sⱼ²) + (P/2) log 2π − ½ log|A|

A learned σ is MacKay's fixed point σ² ← ‖y − Φm‖² / (N − γ), γ = P − tr(A⁻¹Λ₀) (type-II
maximum likelihood). The algebra is P × P in float64 on the host; an ill-conditioned A is
solved by a QR factorisation of [Φ/σ; Λ₀^½], which never forms ΦᵀΦ. On an X read by chunks
(:mod:`bayesreg.data.stream`) (R_Φ, z) of the QR factor [R_Φ, z; 0, ρ] of [Φ, y] stand in
for (Φ, y), with N kept and ρ² added to the residual sum of squares (:func:`design`).

Examples
--------
>>> import numpy as np, bayesreg as br
>>> X = np.linspace(0, 1, 15)[:, None]; y = np.sin(6 * X[:, 0])
>>> fit = solve(br.Polynomial(3), X, y, {"weights": br.Gaussian(10.0),
...             "biases": br.Gaussian(10.0)}, noise=0.3)
>>> fit.mean.shape, fit.sigma
((4,), 0.3)
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from bayesreg._lazy import linalg
from bayesreg.approximation import FunctionDraws, LoadContext, draw_outputs, register
from bayesreg.data import stream
from bayesreg.data.buckets import pad_rows
from bayesreg.priors import Flat, Gaussian


@dataclasses.dataclass(frozen=True)
class ConjugateFit:
    """What :func:`solve` found: the posterior N(mean, A⁻¹) (``chol_prec``: lower Cholesky
    factor of A), σ, the fixed-point iterations that set it (0 when given) and the log
    evidence with Flat coefficients at density 1; ``prior`` is the prior used (learned with
    ``learn_prior``)."""

    mean: np.ndarray
    chol_prec: np.ndarray
    sigma: float
    iterations: int
    log_evidence: float
    prior: dict


def solve(model, X, y, prior, noise: float | None = None, float32: bool = False,
          max_iter: int = 1000, tol: float = 1e-12, learn_prior: bool = False) -> ConjugateFit:
    """The conjugate posterior of ``model``'s coefficients given rows (X, y), with the checks
    that refuse an improper posterior, an unlearnable noise or a float32 overflow (module
    docstring). ``noise`` None: σ by type-II maximum likelihood. ``learn_prior``: the
    Gaussian prior scales of the weights and of the bias by type-II maximum likelihood too
    (:func:`type2_prior`), the evidence MAP's training maximises for a network, here exactly;
    ``prior`` is then unused and ``ConjugateFit.prior`` is the prior learned.

    Examples
    --------
    >>> import numpy as np, bayesreg as br
    >>> x = np.linspace(0, 1, 30); y = 2 * x + 0.1 * np.sin(40 * x)
    >>> fit = solve(br.Linear(), x[:, None], y, {"weights": br.Flat(), "biases": br.Flat()})
    >>> bool(np.allclose(fit.mean, np.polyfit(x, y, 1)))
    True
    """
    y_all = np.asarray(y, np.float64)
    phi, z, n, rss0 = design(model, X, y_all)
    iters_prior = 0
    if learn_prior:
        if noise is None:
            _check_noise_learnable(y_all)
        prior, iters_prior = type2_prior(phi, z, noise, max_iter, tol, n=n, rss0=rss0,
                                         var=float(np.var(y_all)))
    m0, prec0 = prior_moments(prior, phi.shape[1] - 1)
    if float32:
        _check_float32_range("y", float(np.max(np.abs(y_all))))
    _check_flat_identified(phi, prec0, n)
    if noise is None:
        _check_noise_learnable(y_all)
        sigma, iters = type2_noise(phi, z, m0, prec0, max_iter, tol, n=n, rss0=rss0,
                                   var=float(np.var(y_all)))
    else:
        sigma, iters = float(noise), 0
    mean, chol_prec = conjugate_update(phi, z, sigma, m0, prec0)
    if float32:
        _check_float32_range("sigma", sigma)
        spread = np.sqrt(np.sum(linalg.solve_triangular(
            chol_prec, np.eye(mean.size), lower=True) ** 2, axis=0))
        _check_float32_range("coefficients", float(np.max(np.abs(mean) + spread)))
    log_ev = log_evidence(phi, z, sigma, m0, prec0, mean, chol_prec, n=n, rss0=rss0)
    return ConjugateFit(mean, chol_prec, sigma, max(iters, iters_prior), log_ev, prior)


@register
@dataclasses.dataclass(frozen=True)
class GaussianCoefficients:
    """The exact posterior N(mean, L Lᵀ) over the flat coefficients [w, b] (float64): the
    :mod:`bayesreg.approximation` that :class:`~bayesreg.Exact` (and ``LaplaceApprox`` on a
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

    def mean_params(self, post) -> dict:
        """The mean [w, b] as the model's parameters, shaped as one draw (float64)."""
        k = self.mean.size - 1
        w, b = post.params["weights"][0], post.params["biases"][0]
        return {"weights": [self.mean[:k].reshape(np.shape(w)[1:])],
                "biases": [self.mean[k:].reshape(np.shape(b)[1:])]}

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
    """Φ = [features(X), 1] in float64, (N, K + 1) (features evaluated with x64 enabled).

    Examples
    --------
    >>> import numpy as np, bayesreg as br
    >>> design_matrix(br.Polynomial(2), np.array([[2.0]]))
    array([[2., 4., 1.]])
    """
    with jax.enable_x64(True):
        feats = np.asarray(model.features(jnp.asarray(X, jnp.float64)), np.float64)
    return np.concatenate([feats, np.ones((feats.shape[0], 1))], axis=1)


def design(model, X, y) -> tuple[np.ndarray, np.ndarray, int, float]:
    """(Φ, y, N, 0) for rows in memory; for an X read by chunks (R_Φ (P × P), z (P,), N, ρ²)
    of the triangular factor [R_Φ, z; 0, ρ] of [Φ, y], by one pass over chunks
    (:func:`bayesreg.data.stream.qr_factor`): ΦᵀΦ = R_ΦᵀR_Φ, Φᵀy = R_Φᵀz and
    ‖y − Φm‖² = ‖z − R_Φm‖² + ρ², so every formula here holds with (R_Φ, z) for (Φ, y).

    Examples
    --------
    >>> import numpy as np, bayesreg as br
    >>> X = np.linspace(0, 1, 6)[:, None]; y = X[:, 0] ** 2
    >>> phi, z, n, rss0 = design(br.Linear(), X, y)
    >>> phi.shape, n, rss0
    ((6, 2), 6, 0.0)
    """
    y = np.asarray(y, np.float64)
    if not stream.is_lazy(X):
        return design_matrix(model, X), y, y.size, 0.0
    factor = stream.qr_factor(X, y, lambda rows: design_matrix(model, rows))
    return factor[:-1, :-1], factor[:-1, -1], y.size, float(factor[-1, -1] ** 2)


def prior_moments(spec, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Prior mean m₀ and precision diagonal Λ₀ over [w (K), b] from a prior spec.

    Examples
    --------
    >>> import bayesreg as br
    >>> prior_moments({"weights": br.Gaussian(2.0), "biases": br.Flat()}, 2)
    (array([0., 0., 0.]), array([0.25, 0.25, 0.  ]))
    """
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
            scale = prior.scale  # one layer's scale, as a learned layer-wise prior holds it
            scale = scale[0] if isinstance(scale, list | tuple) and len(scale) == 1 else scale
            precs.append(np.full(size, 1.0 / float(scale) ** 2))
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
    """Posterior mean m and the Cholesky factor of the precision A (lower).

    Examples
    --------
    >>> phi = np.eye(2); mean, chol = conjugate_update(phi, np.ones(2), 1.0, np.zeros(2),
    ...                                                 np.ones(2))
    >>> mean, np.diag(chol) ** 2
    (array([0.5, 0.5]), array([2., 2.]))
    """
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
    ``phi`` and ``y`` are R_Φ and z of a streamed Φ (:func:`design`).

    Examples
    --------
    >>> from scipy import stats
    >>> phi, y = np.array([[1.0], [2.0]]), np.array([1.0, 3.0])
    >>> m, L = conjugate_update(phi, y, 1.0, np.zeros(1), np.ones(1))
    >>> bool(np.isclose(log_evidence(phi, y, 1.0, np.zeros(1), np.ones(1), m, L),
    ...      stats.multivariate_normal(cov=np.eye(2) + phi @ phi.T).logpdf(y)))
    True
    """
    n = phi.shape[0] if n is None else n
    p = phi.shape[1]
    resid = y - phi @ mean
    ll = (-0.5 * (resid @ resid + rss0) / sigma**2 - n * math.log(sigma)
          - 0.5 * n * math.log(2 * math.pi))
    g = prec0 > 0
    d = mean[g] - m0[g]
    lp = float(np.sum(-0.5 * d**2 * prec0[g] + 0.5 * np.log(prec0[g] / (2 * math.pi))))
    return float(ll + lp + 0.5 * p * math.log(2 * math.pi) - np.sum(np.log(np.diag(chol_prec))))


def chol_cov(chol_prec):
    """Lower Cholesky factor L of A⁻¹ (L Lᵀ = A⁻¹) from that of A.

    Examples
    --------
    >>> L = chol_cov(np.array([[2.0, 0.0], [1.0, 1.0]]))
    >>> bool(np.allclose(L @ L.T, np.linalg.inv([[4.0, 2.0], [2.0, 2.0]])))
    True
    """
    inv = linalg.solve_triangular(chol_prec, np.eye(chol_prec.shape[0]), lower=True)
    try:
        return linalg.cholesky(inv.T @ inv, lower=True)
    except linalg.LinAlgError:
        # inv.T @ inv squares the condition number; A⁻¹ = inv.T inv = RᵀR with R from the
        # QR factorisation of inv, so Rᵀ (diagonal made positive) is the lower factor
        r = linalg.qr(inv, mode="r")[0]
        return (r * np.sign(np.diag(r))[:, None]).T


def type2_noise(phi, y, m0, prec0, max_iter, tol, n=None, rss0=0.0,
                 var=None) -> tuple[float, int]:
    """σ by MacKay's fixed point; ``n``, ``rss0`` and ``var`` (of the real y) when ``phi``
    and ``y`` are R_Φ and z of a streamed Φ.

    Examples
    --------
    >>> phi = np.column_stack([np.linspace(0, 1, 20), np.ones(20)])
    >>> y = phi @ [1.0, 0.0] + 0.1 * np.sin(50 * phi[:, 0])
    >>> sigma, _ = type2_noise(phi, y, np.zeros(2), np.zeros(2), 100, 1e-12)
    >>> resid = y - phi @ np.linalg.lstsq(phi, y, rcond=None)[0]
    >>> bool(np.isclose(sigma**2, resid @ resid / (20 - 2)))  # Flat: the unbiased estimate
    True
    """
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


ALPHA_RANGE = (1e-8, 1e8)  # prior precisions are kept in this range (as the network evidence)


def type2_prior(phi, y, noise, max_iter, tol, n=None, rss0=0.0,
                var=None) -> tuple[dict, int]:
    """The Gaussian prior N(0, s_w²) on the weights and N(0, s_b²) on the bias that maximise
    the evidence p(y | s_w, s_b, σ), with σ too when ``noise`` is None: MacKay's fixed point

        γ_g = Σ_{i∈g} (1 − α_g (A⁻¹)ᵢᵢ),   α_g ← γ_g / ‖m_g‖²,   σ² ← RSS / (N − Σ_g γ_g)

    (α_g = 1/s_g², A = ΦᵀΦ/σ² + diag(α), m = A⁻¹Φᵀy/σ²), the update the Laplace–GGN
    evidence makes for a network (:mod:`bayesreg.training.evidence`; for a model linear in
    its parameters the GGN is exact, so the two agree). Returns ({"weights", "biases"}
    priors, iterations).

    Examples
    --------
    >>> import bayesreg as br
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 3)); w = np.array([1.0, -0.5, 0.25])
    >>> phi = np.column_stack([X, np.ones(200)]); y = X @ w + 0.3 * rng.standard_normal(200)
    >>> prior, _ = type2_prior(phi, y, None, 1000, 1e-12)
    >>> 0.3 < float(prior["weights"].scale) < 1.5  # ~ the rms of w, 0.76
    True
    """
    n = phi.shape[0] if n is None else n
    p = phi.shape[1]
    groups = [np.arange(p - 1), np.array([p - 1])]
    alpha, previous = np.ones(2), None
    sigma2 = (max(float(np.var(y)) if var is None else var, 1e-12) if noise is None
              else float(noise) ** 2)
    for it in range(1, max_iter + 1):
        prec0 = np.concatenate([np.full(g.size, a)
                                for g, a in zip(groups, alpha, strict=True)])
        mean, chol = conjugate_update(phi, y, math.sqrt(sigma2), np.zeros(p), prec0)
        inv_diag = np.diag(linalg.cho_solve((chol, True), np.eye(p)))
        gamma = np.array([np.sum(1.0 - a * inv_diag[g]) for g, a in zip(groups, alpha,
                                                                             strict=True)])
        norms = np.array([float(mean[g] @ mean[g]) for g in groups])
        new_alpha = np.clip(gamma / np.maximum(norms, 1e-300), *ALPHA_RANGE)
        new_sigma2 = sigma2
        if noise is None:
            resid = y - phi @ mean
            rss = float(resid @ resid) + rss0
            if n - gamma.sum() <= 1e-9 or rss <= 0:
                raise ValueError(
                    "cannot learn the prior and the noise by evidence: the model interpolates "
                    f"the data (N = {n}, effective parameters γ = {gamma.sum():.3g}); fix it "
                    "with prior=br.Gaussian(s) or GaussianLikelihood(noise=σ)")
            new_sigma2 = rss / (n - gamma.sum())
        # converged when the scales settle, or when the fit they give does: a group the
        # data cannot use sends α → ∞ only logarithmically slowly, while its m → 0 and the
        # posterior mean stops moving (MacKay's updates near a pruned group)
        settled = np.all(np.abs(np.log(new_alpha / alpha)) <= tol ** 0.5)
        still = previous is not None and np.max(np.abs(mean - previous)) <= tol ** 0.5 * (
            1.0 + np.max(np.abs(mean)))
        done = (settled or still) and abs(new_sigma2 - sigma2) <= tol ** 0.5 * sigma2
        alpha, sigma2, previous = new_alpha, new_sigma2, mean
        if done:
            return _gaussian_groups(alpha), it
    warnings.warn(f"the evidence fixed point for the prior scales did not converge in "
                  f"{max_iter} iterations", UserWarning, stacklevel=3)
    return _gaussian_groups(alpha), max_iter


def _gaussian_groups(alpha) -> dict:
    scales = 1.0 / np.sqrt(alpha)
    return {"weights": Gaussian(float(scales[0])), "biases": Gaussian(float(scales[1]))}
