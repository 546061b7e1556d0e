"""Likelihoods p(y | f(x), θ): the data term of every objective.

A likelihood has its own (possibly empty) parameters θ, kept apart from the model's so that
the prior never touches them: ``GaussianLikelihood(noise=None)`` learns ``log_noise``.

Examples
--------
>>> import jax.numpy as jnp, bayesreg as br
>>> lik = br.GaussianLikelihood(noise=1.0)
>>> float(lik.log_prob(jnp.array([0.0]), jnp.array([[0.0]]), {})[0])   # −½ log 2π
-0.9189385175704956
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bayesreg._pytree import check_positive, pytree_dataclass
from bayesreg._validation import Setting, check_settings
from bayesreg.predictive import ClassPredictive, MultiTaskPredictive, Predictive

HETEROSCEDASTIC = "heteroscedastic"
# Rows of y handled at once by target_std: np.std(y) holds temporaries the size of y.
STD_BLOCK = 1 << 20


def target_std(y) -> float:
    """std(y) (population, float64), over blocks of ``STD_BLOCK`` rows: with millions of
    rows ``np.std`` would hold two float64 temporaries the size of y at once. For targets
    Y (N, T) of T tasks, the std of each task's observed (non-NaN) labels, (T,)."""
    if np.ndim(y) == 2:
        return task_std(y)
    y = np.asarray(y)
    n = y.shape[0]
    if n <= STD_BLOCK:
        return float(np.std(y))
    mean = sum(float(np.sum(y[i:i + STD_BLOCK], dtype=np.float64))
               for i in range(0, n, STD_BLOCK)) / n
    sq = sum(float(np.sum(np.square(y[i:i + STD_BLOCK] - mean, dtype=np.float64)))
             for i in range(0, n, STD_BLOCK))
    return float(np.sqrt(sq / n))


def task_std(Y) -> np.ndarray:
    """The population std of each column's observed labels (NaN marks a missing one), (T,)
    in float64; 1 for a task with fewer than two labels or constant labels.

    Examples
    --------
    >>> task_std(np.array([[0.0, 1.0], [2.0, np.nan], [4.0, 1.0]])).tolist()
    [1.632993161855452, 1.0]
    """
    Y = np.asarray(Y, np.float64)
    seen = ~np.isnan(Y)
    count = np.maximum(seen.sum(axis=0), 1)
    mean = np.where(seen, Y, 0.0).sum(axis=0) / count
    sd = np.sqrt(np.where(seen, (Y - mean) ** 2, 0.0).sum(axis=0) / count)
    return np.where(sd > 0, sd, 1.0)


def is_multitask(y) -> bool:
    """True for targets of several tasks, Y (N, T) with T >= 2 (a single task is (N,))."""
    return np.ndim(y) == 2 and np.shape(y)[1] >= 2


def _noise_value(name, value):
    """A given σ (or σ prior scale): a float, or a tuple of one float per task."""
    if value is None:
        return None
    check_positive(name, value)
    if np.ndim(value) == 0:
        return value
    arr = np.asarray(value, np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a number or one number per task (T,); got shape "
                         f"{arr.shape}")
    return tuple(float(v) for v in arr)


