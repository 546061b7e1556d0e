r"""Last-layer Laplace: ``LaplaceApprox(subset="last_layer")`` (Kristiadi et al. 2020).

Every layer but the last is fixed at the MAP mode; the last layer's weights and bias get a
Gaussian posterior. With φ(x) the penultimate features at the mode (``features(x)`` for a
``Linear``/``Polynomial``/``Basis`` model: its only layer is the last), φ̃ = [φ, 1] and the
last layer's parameters θ = [vec W, b] (W of shape (H, K) read row by row, then b),

    f(x) = W̃ᵀ φ̃(x),   W̃ = [W; bᵀ],   ∂f/∂θ = φ̃ᵀ ⊗ I_K,

so f is *linear* in θ and the generalised Gauss–Newton matrix of the last layer is its
exact Hessian:

    H = Σₙ (φ̃ₙ φ̃ₙᵀ) ⊗ Λₙ + Λ₀,   Λₙ = ∂²(−log p(yₙ | f))/∂f²,   Λ₀ = diag(prior precisions).

``hessian="full"`` forms this Hessian of the last layer's negative log joint directly
(``jax.hessian`` in float64). ``hessian="kron"`` forms the Kronecker factors of KFAC
(Martens & Grosse 2015; laplace-torch's last-layer default): A = Σₙ φ̃ₙ φ̃ₙᵀ and
B = (1/N) Σₙ Λₙ, so H ≈ N·(A/N) ⊗ B + Λ₀ = A ⊗ B + Λ₀. For a Gaussian likelihood Λₙ = 1/σ²
for every row (K = 1), B is that scalar and the Kronecker form is exact:
H = ΦᵀΦ/σ² ⊗ I_K + Λ₀. The prior is added as the exact diagonal Λ₀ (weights and bias may
have different precisions), not folded into the factors' eigenvalues as laplace-torch does
for an isotropic prior, and the (H+1)K × (H+1)K matrix is then factorised densely: the last
layer is small, so the Kronecker structure is used for the curvature, not for the solve.
Both therefore agree to rounding on every model this module accepts.

The mode. The network is trained as ``LaplaceApprox`` trains it (``training``, by default
L-BFGS; σ and the prior scales by the Laplace–GGN evidence of the whole network when they
are left out). Given the body, the last layer's log joint is quadratic, so one float64
Newton step θ = θ* − H⁻¹∇L(θ*) from the trained last layer θ* lands exactly on its
conditional mode (the conjugate posterior mean); ``diagnostics["newton_shift"]`` says how
far it moved. The posterior over θ is then N(θ, H⁻¹) exactly (given the body and σ), and
the predictive at x is analytic: f(x) ~ N(φ̃ᵀ m, φ̃ᵀ L Lᵀ φ̃) per output.

The noise. A fixed σ is used as given. A learned σ is the one the whole-network evidence
set during training, kept as is rather than re-estimated from the last layer's exact
evidence: the features φ were fit to the same y, and the last-layer evidence with φ held
fixed counts only the last layer's effective parameters (γ ≤ H + 1) in σ² = RSS/(N − γ), so
it credits the body's fit to the noise budget and puts σ too low. (The value it would give
is reported as ``diagnostics["noise_std_last_layer"]`` for comparison; it is exactly what
``Exact`` computes for features φ.) With ``training=MAP(hyperparameters="joint")`` no
evidence runs and σ is the mode of the latent log σ under its prior, as for
``subset="all"``.

``log_evidence`` is the last layer's Laplace evidence, exact given the body and σ:

    log p(y | φ, σ) = Σₙ log N(yₙ | φ̃ₙᵀ m, σ²) + log N(m | m₀, Λ₀⁻¹) + (P/2) log 2π − ½ log |H|

(``conjugate.log_evidence`` with Φ̃ as the design). It treats the body as fixed, so it carries
no Occam factor for the body's weights; ``nan`` with a warning under a Flat prior.

Supported: a homoscedastic ``GaussianLikelihood`` and a ``Gaussian`` or ``Flat`` prior on
the last layer (a layer-wise learned prior uses its last scale); models ``Linear``,
``Polynomial``, ``Basis`` and ``MLP`` (with an MLP on the default ``hidden=(50,)``,
P = 51 parameters get the Gaussian whatever the body's size).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bayesreg import conjugate, curvature
from bayesreg._lazy import linalg
from bayesreg.approximation import (
    FunctionDraws,
    LoadContext,
    mode_arrays,
    mode_from_arrays,
    register,
)
from bayesreg.data.buckets import pad_rows
from bayesreg.fitted import Fitted
from bayesreg.latent import check_hierarchical, init_latent
from bayesreg.likelihoods import GaussianLikelihood
from bayesreg.models import MLP, mlp_forward
from bayesreg.priors import Flat, Gaussian, is_proper
from bayesreg.problem import Problem
from bayesreg.training.results import check_trace, learned_hyperparameters

LAST_LAYER_HESSIANS = ("auto", "full", "ggn", "kron")
DRAWS_KIND = "last-layer posterior samples (the other layers fixed at the MAP mode)"


@register
@dataclasses.dataclass(frozen=True)
class LastLayerGaussian:
    """N(mean, L Lᵀ) over the last layer θ = [vec W, b], the other layers at ``mode``.

    Attributes
    ----------
    mode : pytree
        The model's parameters at the MAP mode (no leading draw axis); its last layer is
        the trained one, the body is what the features are computed with.
    mean : ndarray ((H + 1) K,)
        Posterior mean of θ (float64), W row by row then b.
    chol_cov : ndarray ((H + 1) K, (H + 1) K)
        Lower Cholesky factor L of the posterior covariance of θ (float64).
    """

    mode: Any
    mean: np.ndarray
    chol_cov: np.ndarray

    name = "last_layer"

    def outputs(self, post, X, chunk_size=None) -> FunctionDraws:
        del chunk_size  # one (N, H + 1) design and an (S, N, K) product: no draw loop
        phi = design(post.model, self.mode, X)  # (N, H + 1), float64
        k = int(np.shape(self.mode["biases"][-1])[-1])
        first = self.chol_cov[0::k]  # rows of L for output 0: θ indices h·K + 0
        mean = phi @ self.mean.reshape(-1, k)[:, 0]
        var_f = np.sum((phi @ first) ** 2, axis=1)
        w = np.concatenate([np.asarray(post.params["weights"][-1], np.float64),
                            np.asarray(post.params["biases"][-1], np.float64)[:, None, :]],
                           axis=1)  # (S, H + 1, K)
        dtype = np.asarray(post.params["weights"][-1]).dtype  # draws in the model's dtype
        return FunctionDraws(np.einsum("nh,shk->snk", phi, w).astype(dtype), (mean, var_f))

    def mean_params(self, post):
        """The mode with the last layer at its posterior mean θ = [vec W, b]."""
        del post
        k = int(np.shape(self.mode["biases"][-1])[-1])
        out = jax.tree_util.tree_map(np.asarray, self.mode)
        out["weights"][-1], out["biases"][-1] = self.mean[:-k].reshape(-1, k), self.mean[-k:]
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        return {**mode_arrays(self.mode), "mean": np.asarray(self.mean),
                "chol_cov": np.asarray(self.chol_cov)}

    @classmethod
    def from_arrays(cls, arrays, context: LoadContext) -> LastLayerGaussian:
        mode = mode_from_arrays(arrays, context, "the last-layer Laplace mode")
        p = int(np.size(mode["weights"][-1]) + np.size(mode["biases"][-1]))
        mean, chol = arrays["mean"], arrays["chol_cov"]
        if mean.shape != (p,) or chol.shape != (p, p):
            raise ValueError(f"the last-layer Gaussian has shapes {mean.shape}, {chol.shape}; "
                             f"the model's last layer has {p} parameters")
        return cls(mode, mean, chol)


def fit_last_layer(method, problem: Problem):
    """``LaplaceApprox(subset="last_layer")._run``: the module docstring."""
    check_hierarchical(problem.prior, "LaplaceApprox")
    model, lik = problem.model, problem.likelihood
    _check_supported(model, lik, method.hessian)
    kind = "full" if method.hessian == "auto" else method.hessian
    init_key, train_key, draw_key = jax.random.split(problem.key, 3)
    training = method.training
    hook = training.evidence_hook(problem)
    lr = training.resolved(model).lr
    if hook is not None:  # σ and/or the prior scales by the whole network's evidence
        state, trace = training.optimize(problem, problem.init_state(init_key), train_key,
                                         hook=hook)
        prior, learned = learned_hyperparameters(problem, check_trace(trace, lr, problem),
                                                 state)
        sigma = float(np.asarray(learned["noise_std"]))
    else:
        state, trace = training.optimize(problem, init_latent(problem, init_key), train_key,
                                         latent=True)
        learned = check_trace(trace, lr, problem)
        prior = problem.prior
        sigma = (float(np.exp(np.asarray(state["theta"]["log_noise"], np.float64)))
                 if lik.learned_noise else float(lik.noise))
        learned["noise_std"] = sigma
    mode = jax.tree_util.tree_map(np.asarray, state["params"])
    phi = design(model, mode, problem.X)  # (N, H + 1)
    y = np.asarray(problem.y, np.float64)
    n_hidden, k = np.shape(mode["weights"][-1])
    m0, prec0 = last_layer_prior(prior, n_hidden, k)
    theta_star = np.concatenate([np.asarray(mode["weights"][-1], np.float64).ravel(),
                                 np.asarray(mode["biases"][-1], np.float64).ravel()])
    H = curvature.last_layer(kind, phi, y, sigma, k, prec0, m0, theta_star)
    try:
        chol_prec = linalg.cholesky(H, lower=True)
    except linalg.LinAlgError:
        raise ValueError(
            "the last layer's posterior precision ΦᵀΦ/σ² + Λ₀ is singular: with a Flat prior "
            "on the last layer the features must be linearly independent; use a Gaussian "
            "prior") from None
    grad = -phi.T @ (y - phi @ theta_star) / sigma**2 + prec0 * (theta_star - m0)
    mean = theta_star - linalg.cho_solve((chol_prec, True), grad)  # exact: L is quadratic
    chol_cov = conjugate.chol_cov(chol_prec)
    log_ev = conjugate.log_evidence(phi, y, sigma, m0, prec0, mean, chol_prec)
    if is_proper(prior):
        log_ev_public = log_ev
    else:
        warnings.warn("log_evidence is nan: a Flat prior is improper and has no evidence",
                      UserWarning, stacklevel=4)
        log_ev_public = math.nan
    eps = np.asarray(jax.random.normal(draw_key, (method.num_samples, mean.size)), np.float64)
    flat = mean + eps @ chol_cov.T
    dtype = np.asarray(mode["weights"][-1]).dtype
    params = jax.tree_util.tree_map(
        lambda a: np.repeat(np.asarray(a)[None], method.num_samples, axis=0), mode)
    params["weights"][-1] = flat[:, :n_hidden * k].reshape(-1, n_hidden, k).astype(dtype)
    params["biases"][-1] = flat[:, n_hidden * k:].astype(dtype)
    theta = ({"log_noise": np.full(method.num_samples, math.log(sigma))}
             if lik.learned_noise else {})
    diagnostics = {
        **learned, "subset": "last_layer", "hessian": kind,
        "newton_shift": float(np.max(np.abs(mean - theta_star))),
        "log_evidence_improper": log_ev,
        "min_eigenvalue": float(np.linalg.eigvalsh(H).min()),
    }
    if lik.learned_noise:
        diagnostics["noise_std_last_layer"] = _last_layer_noise(phi, y, m0, prec0)
    return Fitted(
        model=model, likelihood=lik, prior=prior, name="LaplaceApprox", params=params,
        theta=theta, X_train=problem.X, y_train=problem.y, diagnostics=diagnostics,
        log_evidence=log_ev_public, config=method.to_dict(),
        approximation=LastLayerGaussian(mode=mode, mean=mean, chol_cov=chol_cov),
        draws_kind=DRAWS_KIND,
    )


def _check_supported(model, lik, hessian: str) -> None:
    if hessian not in LAST_LAYER_HESSIANS:
        raise ValueError(f"subset='last_layer' takes hessian in {LAST_LAYER_HESSIANS}; got "
                         f"{hessian!r}")
    if not (getattr(model, "linear_in_params", False) and hasattr(model, "features")) \
            and not isinstance(model, MLP):
        raise ValueError(f"subset='last_layer' needs an MLP or a Linear, Polynomial or Basis "
                         f"model (whose penultimate features it can compute); got "
                         f"{type(model).__name__}, whose last layer is unknown: use "
                         f"LaplaceApprox() over all its parameters")
    if not isinstance(lik, GaussianLikelihood) or lik.heteroscedastic:
        raise ValueError(f"subset='last_layer' needs a homoscedastic GaussianLikelihood; got "
                         f"{type(lik).__name__}"
                         f"{' (heteroscedastic)' if getattr(lik, 'heteroscedastic', 0) else ''}"
                         ". Use LaplaceApprox() (subset='all') for this likelihood")


def design(model, mode, X) -> np.ndarray:
    """Φ̃ = [φ(X), 1] (N, H + 1) in float64, with the body at ``mode``."""
    X = np.asarray(X)
    n = X.shape[0]
    body = {g: list(mode[g][:-1]) for g in ("weights", "biases")}
    with jax.enable_x64(True):
        body64 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), body)
        feats = _features(model, body64, jnp.asarray(pad_rows(X), jnp.float64))
        feats = np.asarray(feats, np.float64)[:n]
    return np.concatenate([feats, np.ones((n, 1))], axis=1)


@partial(jax.jit, static_argnums=(0,))
def _features(model, body, X):
    """The penultimate features φ(X): the model's basis, or an MLP's last hidden layer."""
    if getattr(model, "linear_in_params", False):
        return model.features(X)
    return model.act(mlp_forward(model.act, body, X))  # the body's last layer, activated


def last_layer_prior(prior, n_hidden: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Prior mean m₀ and precision diagonal Λ₀ over θ = [vec W (H·K), b (K)]."""
    means, precs = [], []
    for group, shape in (("weights", (n_hidden, k)), ("biases", (k,))):
        p, size = prior[group], int(np.prod(shape))
        if isinstance(p, Flat):
            means.append(np.zeros(size))
            precs.append(np.zeros(size))
            continue
        if not isinstance(p, Gaussian):
            raise ValueError(f"subset='last_layer' needs a Gaussian or Flat prior on the last "
                             f"layer; the {group} prior is {type(p).__name__}. Use "
                             f"LaplaceApprox() (subset='all') for other priors")
        scale = p.scale[-1] if isinstance(p.scale, list | tuple) else p.scale
        loc = p.loc[-1] if isinstance(p.loc, list | tuple) else p.loc
        loc = np.asarray(loc, np.float64)
        if loc.size not in (1, size):
            raise ValueError(f"the {group} prior's loc for the last layer has {loc.size} "
                             f"values; expected 1 or {size}")
        means.append(np.broadcast_to(loc.ravel() if loc.size == size else loc.reshape(()),
                                     shape).ravel().copy())
        precs.append(np.full(size, 1.0 / float(scale) ** 2))
    return np.concatenate(means), np.concatenate(precs)


def _last_layer_noise(phi, y, m0, prec0) -> float:
    """σ by the last layer's exact evidence (``Exact``'s type-II rule on features φ), nan
    where it is undefined (the last layer interpolates)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return float(conjugate.type2_noise(phi, y, m0, prec0, 1000, 1e-12)[0])
    except ValueError:
        return math.nan
