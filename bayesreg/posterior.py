"""Posterior: what every method returns — parameter draws, diagnostics, and ``predict``.

Draws are a pytree like the model's parameters with a leading axis of S draws
(S = 1 for MAP). Nothing downstream of a Posterior knows which method made it.

Examples
--------
>>> import numpy as np, bayesreg as br
>>> X = np.linspace(0, 1, 15); y = np.sin(6 * X)
>>> post = br.fit(br.Polynomial(3), X, y, method=br.Exact(), likelihood=br.GaussianLikelihood(0.3))
>>> pred = post.predict(np.array([0.5]))
>>> pred.mean.shape, pred.draws.shape
((1,), (1000, 1))
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
from jax.flatten_util import ravel_pytree

from bayesreg._buckets import bucket, pad_rows
from bayesreg._pytree import leaf_names
from bayesreg._validation import check_int, check_X
from bayesreg.predictive import ClassPredictive, Predictive, StreamingPredictive
from bayesreg.priors import Prior

# Per-draw sampler statistics (ArviZ's names) that go to the ``sample_stats`` group.
SAMPLE_STATS = ("diverging", "acceptance_rate", "n_steps", "energy", "lp", "step_size")
# Elements (draws × points × widest layer) one chunk of the predictive may hold at once.
PREDICT_BUDGET = 1 << 24
# Draws (S × N) above which predict streams over chunks of points.
STREAM_ELEMENTS = 1 << 24


# What the draws of methods that do not sample a posterior are (Posterior.to_arviz).
NOT_POSTERIOR_SAMPLES = {
    "Ensemble": "independently trained ensemble members, not posterior samples",
    "MCDropout": "dropout masks of one trained network, not posterior samples",
}


@dataclasses.dataclass(frozen=True)
class GaussianCoefficients:
    """Exact Gaussian posterior N(mean, L Lᵀ) over the flat coefficients [w, b] (float64)."""

    mean: np.ndarray
    chol_cov: np.ndarray

    @property
    def cov(self) -> np.ndarray:
        return self.chol_cov @ self.chol_cov.T


@dataclasses.dataclass(frozen=True)
class Linearization:
    """A Gaussian posterior over a network's weights, used through the linearised network

        f(x; φ) ≈ f(x; φ*) + J(x)(φ − φ*),   J(x) = ∂f(x; φ)/∂φ at the mode φ*,

    so that f(x) ~ N(f(x; φ*), J Σ Jᵀ) with Σ = L Lᵀ over ``ravel_pytree(mode)``. This is
    the predictive that matches the GGN Laplace approximation (sampling weights and pushing
    them through the nonlinear network overstates the spread along flat directions).
    """

    mode: Any
    chol_cov: np.ndarray


@dataclasses.dataclass(frozen=True, eq=False)
class Posterior:
    """Posterior draws of a fitted model and everything needed to predict with them.

    Attributes
    ----------
    params : pytree
        ``{"weights": [...], "biases": [...]}`` with a leading axis of S draws.
    theta : dict
        Likelihood parameters with a leading axis of S (``{"log_noise": (S,)}`` when the
        noise is learned, ``{}`` otherwise).
    diagnostics : dict
        Method-specific: losses (MAP), noise iterations (Exact), divergences, R-hat, ESS ...
    log_evidence : float
        log p(y) for ``Exact``; ``nan`` where a method has none or the prior is improper.
    gaussian : GaussianCoefficients or None
        The exact posterior of ``Exact``; predictions are then analytic.
    hyper : dict
        Draws (S,) of sampled prior scales, e.g. ``{"weights_scale": ...}``.
    linearization : Linearization or None
        Set by the Laplace approximation of a network: predictions go through the
        network linearised at the mode (mean, std analytic; draws f* + J(φₛ − φ*)).
    """

    model: Any
    likelihood: Any
    prior: dict[str, Prior]
    method: str
    params: Any
    theta: dict
    X_train: np.ndarray
    y_train: np.ndarray
    diagnostics: dict = dataclasses.field(default_factory=dict)
    log_evidence: float = math.nan
    gaussian: GaussianCoefficients | None = None
    num_chains: int = 1
    config: dict = dataclasses.field(default_factory=dict)
    hyper: dict = dataclasses.field(default_factory=dict)
    linearization: Linearization | None = None
    dtype: str = "float32"

    @property
    def num_draws(self) -> int:
        return int(jax.tree_util.tree_leaves(self.params)[0].shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    def noise_std(self) -> np.ndarray:
        """Likelihood noise σ of each draw, (S,) (homoscedastic regression only)."""
        if self.likelihood.heteroscedastic:
            raise ValueError("a heteroscedastic noise depends on x: use predict(X).aleatoric_std")
        if self.likelihood.learned_noise:
            return np.exp(np.asarray(self.theta["log_noise"], np.float64))
        return np.full(self.num_draws, float(self.likelihood.noise))

    def predict(self, X, *, chunk_size: int | None = None,
                stream: bool | int | None = None) -> Predictive | ClassPredictive:
        """Predictive distribution of y at the rows of X (a :class:`ClassPredictive` for
        Bernoulli and Categorical likelihoods).

        Draws are pushed through the model ``chunk_size`` at a time (``lax.map``), so at
        most chunk_size × N × (widest layer) activations exist at once; by default the
        chunk is chosen to keep that below 2²⁴ numbers (64 MiB in float32).

        When the draws themselves would be large — S × N above ``STREAM_ELEMENTS`` (2²⁴,
        64 MiB in float32) — or with ``stream=True``, a :class:`StreamingPredictive` is
        returned instead: the same summaries, computed over chunks of 2²⁴/S points, so about
        2²⁴ draws exist at a time whatever N is. An integer ``stream`` sets the points per
        chunk.
        """
        if self.dtype == "float64" and not jax.config.jax_enable_x64:
            with jax.enable_x64(True):
                return self.predict(X, chunk_size=chunk_size, stream=stream)
        X = check_X(X, "X", self.n_features)
        if self.dtype == "float64":
            X = X.astype(np.float64)
        if self.likelihood.kind != "regression":
            out = predictive_outputs(self.model, self.params, X, chunk_size)
            return ClassPredictive(np.asarray(self.likelihood.probs(jnp.asarray(out))))
        point = self.config.get("reduce", "mean")
        if stream is None:
            stream = self.num_draws * X.shape[0] > STREAM_ELEMENTS
        if stream and self.likelihood.kind == "regression":
            rows = (check_int("stream", stream) if not isinstance(stream, bool)
                    else max(1, STREAM_ELEMENTS // self.num_draws))

            def source(sl):
                return self.predict(X[sl], chunk_size=chunk_size, stream=False)

            return StreamingPredictive(source, X.shape[0], self.num_draws, min(rows, len(X)))
        if self.likelihood.heteroscedastic and self.linearization is not None:
            # the GLM predictive of the mean output; the noise σ(x) of the network at the mode
            mean, var_f, f_draws = linearized_predictive(
                self.model, self.linearization, self.params, X)
            mode = jax.tree_util.tree_map(lambda a: np.asarray(a)[None], self.linearization.mode)
            sigma = np.exp(predictive_outputs(self.model, mode, X, chunk_size)[0, :, 1])
            return Predictive(f_draws, sigma[None], analytic=(mean, var_f))
        if self.likelihood.heteroscedastic:
            out = predictive_outputs(self.model, self.params, X, chunk_size)
            return Predictive(out[..., 0], np.exp(out[..., 1]), point=point)
        noise = self.noise_std()[:, None]
        if self.gaussian is not None:
            from bayesreg.inference.exact import design_matrix

            phi = design_matrix(self.model, pad_rows(X))[: X.shape[0]]
            mean = phi @ self.gaussian.mean
            var_f = np.sum((phi @ self.gaussian.chol_cov) ** 2, axis=1)
            f_draws = predictive_draws(self.model, self.params, X, chunk_size)
            return Predictive(f_draws, noise, analytic=(mean, var_f))
        if self.linearization is not None:
            mean, var_f, f_draws = linearized_predictive(
                self.model, self.linearization, self.params, X)
            return Predictive(f_draws, noise, analytic=(mean, var_f))
        return Predictive(predictive_draws(self.model, self.params, X, chunk_size), noise,
                          point=point)

    def log_likelihood(self) -> np.ndarray:
        """log p(yᵢ | draw s) on the training data, (S, N) — for LOO / WAIC."""
        return np.asarray(_pointwise_loglik(self.model, self.likelihood, self.params,
                                            self.theta, jnp.asarray(self.X_train),
                                            jnp.asarray(self.y_train)))

    def to_arviz(self, log_likelihood: bool = True):
        """ArviZ InferenceData with ``posterior``, ``log_likelihood`` (unless
        ``log_likelihood=False``), ``observed_data`` and, where the method has per-draw
        statistics, ``sample_stats``.

        ArviZ reads every draw as a sample from the posterior. Where the draws are not —
        a MAP fit (one point: ``az.loo`` fails, ``az.waic`` reports p_waic = 0), ensemble
        members, MC-dropout masks — a ``UserWarning`` says so, and ``attrs["draws"]`` says
        what the draws are ("posterior samples" otherwise).
        """
        import arviz as az

        if self.num_draws == 1:
            what = "a point estimate (one draw), not posterior samples"
            warnings.warn(
                f"{self.method} is {what}: ArviZ's LOO fails on it (IndexError) and WAIC "
                "reports p_waic = 0. For LOO or WAIC fit br.LaplaceApprox, br.VI or "
                "br.NUTS; to_arviz(log_likelihood=False) leaves the group out",
                UserWarning, stacklevel=2)
        else:
            what = NOT_POSTERIOR_SAMPLES.get(self.method, "posterior samples")
            if self.method in NOT_POSTERIOR_SAMPLES:
                warnings.warn(
                    f"{self.method} draws are {what}: ArviZ reads them as one chain of "
                    "posterior draws, so LOO, WAIC, ESS and R-hat from them are not the "
                    "posterior's", UserWarning, stacklevel=2)
        chains = self.num_chains
        draws = self.num_draws // chains

        def shaped(a):
            a = np.asarray(a)
            return a.reshape(chains, draws, *a.shape[1:])

        names = leaf_names(self.params)
        posterior = {n: shaped(a) for n, a in zip(names, jax.tree_util.tree_leaves(self.params),
                                                  strict=True)}
        if self.likelihood.kind == "regression" and not self.likelihood.heteroscedastic:
            posterior["noise"] = shaped(self.noise_std())
        posterior.update({k: shaped(v) for k, v in self.hyper.items()})
        stats = {k: shaped(self.diagnostics[k]) for k in SAMPLE_STATS if k in self.diagnostics}
        return az.from_dict(
            posterior=posterior,
            log_likelihood={"y": shaped(self.log_likelihood())} if log_likelihood else None,
            observed_data={"y": np.asarray(self.y_train)},
            sample_stats=stats or None,
            attrs={"method": self.method, "inference_library": "bayesreg", "draws": what},
        )

    # -- persistence (plain arrays in .npz, configuration as JSON; no Python objects) --------
    def save(self, path) -> None:
        """Write this posterior to ``path`` (exactly that name) as an ``.npz`` archive,
        atomically (:mod:`bayesreg.persistence`)."""
        from bayesreg import persistence

        persistence.save(self, path)

    def __repr__(self) -> str:
        return (f"Posterior(method={self.method}, model={type(self.model).__name__}, "
                f"draws={self.num_draws}, chains={self.num_chains})")


def _chunk(params, n_points: int, chunk_size: int | None) -> int:
    if chunk_size is not None:
        return check_int("chunk_size", chunk_size)
    widest = max(max(w.shape[-2:]) for w in params["weights"])
    return max(1, PREDICT_BUDGET // max(1, n_points * widest))


def predictive_draws(model, params, X, chunk_size: int | None = None) -> np.ndarray:
    """f(X) under every draw: (S, N), computed ``chunk_size`` draws at a time."""
    return predictive_outputs(model, params, X, chunk_size)[..., 0]


def predictive_outputs(model, params, X, chunk_size: int | None = None) -> np.ndarray:
    """All model outputs under every draw: (S, N, K), ``chunk_size`` draws at a time."""
    n, X = X.shape[0], pad_rows(X)
    size = _chunk(params, X.shape[0], chunk_size)
    out = _apply_draws(model, min(size, _num(params)), params, jnp.asarray(X))
    return np.asarray(out)[:, :n]


def _num(params) -> int:
    return int(jax.tree_util.tree_leaves(params)[0].shape[0])


@partial(jax.jit, static_argnums=(0, 1))
def _apply_draws(model, batch_size, params, X):
    return jax.lax.map(lambda p: model.apply(p, X), params, batch_size=batch_size)


def linearized_predictive(model, lin: Linearization, params, X, rows: int = 2048):
    """(mean (N,), var_f (N,), draws (S, N)) of the network linearised at ``lin.mode``.

    Rows are processed ``rows`` at a time, so the Jacobian held at once is rows × P.
    """
    mode = jax.tree_util.tree_map(jnp.asarray, lin.mode)
    deltas = _deltas(mode, params)  # (S, P)
    chol = jnp.asarray(lin.chol_cov, deltas.dtype)
    size = min(rows, bucket(X.shape[0]))
    out = []
    for start in range(0, X.shape[0], size):
        chunk = X[start:start + size]
        pad = size - chunk.shape[0]
        padded = np.pad(chunk, ((0, pad), (0, 0)), mode="edge")
        res = _linearized_chunk(model, mode, chol, deltas, jnp.asarray(padded))
        out.append([np.asarray(r)[..., : size - pad] for r in res])
    mean, var_f, draws = (np.concatenate(parts, axis=-1) for parts in zip(*out, strict=True))
    return mean, var_f, draws


@jax.jit
def _deltas(mode, params):
    mode_flat = ravel_pytree(mode)[0]
    return jax.vmap(lambda p: ravel_pytree(p)[0])(params) - mode_flat


@partial(jax.jit, static_argnums=(0,))
def _linearized_chunk(model, mode, chol, deltas, X):
    mode_flat, unravel = ravel_pytree(mode)

    def f(v):
        return model.apply(unravel(v), X)[:, 0]

    mean, jvp_rows = f(mode_flat), jax.jacfwd(f)(mode_flat)  # (N,), (N, P)
    JL = jvp_rows @ chol
    return mean, jnp.sum(JL**2, axis=1), mean + deltas @ jvp_rows.T


@partial(jax.jit, static_argnums=(0,))
def _pointwise_loglik(model, likelihood, params, theta, X, y):
    def one(p, t):
        return likelihood.log_prob(y, model.apply(p, X), t)

    return jax.lax.map(lambda pt: one(*pt), (params, theta), batch_size=64)