@dataclasses.dataclass(frozen=True)
class GaussianLikelihood:
    """y ~ N(f(x), σ²).  ``noise=σ`` fixes σ; ``noise=None`` learns it.

    Several tasks. For targets Y (N, T) the model has T outputs (one head per task) and
    each task t its own σₜ: learned per task with ``noise=None``, or given as one number
    (every task) or T numbers. A missing label (NaN inside the fit: ``br.fit`` turns the
    masked entries of a ``np.ma.masked_array`` into it) contributes nothing to the
    likelihood, log p(Y | f) = Σᵢ Σₜ observedᵢₜ log N(Yᵢₜ | fₜ(xᵢ), σₜ²).

    A noise that depends on x is its own likelihood, :class:`HeteroscedasticGaussian`
    (``GaussianLikelihood(noise="heteroscedastic")``, the spelling of earlier versions,
    builds one).

    A learned σ is a point estimate under MAP (and per ensemble member), and is chosen by
    maximising the evidence under :class:`bayesreg.Exact` (type-II maximum likelihood).
    NUTS, VI and the Laplace approximation treat it as unknown with the weakly informative
    prior σ ~ HalfNormal(``noise_prior``); ``noise_prior=None`` takes the standard
    deviation of the training targets (the noise of a model that explains nothing) as
    that scale. σ is parametrised as log σ so that optimisers and samplers work on an
    unconstrained number (the log-Jacobian is part of the density they see).

    Examples
    --------
    >>> import bayesreg as br
    >>> br.GaussianLikelihood().learned_noise, br.GaussianLikelihood(0.3).learned_noise
    (True, False)
    """

    noise: Any = None
    noise_prior: Any = None

    def __new__(cls, noise=None, noise_prior=None):
        if cls is GaussianLikelihood and isinstance(noise, str) and noise == HETEROSCEDASTIC:
            return HeteroscedasticGaussian()
        return super().__new__(cls)

    def __post_init__(self):
        if isinstance(self.noise, str):
            raise ValueError(f"noise must be None or a positive number (or "
                             f"'{HETEROSCEDASTIC}' for br.HeteroscedasticGaussian()); got "
                             f"{self.noise!r}")
        object.__setattr__(self, "noise", _noise_value("noise", self.noise))
        object.__setattr__(self, "noise_prior", _noise_value("noise_prior", self.noise_prior))

    kind = "regression"

    @property
    def learned_noise(self) -> bool:
        """One σ for all points, estimated from the data."""
        return self.noise is None

    heteroscedastic = False

    def n_outputs(self, y) -> int:
        """1, or T for targets Y (N, T) of T >= 2 tasks."""
        if is_multitask(y):
            tasks = np.shape(y)[1]
            if np.ndim(self.noise) == 1 and len(self.noise) != tasks:
                raise ValueError(f"noise has {len(self.noise)} values but Y has {tasks} "
                                 f"tasks; give one σ or {tasks}")
            return tasks
        return 1

    def init_params(self, y) -> dict:
        """θ₀: log σ starts at log std(y), the noise of a model that explains nothing (one
        per task for Y (N, T))."""
        if not self.learned_noise:
            return {}
        dtype = jnp.asarray(0.0).dtype
        if is_multitask(y):
            return {"log_noise": jnp.asarray(np.log(task_std(y)), dtype)}
        sd = target_std(y) or 1.0
        return {"log_noise": jnp.asarray(math.log(sd), dtype)}

    def resolved(self, y) -> GaussianLikelihood:
        """With ``noise_prior`` set from the targets when it was left at None (per task for
        Y (N, T))."""
        if not self.learned_noise or self.noise_prior is not None:
            return self
        scale = (tuple(task_std(y).tolist()) if is_multitask(y) else target_std(y) or 1.0)
        return dataclasses.replace(self, noise_prior=scale)

    def rescaled(self, factor: float) -> GaussianLikelihood:
        """This likelihood for the targets times ``factor``: a given σ and the scale of σ's
        prior times ``factor``.

        Examples
        --------
        >>> import bayesreg as br
        >>> br.GaussianLikelihood(0.5, noise_prior=2.0).rescaled(10.0)
        GaussianLikelihood(noise=5.0, noise_prior=20.0)
        """
        def times(v):
            if v is None:
                return None
            return tuple(float(a) * factor for a in v) if np.ndim(v) == 1 else float(v) * factor

        return dataclasses.replace(self, noise=times(self.noise),
                                   noise_prior=times(self.noise_prior))

    def rescaled_theta(self, theta: dict, factor: float) -> dict:
        """θ for the targets times ``factor``: log σ + log ``factor``."""
        if not self.learned_noise or "log_noise" not in theta:
            return theta
        log_s = np.asarray(theta["log_noise"])
        return {**theta, "log_noise": log_s + np.asarray(math.log(factor), log_s.dtype)}

    def log_noise_prior(self, theta) -> jax.Array:
        """log p(log σ) = log HalfNormal(σ; noise_prior) + log σ (0 for a fixed noise),
        summed over the tasks' σₜ."""
        if not self.learned_noise:
            return jnp.zeros(())
        log_s, scale = theta["log_noise"], jnp.asarray(self.noise_prior)
        return jnp.sum(-0.5 * (jnp.exp(log_s) / scale) ** 2 - jnp.log(scale)
                       + 0.5 * math.log(2 / math.pi) + log_s)

    def noise_std(self, theta, out=None) -> jax.Array:
        """σ under likelihood parameters θ (a scalar, or (T,) for T tasks)."""
        del out
        return jnp.exp(theta["log_noise"]) if self.learned_noise else jnp.asarray(self.noise)

    def noise_draws(self, theta, num_draws: int) -> np.ndarray:
        """σ of each of ``num_draws`` draws, (S,) in float64 ((S, T) for T tasks)."""
        if self.learned_noise:
            return np.exp(np.asarray(theta["log_noise"], np.float64))
        if np.ndim(self.noise) == 1:
            return np.tile(np.asarray(self.noise, np.float64), (num_draws, 1))
        return np.full(num_draws, float(self.noise))

    def predictive(self, draws, theta, *, point: str = "mean"):
        """The predictive of y from :class:`~bayesreg.approximation.FunctionDraws` ``draws``
        (outputs (S, N, K)) and likelihood parameters ``theta`` (leading axis S): the
        mixture (1/S) Σₛ N(fₛ(x), σₛ²(x)), Gaussian where ``draws.moments`` are exact."""

        out = np.asarray(draws.outputs)
        noise = self.noise_draws(theta, out.shape[0])
        if out.shape[-1] > 1:  # T tasks: one predictive per task
            noise = np.broadcast_to(noise.reshape(noise.shape[0], -1), (out.shape[0],
                                                                        out.shape[-1]))
            moments = draws.moments
            return MultiTaskPredictive([Predictive(
                out[..., t], noise[:, t:t + 1], point=point,
                analytic=None if moments is None else (moments[0][..., t], moments[1][..., t]))
                for t in range(out.shape[-1])])
        return Predictive(out[..., 0], noise[:, None], analytic=draws.moments, point=point)

    def log_prob(self, y, out, theta) -> jax.Array:
        """log N(yᵢ | f(xᵢ), σ²) for each row; ``out`` has shape (N, 1). For Y (N, T) the sum
        over each row's observed tasks (a NaN label counts 0), out (N, T)."""
        sigma = self.noise_std(theta, out)
        if y.ndim == 2:
            seen = ~jnp.isnan(y)
            # NaN replaced before the arithmetic, not after: a NaN in the forward pass
            # would reach the gradient through the masked branch of jnp.where
            z = (jnp.where(seen, y, 0.0) - out) * (1.0 / sigma)
            ll = -0.5 * z**2 - jnp.log(sigma) - 0.5 * math.log(2 * math.pi)
            return jnp.sum(jnp.where(seen, ll, 0.0), axis=-1)
        # a product with 1/σ, not a division by σ: fewer kernels per training step when σ
        # is traced (see the Gaussian prior's _logpdf)
        z = (y - out[:, 0]) * (1.0 / sigma)
        return -0.5 * z**2 - jnp.log(sigma) - 0.5 * math.log(2 * math.pi)

    def check_targets(self, y: np.ndarray) -> np.ndarray:
        return y.astype(np.float32) if y.dtype != np.float64 else y

    def to_dict(self):
        def plain(v):
            return None if v is None else (list(v) if np.ndim(v) == 1 else float(v))

        return {"type": "GaussianLikelihood", "noise": plain(self.noise),
                "noise_prior": plain(self.noise_prior)}


