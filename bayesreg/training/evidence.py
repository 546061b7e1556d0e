r"""Hyperparameters by the evidence: the noise σ and layer-wise prior scales learned during
training from the Laplace–GGN marginal likelihood (MacKay 1992; Immer et al. 2021).

Why not the joint mode. Minimising the negative log joint over the weights φ *and* σ sends
σ̂² → RSS/N → 0 as a network interpolates, and the effective ridge strength λ = σ²/s² with
it: the prior stops regularizing exactly where it is needed and the noise is under-counted.
The evidence p(y | σ, s) integrates the weights out instead, so it charges for the fit's
effective number of parameters γ.

At the current weights φ (a mode under the current hyperparameters), with β = 1/σ²,
G = Σᵢ Jᵢᵀ Jᵢ (Jᵢ = ∂f(xᵢ)/∂φ, the Gauss–Newton matrix of the squared loss) and a Gaussian
prior of precision αₗ = 1/sₗ² on parameter array l (Pₗ scalars),

    log p(y) ≈ −β RSS/2 + (N/2) log β − Σₗ αₗ‖φₗ‖²/2 + Σₗ (Pₗ/2) log αₗ − ½ log|H| + const,
    H = βG + diag(α).

Setting its derivatives to zero gives MacKay's fixed point, iterated here:

    γ = tr(βG H⁻¹),   γₗ = Pₗ − αₗ trₗ(H⁻¹),   αₗ ← γₗ / ‖φₗ‖²,   σ² ← RSS / (N − γ).

The training engine (:mod:`bayesreg.training.loop`) trains φ for a burn-in round, then
alternates one call of :meth:`EvidenceHook.update` with a round of updates of φ at fixed
(σ, s) — the
schedule of laplace-torch's ``marglik_training`` with fixed-point steps in place of its
gradient steps on the hyperparameters (they share the stationary point; the fixed point
gets there in a handful of iterations instead of hundreds).

What is learned is what the user left out: σ when ``GaussianLikelihood(noise=None)``, the
layer-wise scales when ``prior`` is omitted. A user's prior is used as given (its curvature
enters H; only σ moves): a Gaussian's exactly, and for Laplace, Student-t and Cauchy priors that
of the Gaussian majoriser touching −log p at the current weights (:func:`prior_precision`).

Curvature at every size. Up to ``DENSE_MAX`` parameters H is the dense P × P matrix. Above,
the same H is handled through its m × m dual (Woodbury, m rows of the Jacobian J):
H⁻¹ = D⁻¹ − D⁻¹Jᵀ(σ²I + JD⁻¹Jᵀ)⁻¹JD⁻¹, which gives γ and every layer's γₗ exactly with
γ ≤ m ≤ N by construction — the diagonal GGN this replaced ignored the correlations between
weights, its γ overshot N (435 for N = 50) and σ² = RSS / max(N − γ, 1) became RSS. The rows
are subsampled (and G scaled by N/m) to keep the three m × P arrays within ``DUAL_BUDGET``
scalars. laplace-torch's ``marglik_training`` (Immer et al. 2021) takes the other road: a
Kronecker-factored GGN per layer and gradient steps on the log hyperparameters; KFAC's
log-determinant and traces are approximations whose γ is not bounded by N, whereas the dual is
the exact GGN evidence up to the row subsample. Above ``max_rows`` rows, G is estimated from a
random subset of rows, scaled by N/m (RSS uses every row).

Several tasks. For targets Y (N, T) (one output per task, NaN where a label is missing) every
task t has its own βₜ = 1/σₜ², and G_t is the Gauss–Newton matrix of output t over the rows
where task t is observed, so H = Σₜ βₜGₜ + diag(α), γₜ = tr(βₜGₜH⁻¹) (γ = Σₜ γₜ) and

    σₜ² ← RSSₜ / (Nₜ − γₜ)

with RSSₜ and Nₜ over task t's observed labels. The dual handles the m·T rows of the
stacked Jacobian with σ² per row, M = diag(σ²_row) + J D⁻¹Jᵀ, and
γₜ = Σ_{rows r of task t} (1 − σ_r² (M⁻¹)_rr), since J H⁻¹Jᵀ = Σ − ΣM⁻¹Σ with
Σ = diag(σ²_row).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from bayesreg.curvature import GGN, gram, prior_diag
from bayesreg.likelihoods import GaussianLikelihood
from bayesreg.priors import PARAM_GROUPS, Flat, Gaussian, log_prior
from bayesreg.training import convergence

DENSE_MAX = 3000  # parameters up to which the GGN is dense (a P × P Cholesky per iteration)
ALPHA_RANGE = (1e-8, 1e8)  # prior precisions are kept inside this range
NOISE_FLOOR = 1e-4  # σ is kept at least this fraction of std(y) (noiseless data: warn)
# above DENSE_MAX parameters, the Jacobian of at most DUAL_BUDGET / P rows (never fewer than
# MIN_DUAL_ROWS) enters the m × m dual: three m × P arrays of 2²³ scalars, 32 MiB each in float32
DUAL_BUDGET = 2**23
MIN_DUAL_ROWS = 128
# with the Newton decrement asked for (a linear model's fit), every row enters G while the
# Jacobian takes at most this many scalars (128 MiB in float32): a step from a subsample's G
# does not land on the mode (20 000 rows of a linear model: λ² = 2 460 after it, not 1e-7)
NEWTON_BUDGET = 2**25


class Evidence(NamedTuple):
    """What an evidence update measured at the incoming weights and hyperparameters: the
    effective number of parameters γ (NaN when the update was refused), the Newton
    decrement λ² and the Gauss–Newton step H⁻¹g (:mod:`bayesreg.training.convergence`)."""

    gamma: jax.Array
    decrement: jax.Array
    step: jax.Array


@dataclasses.dataclass(frozen=True)
class EvidenceHook:
    """The hyperparameter update run by the training engine between blocks of updates.

    Parameters
    ----------
    learn_noise : bool
        Learn σ (the likelihood is a ``GaussianLikelihood(noise=None)``).
    learn_prior : bool
        Learn one Gaussian prior scale per parameter array (``prior`` was omitted).
    rounds : int
        The training units (updates, or epochs with mini-batches) are split into this many
        rounds; the hyperparameters are updated before every round but the first.
    iterations : int
        Fixed-point iterations per update.
    max_rows : int
        Rows used for the Gauss–Newton matrix (a random subset above it).
    """

    learn_noise: bool
    learn_prior: bool
    rounds: int
    iterations: int = 1
    max_rows: int = 2048

    # -- the hyperparameter state (a pytree carried by the training loop) -----------------
    def init(self, params, y_std: float, dtype) -> dict:
        """h₀: log σ = log std(y) (a model that explains nothing); every prior scale 1."""
        h = {}
        if self.learn_noise:
            h["log_noise"] = jnp.log(y_std).astype(dtype)
        if self.learn_prior:
            h["log_scale"] = {g: [jnp.zeros((), dtype) for _ in params[g]] for g in PARAM_GROUPS}
        return h

    def bind(self, h: dict, likelihood, prior):
        """(likelihood, prior) at hyperparameters ``h``: σ fixed at exp(h["log_noise"]), a
        layer-wise Gaussian prior at exp(h["log_scale"])."""
        if self.learn_noise:
            likelihood = fixed_noise(jnp.exp(h["log_noise"]))
        if self.learn_prior:
            prior = layerwise_prior(h["log_scale"])
        return likelihood, prior

    # -- one evidence step ---------------------------------------------------------------
    def update(self, h: dict, model, likelihood, prior, params, X, y, key, y_std,
               mask=None, totals=None, newton: bool = False) -> tuple[dict, Evidence]:
        """MacKay's fixed point at the weights ``params`` (module docstring). ``mask`` (N,)
        marks the real rows of padded data (1) and the padding (0). ``totals`` = (RSS, N)
        over all rows when the data are streamed (:mod:`bayesreg.data.stream`): X, y are then
        already the random rows for G, scaled by N/m.

        Returns (h, :class:`Evidence`): the updated hyperparameters, and γ (NaN for a
        refused update) with, when ``newton``, the Newton decrement and step of ``params``
        under the incoming h (:mod:`bayesreg.training.convergence`; NaN otherwise, and on a
        stream, whose full gradient is not at hand)."""
        rows_total = X.shape[0]
        mask = jnp.ones(rows_total, X.dtype) if mask is None else mask
        n = jnp.sum(mask)
        flat, unravel = ravel_pytree(params)
        dtype = flat.dtype
        tasks = y.shape[1] if y.ndim == 2 else 0  # T tasks (static), 0: one target
        every_row = newton and rows_total * flat.size <= NEWTON_BUDGET  # G for the step
        if totals is not None:
            rss, n = totals
            Xs, ms, weight, ys = X, mask, n / rows_total, y
        elif rows_total > self.max_rows and not every_row:
            rows = jax.random.choice(key, rows_total, (self.max_rows,), replace=False,
                                     p=mask / n)
            Xs, ms, weight, ys = X[rows], mask[rows], n / self.max_rows, y[rows]
        else:
            Xs, ms, weight, ys = X, mask, 1.0, y

        if tasks:  # every output, each row of a task zeroed where its label is missing
            ggn = GGN(lambda v, rows: model.apply(unravel(v), rows)[:, :tasks], Xs)
            seen_s = ms[:, None] * (~jnp.isnan(ys)).astype(dtype)
            J = ggn.jacobian(flat) * seen_s[:, :, None]  # (m, T, P)
            seen = mask[:, None] * (~jnp.isnan(y)).astype(dtype)
            resid = jnp.where(seen > 0, y - model.apply(params, X)[:, :tasks], 0.0)
            rss, n = jnp.sum(resid**2, axis=0), jnp.sum(seen, axis=0)  # (T,) each
            grad = _gradient_at(model, unravel, flat, X, y, seen, tasks, totals, newton)
            return self._update_tasks(h, likelihood, prior, unravel, flat, J, weight, rss,
                                      n, y_std, key, params, grad)
        # the GGN with Λₙ = 1 (β multiplies it below): of the first output, padded rows zeroed
        ggn = GGN(lambda v, rows: model.apply(unravel(v), rows)[:, :1], Xs)
        J = ggn.jacobian(flat)[:, 0] * ms[:, None]  # (m, P)
        if totals is None:
            resid = y - model.apply(params, X)[:, 0]
            rss = jnp.sum(mask * resid**2)
        sizes = [int(np.size(a)) for g in PARAM_GROUPS for a in params[g]]
        seg = _segments(params)
        # the cheaper exact form: dense costs ~P³ + 2P²m, the dual ~2m²P + m³/3 (m rows)
        dense = flat.size <= min(DENSE_MAX, J.shape[0])
        if dense:
            G = weight * gram(J)
        else:  # the m × m dual of H: only as many rows as fit the memory budget
            m = min(J.shape[0], max(MIN_DUAL_ROWS, DUAL_BUDGET // flat.size))
            if m < J.shape[0] and not every_row:
                rows = jax.random.choice(jax.random.fold_in(key, 1), J.shape[0], (m,),
                                         replace=False, p=ms / jnp.sum(ms))
                J, weight = J[rows], weight * jnp.sum(ms) / m
            Jw = jnp.sqrt(weight) * J  # G = JwᵀJw
        def segment(values):  # per parameter array
            return jax.ops.segment_sum(values, seg, num_segments=len(sizes))

        sq = segment(flat**2)
        p_l = jnp.asarray(sizes, dtype)
        grad = _gradient_at(model, unravel, flat, X, y, mask, 0, totals, newton)

        def step(h, _):
            lik, pri = self.bind(h, likelihood, prior)
            beta = 1.0 / jnp.square(lik.noise_std({}))
            d = prior_precision(pri, unravel, flat)
            g = grad(beta, pri)
            if dense:
                # In float32 this fails (NaN) once a layer's α falls near 1e-8 where G has no
                # curvature against βG ~ 1e5 elsewhere: the update is then refused (below).
                # Not done instead: a jitter on the diagonal, even eps·max diag(H), changes
                # γ where α sits at its clip (an interpolating MLP(100)'s σ went from 0.32 to
                # 0.84), and a jittered second factorisation in a lax.cond deadlocked the
                # vmapped ensemble's compiled loop on the CPU
                chol = jnp.linalg.cholesky(beta * G + jnp.diag(d))
                # H⁻¹ = L⁻ᵀL⁻¹: diag(H⁻¹) = column sums of (L⁻¹)², tr(G H⁻¹) = ‖L⁻¹Jᵀ‖²
                # (no full inverse: one triangular inverse and one product)
                Linv = jax.scipy.linalg.solve_triangular(
                    chol, jnp.eye(flat.size, dtype=dtype), lower=True)
                hinv_diag = jnp.sum(Linv**2, axis=0)
                gamma = beta * weight * jnp.sum((Linv @ J.T) ** 2)
                gamma_l = p_l - segment(d * hinv_diag)
                dec = _newton(g, chol, flat)
            else:
                # Woodbury: H⁻¹ = D⁻¹ − D⁻¹Jᵀ M⁻¹ J D⁻¹ with M = σ²I + J D⁻¹Jᵀ (m × m), so
                # with Z = L⁻¹ J D⁻¹ (M = LLᵀ) the share of scalar i not explained by its
                # prior is dᵢ (D⁻¹ − H⁻¹)ᵢᵢ = dᵢ Σₖ Zₖᵢ²; γ is their sum, at most m ≤ N
                A = Jw / d
                chol = jnp.linalg.cholesky(jnp.eye(Jw.shape[0], dtype=dtype) / beta + A @ Jw.T)
                Z = jax.scipy.linalg.solve_triangular(chol, A, lower=True)
                explained = d * jnp.sum(Z**2, axis=0)
                gamma = jnp.sum(explained)
                gamma_l = segment(explained)
                dec = _newton(g, chol, flat, dual=(Jw, d))

            new, finite = self._fixed_point(h, gamma_l, gamma, rss, n, p_l, sq, y_std)
            return new, (jnp.where(finite, gamma, jnp.nan), dec)

        h, (gammas, (decs, steps)) = jax.lax.scan(step, h, None, length=self.iterations)
        return h, Evidence(gammas[-1], decs[0], steps[0])

    def _update_tasks(self, h, likelihood, prior, unravel, flat, J, weight, rss, n, y_std,
                      key, params, grad):
        """MacKay's fixed point for T tasks (module docstring): J (m, T, P) with the rows of
        missing labels zeroed, RSSₜ and Nₜ (T,) over the observed labels."""
        dtype = flat.dtype
        m, tasks, size = J.shape
        sizes = [int(np.size(a)) for g in PARAM_GROUPS for a in params[g]]
        seg = _segments(params)
        dense = size <= DENSE_MAX
        if dense:
            G = weight * jnp.einsum("mtp,mtq->tpq", J, J)  # Gₜ, (T, P, P)
        else:
            rows = min(m, max(MIN_DUAL_ROWS, DUAL_BUDGET // (size * tasks)))
            if rows < m:
                live = jnp.any(J != 0, axis=(1, 2)).astype(dtype)
                pick = jax.random.choice(jax.random.fold_in(key, 1), m, (rows,),
                                         replace=False, p=live / jnp.sum(live))
                J, weight = J[pick], weight * jnp.sum(live) / rows
            Jw = (jnp.sqrt(weight) * J).reshape(-1, size)  # rows in (m, T) order

        def segment(values):
            return jax.ops.segment_sum(values, seg, num_segments=len(sizes))

        sq = segment(flat**2)
        p_l = jnp.asarray(sizes, dtype)

        def step(h, _):
            lik, pri = self.bind(h, likelihood, prior)
            beta = jnp.broadcast_to(1.0 / jnp.square(lik.noise_std({})), (tasks,))
            d = prior_precision(pri, unravel, flat)
            g = grad(beta, pri)
            if dense:
                chol = jnp.linalg.cholesky(jnp.einsum("t,tpq->pq", beta, G) + jnp.diag(d))
                Linv = jax.scipy.linalg.solve_triangular(
                    chol, jnp.eye(size, dtype=dtype), lower=True)
                hinv_diag = jnp.sum(Linv**2, axis=0)
                LJ = jnp.einsum("pq,mtq->mtp", Linv, J)
                gamma_t = beta * weight * jnp.sum(LJ**2, axis=(0, 2))
                gamma_l = p_l - segment(d * hinv_diag)
                dec = _newton(g, chol, flat)
            else:
                var_rows = jnp.tile(1.0 / beta, Jw.shape[0] // tasks)
                A = Jw / d
                chol = jnp.linalg.cholesky(jnp.diag(var_rows) + A @ Jw.T)
                Z = jax.scipy.linalg.solve_triangular(chol, A, lower=True)
                gamma_l = segment(d * jnp.sum(Z**2, axis=0))
                Linv = jax.scipy.linalg.solve_triangular(
                    chol, jnp.eye(Jw.shape[0], dtype=dtype), lower=True)
                # diag(J H⁻¹Jᵀ Σ⁻¹) = 1 − σ_r²(M⁻¹)_rr, summed over each task's rows
                row_gamma = 1.0 - var_rows * jnp.sum(Linv**2, axis=0)
                gamma_t = jnp.sum(row_gamma.reshape(-1, tasks), axis=0)
                dec = _newton(g, chol, flat, dual=(Jw, d))
            new, finite = self._fixed_point(h, gamma_l, gamma_t, rss, n, p_l, sq, y_std)
            return new, (jnp.where(finite, jnp.sum(gamma_t), jnp.nan), dec)

        h, (gammas, (decs, steps)) = jax.lax.scan(step, h, None, length=self.iterations)
        return h, Evidence(gammas[-1], decs[0], steps[0])

    def _fixed_point(self, h, gamma_l, gamma, rss, n, p_l, sq, y_std):
        """MacKay's step from the traces: αₗ ← γₗ/‖φₗ‖², σ² ← RSS/(N − γ) (per task when
        ``gamma``, ``rss`` and ``n`` are per task). An update that is still not finite is
        refused (the engine counts γ reported as NaN): the hyperparameters stay where they
        were, and the weights do not inherit a NaN. Returns (h, finite)."""
        new = dict(h)
        if self.learn_prior:
            gamma_l = jnp.clip(gamma_l, 1e-6, p_l)
            alpha = jnp.clip(gamma_l / jnp.maximum(sq, 1e-30), *ALPHA_RANGE)
            new["log_scale"] = _unstack(-0.5 * jnp.log(alpha), h["log_scale"])
        if self.learn_noise:
            sigma2 = rss / jnp.maximum(n - gamma, 1.0)
            floor = NOISE_FLOOR * y_std
            new["log_noise"] = 0.5 * jnp.log(jnp.maximum(sigma2, floor**2))
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(v))
                                    for v in jax.tree_util.tree_leaves(new)] or [True]))
        return jax.tree_util.tree_map(lambda a, b: jnp.where(finite, a, b), new, h), finite


def _gradient_at(model, unravel, flat, X, y, seen, tasks: int, totals, wanted: bool):
    """``grad(β, prior)``: the full-data gradient of the negative log joint at ``flat``
    (:func:`bayesreg.training.convergence.neg_log_joint`); None when not ``wanted`` or on a
    stream (``totals``), where X holds only a sample of the rows."""
    if totals is not None or not wanted:
        return lambda beta, prior: None
    return lambda beta, prior: jax.grad(convergence.neg_log_joint(
        model, unravel, prior, beta, X, y, seen, tasks))(flat)


def _newton(g, chol, flat, dual=None):
    """(λ², step) of :func:`bayesreg.training.convergence.newton`; NaN when the gradient
    ``g`` was not asked for (None)."""
    if g is None:
        return jnp.asarray(jnp.nan, flat.dtype), jnp.full_like(flat, jnp.nan)
    return convergence.newton(g, chol, dual=dual)


def target_scale(y, mask) -> jax.Array:
    """The std of the real rows' targets (``mask`` 1; padding 0), 1 where it is 0: σ's start
    and floor. For Y (N, T) one per task over its observed (non-NaN) labels, (T,).

    Examples
    --------
    >>> Y = jnp.array([[0.0, 1.0], [2.0, jnp.nan], [9.0, 9.0]])
    >>> target_scale(Y, jnp.array([1.0, 1.0, 0.0])).tolist()
    [1.0, 1.0]
    """
    if y.ndim == 2:
        seen = mask[:, None] * (~jnp.isnan(y)).astype(mask.dtype)
        y0 = jnp.where(seen > 0, y, 0.0)
        count = jnp.maximum(jnp.sum(seen, axis=0), 1.0)
        y_mean = jnp.sum(seen * y0, axis=0) / count
        y_sd = jnp.sqrt(jnp.sum(seen * (y0 - y_mean) ** 2, axis=0) / count)
    else:
        y_mean = jnp.sum(mask * y) / jnp.sum(mask)
        y_sd = jnp.sqrt(jnp.sum(mask * (y - y_mean) ** 2) / jnp.sum(mask))
    return jnp.where(y_sd > 0, y_sd, 1.0)


def prior_precision(prior: dict, unravel, flat) -> jax.Array:
    """The prior's curvature dᵢ in H, per scalar (P,): the exact diag ∇²(−log p) for Gaussian
    priors; for the others (Laplace, Student-t, Cauchy) that of the Gaussian majoriser of
    −log p touching it at the current weight, dᵢ = ∂ᵢ(−log p)/φᵢ — 1/(b|φᵢ|) for Laplace(b),
    (ν + 1)/(νs² + φᵢ²) for Student-t — as sparse Bayesian learning's EM does: the exact
    curvature is 0 (Laplace) or negative (Student-t tails) and would leave H singular or
    indefinite. Kept at least ``ALPHA_RANGE[0]``; a Flat prior's is 0.

    Examples
    --------
    >>> import bayesreg as br
    >>> flat = jnp.array([0.5, -2.0])
    >>> prior = {"weights": br.Laplace(0.5), "biases": br.Laplace(0.5)}
    >>> prior_precision(prior, lambda v: {"weights": [v], "biases": []}, flat).tolist()
    [4.0, 1.0]
    """
    def neg_log_prior(v):
        return -log_prior(prior, unravel(v))

    if all(isinstance(p, Gaussian | Flat) for p in prior.values()):
        return prior_diag(neg_log_prior, flat)  # Flat: 0, and no evidence where G is singular
    tiny = jnp.finfo(flat.dtype).tiny ** 0.5
    d = jnp.abs(jax.grad(neg_log_prior)(flat)) / jnp.maximum(jnp.abs(flat), tiny)
    return jnp.maximum(d, ALPHA_RANGE[0])


def fixed_noise(sigma) -> GaussianLikelihood:
    """A ``GaussianLikelihood`` with noise σ (possibly a tracer: no validation)."""
    lik = object.__new__(GaussianLikelihood)
    object.__setattr__(lik, "noise", sigma)
    object.__setattr__(lik, "noise_prior", None)
    return lik


def layerwise_prior(log_scale: dict) -> dict:
    """{"weights": Gaussian([s₁, …]), "biases": Gaussian([…])} from log scales (unchecked)."""
    out = {}
    for g in PARAM_GROUPS:
        prior = object.__new__(Gaussian)
        object.__setattr__(prior, "scale", [jnp.exp(v) for v in log_scale[g]])
        object.__setattr__(prior, "loc", 0.0)
        out[g] = prior
    return out


def concrete_prior(log_scale: dict) -> dict:
    """The learned layer-wise prior as checked ``Gaussian`` objects with float scales."""
    return {g: Gaussian([float(np.exp(v)) for v in log_scale[g]]) for g in PARAM_GROUPS}


def _stack(tree) -> jax.Array:
    return jnp.stack([v for g in PARAM_GROUPS for v in tree[g]])


def _unstack(values, like) -> dict:
    out, i = {}, 0
    for g in PARAM_GROUPS:
        out[g] = [values[i + j] for j in range(len(like[g]))]
        i += len(like[g])
    return out


def _segments(params) -> np.ndarray:
    """For each scalar of ``ravel_pytree(params)``, the index of its array in
    ``[*weights, *biases]`` (the order of the layer-wise scales)."""
    order = {}
    i = 0
    for g in PARAM_GROUPS:
        for j, _ in enumerate(params[g]):
            order[(g, j)] = i
            i += 1
    paths, _ = jax.tree_util.tree_flatten_with_path(params)
    return np.concatenate([np.full(int(np.size(leaf)), order[(p[0].key, p[1].idx)])
                           for p, leaf in paths])