jax.tree_util.register_pytree_node(
    GaussianLikelihood, lambda g: ((g.noise, g.noise_prior), None),
    lambda _, c: _build(GaussianLikelihood, noise=c[0], noise_prior=c[1]))


def _build(cls, **fields):
    obj = object.__new__(cls)
    for name, value in fields.items():
        object.__setattr__(obj, name, value)
    return obj


class _NoParameters:
    """A likelihood with no parameters θ of its own (nothing to learn, no prior on them)."""

    def init_params(self, y) -> dict:
        del y
        return {}

    def resolved(self, y):
        del y
        return self

    def log_noise_prior(self, theta) -> jax.Array:
        del theta
        return jnp.zeros(())


class _Classifier(_NoParameters):
    """A likelihood over class labels: no noise σ, a predictive of class probabilities."""

    kind = "classification"
    learned_noise = False

    def noise_draws(self, theta, num_draws: int) -> None:
        """None: a classifier has no noise σ."""
        del theta, num_draws

    def predictive(self, draws, theta, *, point: str = "mean"):
        """Class probabilities averaged over the draws of the logits (``draws.outputs``)."""

        del theta, point
        return ClassPredictive(np.asarray(self.probs(jnp.asarray(draws.outputs))))


@pytree_dataclass(())
@dataclasses.dataclass(frozen=True)
class HeteroscedasticGaussian(_NoParameters):
    """y ~ N(f(x), σ(x)²): the noise depends on x.

    The model has two outputs, the mean f(x) and log σ(x), so the noise is part of the
    network and is handled by every method that handles the network (MAP, ensembles, MC
    dropout, NUTS, VI, Laplace); the predictive's aleatoric part is then the mean over
    draws of σₛ(x)² and the epistemic part the variance of fₛ(x). There is no σ to learn
    apart from the network, so neither the evidence nor a validation split sets one; the
    prior scales stay as given (``Gaussian(1.0)`` when omitted).

    The likelihood is unbounded: a network that fits a training row exactly can send σ(x)
    there to 0 and the log likelihood to +∞, so training to the mode shrinks σ(x) on the
    training rows far below the noise of new ones (Boston, MAP with 3000 updates: 95%
    coverage 0.50 on test rows). A network trained through :class:`bayesreg.MAP` (MAP,
    ensemble members, MC dropout, LaplaceApprox) therefore holds out 10% of the rows by default
    (``MAP(validation=...)`` overrides it) and keeps the weights with the best held-out log
    likelihood.

    Examples
    --------
    >>> import jax.numpy as jnp, bayesreg as br
    >>> lik = br.HeteroscedasticGaussian()
    >>> lik.n_outputs(None), round(float(lik.log_prob(jnp.zeros(1), jnp.zeros((1, 2)), {})[0]), 4)
    (2, -0.9189)
    """

    kind = "regression"
    learned_noise = False
    heteroscedastic = True
    noise = HETEROSCEDASTIC  # the spelling of earlier versions, for code that reads it

    def n_outputs(self, y) -> int:
        del y
        return 2


    def noise_std(self, theta, out) -> jax.Array:
        """σ(x) = exp(out[..., 1])."""
        del theta
        return jnp.exp(out[..., 1])

    def output_curvature(self, y, out, theta) -> jax.Array:
        r"""Λ (N, 2, 2): the Fisher information of each row in its outputs (f, s = log σ),
        diag(e^{−2s}, 2), the curvature the GGN uses (:mod:`bayesreg.curvature`).

        The Hessian of −log N(y; f, e^{2s}) in (f, s) is [[e^{−2s}, −2r e^{−2s}],
        [−2r e^{−2s}, 2r² e^{−2s}]] with r = y − f: its determinant −2r² e^{−4s} is negative
        at every row the mean misses, so a GGN built on it is indefinite (the Laplace
        approximation of an MLP(50) failed with smallest eigenvalue −161). Its expectation
        over y ~ N(f, e^{2s}) (r → 0, r² → e^{2s}) is the Fisher, positive definite.

        Examples
        --------
        >>> import jax.numpy as jnp, bayesreg as br
        >>> lam = br.HeteroscedasticGaussian().output_curvature(
        ...     jnp.zeros(1), jnp.array([[0.0, jnp.log(0.5)]]), {})
        >>> lam[0].tolist()  # 1/σ² = 4 for f, 2 for log σ
        [[4.0, 0.0], [0.0, 2.0]]
        """
        del y, theta
        precision = jnp.exp(-2.0 * out[:, 1])
        zero = jnp.zeros_like(precision)
        return jnp.stack([jnp.stack([precision, zero], -1),
                          jnp.stack([zero, jnp.full_like(precision, 2.0)], -1)], -2)

    def noise_draws(self, theta, num_draws: int):
        raise ValueError("a heteroscedastic noise depends on x: use predict(X).aleatoric_std")

    def predictive(self, draws, theta, *, point: str = "mean"):
        """The mixture (1/S) Σₛ N(fₛ(x), σₛ(x)²) from outputs (S, N, 2) = (f, log σ)."""

        del theta
        out = np.asarray(draws.outputs)
        return Predictive(out[..., 0], np.exp(out[..., 1]), analytic=draws.moments,
                          point=point)

    # log N(yᵢ | f(xᵢ), σ(xᵢ)²) per row (out (N, 2)) and the targets' dtype: as for one σ
    log_prob = GaussianLikelihood.log_prob
    check_targets = GaussianLikelihood.check_targets

    def to_dict(self):
        return {"type": "HeteroscedasticGaussian"}


@pytree_dataclass(())
@dataclasses.dataclass(frozen=True)
class Bernoulli(_Classifier):
    """y ∈ {0, 1} with P(y = 1) = sigmoid(f(x)); the model outputs one logit.

    Examples
    --------
    >>> import jax.numpy as jnp, bayesreg as br
    >>> round(float(br.Bernoulli().log_prob(jnp.array([1.0]), jnp.array([[0.0]]), {})[0]), 4)
    -0.6931
    """

    def n_outputs(self, y) -> int:
        del y
        return 1


    def log_prob(self, y, out, theta) -> jax.Array:
        del theta
        z = out[:, 0]
        return y * z - jax.nn.softplus(z)

    def probs(self, out) -> jax.Array:
        """Class probabilities (…, 2) from outputs (…, 1)."""
        p1 = jax.nn.sigmoid(out[..., 0])
        return jnp.stack([1.0 - p1, p1], axis=-1)

    def check_targets(self, y: np.ndarray) -> np.ndarray:
        if not np.all((y == 0) | (y == 1)):
            raise ValueError(f"y must hold 0/1 labels for Bernoulli; got values {np.unique(y)[:5]}")
        return y.astype(np.float32)

    def to_dict(self):
        return {"type": "Bernoulli"}


@dataclasses.dataclass(frozen=True)
class Categorical(_Classifier):
    """y ∈ {0, …, C−1} with P(y = c) = softmax(f(x))_c; the model outputs C logits.

    ``num_classes=None`` takes C = max(y) + 1 from the training labels.

    Examples
    --------
    >>> import jax.numpy as jnp, bayesreg as br
    >>> lik = br.Categorical(3)
    >>> round(float(lik.log_prob(jnp.array([2]), jnp.zeros((1, 3)), {})[0]), 4)   # log 1/3
    -1.0986
    """

    num_classes: int | None = None

    def __post_init__(self):
        check_settings(self, {"num_classes": Setting("int", 2, optional=True, example=3)})
        if self.num_classes is not None:
            object.__setattr__(self, "num_classes", int(self.num_classes))

    def n_outputs(self, y) -> int:
        return int(self.num_classes) if self.num_classes else int(np.max(y)) + 1

    def resolved(self, y):
        return self if self.num_classes else dataclasses.replace(
            self, num_classes=self.n_outputs(y))

    def log_prob(self, y, out, theta) -> jax.Array:
        del theta
        logp = jax.nn.log_softmax(out, axis=-1)
        return jnp.take_along_axis(logp, y.astype(jnp.int32)[:, None], axis=-1)[:, 0]

    def probs(self, out) -> jax.Array:
        return jax.nn.softmax(out, axis=-1)

    def check_targets(self, y: np.ndarray) -> np.ndarray:
        if not np.all(np.equal(np.mod(y, 1), 0)) or np.min(y) < 0:
            raise ValueError(
                f"y must hold integer class labels >= 0; got values {np.unique(y)[:5]}")
        if self.num_classes is not None and np.max(y) >= self.num_classes:
            raise ValueError(f"y has label {int(np.max(y))} >= num_classes={self.num_classes}")
        return y.astype(np.int32)

    def to_dict(self):
        return {"type": "Categorical", "num_classes": self.num_classes}


jax.tree_util.register_pytree_node(
    Categorical, lambda c: ((), c.num_classes), lambda n, _: Categorical(n)
)


def likelihood_from_dict(d: dict):
    kind = d["type"]
    if kind == "GaussianLikelihood":  # files of earlier versions: noise "heteroscedastic"
        return GaussianLikelihood(d["noise"], d.get("noise_prior"))
    if kind == "HeteroscedasticGaussian":
        return HeteroscedasticGaussian()
    if kind == "Bernoulli":
        return Bernoulli()
    if kind == "Categorical":
        return Categorical(d["num_classes"])
    raise ValueError(f"unknown likelihood type {kind!r}")
