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

from bayesreg._pytree import leaf_names
from bayesreg._validation import check_int, check_X, check_y
from bayesreg.approximation import FunctionDraws, draw_outputs, num_draws
from bayesreg.archive import save
from bayesreg.predictive import ClassPredictive, Predictive, StreamingPredictive
from bayesreg.priors import Prior
from bayesreg.summary import Summary, summarize

# Per-draw sampler statistics (ArviZ's names) that go to the ``sample_stats`` group.
SAMPLE_STATS = ("diverging", "acceptance_rate", "n_steps", "energy", "lp", "step_size")
# Draws (S × N) above which predict streams over chunks of points.
STREAM_ELEMENTS = 1 << 24
POSTERIOR_SAMPLES = "posterior samples"


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
    approximation : object or None
        What the method left beyond its draws, implementing the protocol of
        :mod:`bayesreg.approximation` (an exact Gaussian over coefficients, a linearised
        network, ...); ``predict``, ``save`` and ``load`` go through it. None: the draws
        are pushed through the model.
    hyper : dict
        Draws (S,) of sampled prior scales, e.g. ``{"weights_scale": ...}``.
    point : {"mean", "median"}
        The point prediction over draws (an ensemble's ``reduce``).
    draws_kind : str
        What the draws are, for ArviZ's readers: "posterior samples", or e.g. "dropout
        masks of one trained network, not posterior samples".
    offset : float, or array (T,)
        The targets' mean that ``br.fit`` subtracted before fitting (regression, ``center``;
        one per task for Y (N, T)): the model's first output (T outputs) is about y − offset,
        and every prediction, ``mean_params``
        (the output bias) and ``to_arviz`` add it back, so all of them are in the units of y.
    scale : float
        s: ``br.fit`` fitted (y − offset)/s (regression with ``center``, wherever that is
        only a change of units: :mod:`bayesreg._units`). ``params`` are those of the
        standardised target; predictions, ``mean_params`` (the output layer times s) and
        ``to_arviz`` are in the units of y, as are ``theta``, ``prior``, the σ and prior
        scales in ``diagnostics`` and ``log_evidence``.
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
    num_chains: int = 1
    config: dict = dataclasses.field(default_factory=dict)
    hyper: dict = dataclasses.field(default_factory=dict)
    dtype: str = "float32"
    approximation: Any = None
    point: str = "mean"
    draws_kind: str = POSTERIOR_SAMPLES
    offset: float | np.ndarray = 0.0
    scale: float = 1.0

    def __getattr__(self, name):
        # ``post.gaussian`` (Exact) and ``post.linearization`` (LaplaceApprox) of earlier
        # versions: the approximation when it is of that kind, None otherwise
        if name in ("gaussian", "linearization"):
            approx = self.__dict__.get("approximation")
            return approx if getattr(approx, "name", None) == name else None
        raise AttributeError(f"'Posterior' object has no attribute {name!r}")

    @property
    def num_draws(self) -> int:
        return num_draws(self.params)

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    def noise_std(self) -> np.ndarray:
        """Likelihood noise σ of each draw, (S,) (homoscedastic regression only)."""
        return self.likelihood.noise_draws(self.theta, self.num_draws)

    def function_draws(self, X, *, chunk_size: int | None = None) -> FunctionDraws:
        """Draws (S, N, K) of the model's outputs at the rows of X and, where the method
        has them, their exact moments (:class:`bayesreg.approximation.FunctionDraws`)."""
        X = check_X(X, "X", self.n_features)
        if self.dtype == "float64":
            X = X.astype(np.float64)
        if self.approximation is not None:
            draws = self.approximation.outputs(self, X, chunk_size)
        else:
            draws = FunctionDraws(draw_outputs(self.model, self.params, X, chunk_size))
        if not np.any(self.offset) and self.scale == 1.0:
            return draws
        outputs, s = np.array(draws.outputs), self.scale
        # the first output (T outputs of T tasks) is the target's, in standard units
        t = max(np.size(self.offset), 1)
        outputs[..., :t] = outputs[..., :t] * np.asarray(s, outputs.dtype) + np.asarray(
            self.offset, outputs.dtype)
        moments = (None if draws.moments is None
                   else (draws.moments[0] * s + self.offset, draws.moments[1] * s**2))
        return FunctionDraws(outputs, moments)

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
        # several tasks predict through one MultiTaskPredictive (T Predictives), not streamed
        regression = self.likelihood.kind == "regression" and np.ndim(self.y_train) < 2
        if stream is None:
            stream = regression and self.num_draws * X.shape[0] > STREAM_ELEMENTS
        if stream and regression:
            rows = (check_int("stream", stream) if not isinstance(stream, bool)
                    else max(1, STREAM_ELEMENTS // self.num_draws))

            def source(sl):
                return self.predict(X[sl], chunk_size=chunk_size, stream=False)

            return StreamingPredictive(source, X.shape[0], self.num_draws, min(rows, len(X)))
        draws = self.function_draws(X, chunk_size=chunk_size)
        return self.likelihood.predictive(draws, self.theta, point=self.point)

    def log_likelihood(self) -> np.ndarray:
        """log p(yᵢ | draw s) on the training data, (S, N) — for LOO / WAIC."""
        return self._log_likelihood(self.X_train, self.y_train)

    def _log_likelihood(self, X, y) -> np.ndarray:
        # the model's first output (or T outputs) is about (y − offset) / scale
        return np.asarray(_pointwise_loglik(
            self.model, self.likelihood, self.params, self.theta, jnp.asarray(X),
            jnp.asarray(y), np.asarray(self.offset, np.asarray(y).dtype),
            np.asarray(self.scale, np.asarray(y).dtype)))

    def mean_params(self):
        """The posterior mean of the parameters, a pytree like one draw (no leading axis).

        Where the method has the mean in closed form (``Exact``'s Gaussian over the
        coefficients, the Laplace approximation's mode) it is that mean, in the precision it
        was computed in; otherwise the average of the draws (for MAP, the one point).

        Examples
        --------
        >>> import numpy as np, bayesreg as br
        >>> X = np.linspace(0, 1, 20); y = 3 * X + 1
        >>> post = br.fit(br.Linear(), X, y, method=br.Exact(), prior=br.Gaussian(10.0),
        ...               likelihood=br.GaussianLikelihood(0.01))
        >>> m = post.mean_params()
        >>> m["weights"][0].shape, round(float(m["weights"][0][0, 0]), 3)
        ((1, 1), 3.0)
        """
        analytic = getattr(self.approximation, "mean_params", None)
        if analytic is not None:
            return self._uncentred(analytic(self))
        return self._uncentred(
            jax.tree_util.tree_map(lambda a: np.asarray(a).mean(axis=0), self.params))

    def _uncentred(self, params):
        """``params`` (one draw or S of them) that predict y itself: the output layer times
        ``scale`` and ``offset`` added to the output bias's first output (the model's
        parameters, as fitted, predict (y − offset) / scale)."""
        biases = params.get("biases") if isinstance(params, dict) else None
        if (not np.any(self.offset) and self.scale == 1.0) or not biases \
                or not getattr(self.model, "output_bias_last", True):
            return params
        t = max(np.size(self.offset), 1)
        out_bias = np.array(biases[-1])
        out_bias[..., :t] = out_bias[..., :t] * self.scale + np.asarray(self.offset,
                                                                        out_bias.dtype)
        weights = params["weights"]
        out_w = np.array(weights[-1])
        out_w[..., :t] = out_w[..., :t] * np.asarray(self.scale, out_w.dtype)
        return {**params, "weights": [*weights[:-1], out_w], "biases": [*biases[:-1], out_bias]}

    def replicated_y(self, X=None, *, seed: int = 0) -> np.ndarray:
        """One replicated y per draw at the rows of X (the training rows by default), (S, N):
        yₛ ~ p(y | fₛ(x), θₛ) — fₛ(x) plus the likelihood's noise for regression, a class
        label drawn from the draw's probabilities for classification. These are the draws
        of a posterior predictive check (``to_arviz()``'s ``posterior_predictive``).

        Examples
        --------
        >>> import numpy as np, bayesreg as br
        >>> X = np.linspace(0, 1, 12); y = np.sin(6 * X)
        >>> post = br.fit(br.Polynomial(3), X, y, method=br.Exact(num_samples=50),
        ...               likelihood=br.GaussianLikelihood(0.3))
        >>> post.replicated_y().shape, post.replicated_y(X[:4], seed=1).shape
        ((50, 12), (50, 4))
        """
        X = self.X_train if X is None else X
        pred = self.predict(X, stream=False)
        if self.likelihood.kind == "regression":
            return pred.sample(seed)
        # a class per draw and row by the inverse CDF of that draw's probabilities
        cdf = np.cumsum(np.asarray(pred.draws, np.float64), axis=-1)
        u = np.random.default_rng(seed).uniform(size=cdf.shape[:-1])
        return np.minimum((u[..., None] > cdf).sum(axis=-1), cdf.shape[-1] - 1)

    def to_arviz(self, log_likelihood: bool = True, *, X=None, y=None,
                 posterior_predictive: bool = True, seed: int = 0):
        """ArviZ InferenceData with ``posterior``, ``log_likelihood`` (unless
        ``log_likelihood=False``), ``posterior_predictive`` (named "y", chain × draw × N:
        :meth:`replicated_y`; unless ``posterior_predictive=False``), ``observed_data``
        and, where the method has per-draw statistics, ``sample_stats``.

        The data groups are at the training rows, or at the rows of ``X`` with their
        observed ``y`` when given (e.g. held-out rows for ``az.plot_ppc``; the
        log-likelihood is then at those rows too, so every data group agrees).

        ArviZ reads every draw as a sample from the posterior. Where the draws are not —
        a MAP fit (one point: ``az.loo`` fails, ``az.waic`` reports p_waic = 0), ensemble
        members, MC-dropout masks — a ``UserWarning`` says so, and ``attrs["draws"]`` says
        what the draws are ("posterior samples" otherwise).

        Examples
        --------
        >>> import numpy as np, bayesreg as br
        >>> X = np.linspace(0, 1, 12); y = np.sin(6 * X)
        >>> post = br.fit(br.Polynomial(3), X, y, method=br.Exact(num_samples=50),
        ...               likelihood=br.GaussianLikelihood(0.3))
        >>> idata = post.to_arviz()
        >>> idata.posterior_predictive["y"].shape, idata.observed_data["y"].shape
        ((1, 50, 12), (12,))
        >>> idata = post.to_arviz(X=X[:5], y=y[:5])  # a check on other rows
        >>> idata.posterior_predictive["y"].shape, idata.log_likelihood["y"].shape
        ((1, 50, 5), (1, 50, 5))
        """
        import arviz as az  # deferred: 1.7 s to import, paid only by to_arviz

        if self.num_draws == 1:
            what = "a point estimate (one draw), not posterior samples"
            warnings.warn(
                f"{self.method} is {what}: ArviZ's LOO fails on it (IndexError) and WAIC "
                "reports p_waic = 0. For LOO or WAIC fit a method whose draws sample the posterior "
                "(the Laplace approximation, variational inference, Hamiltonian Monte Carlo); "
                "to_arviz(log_likelihood=False) leaves the group out",
                UserWarning, stacklevel=2)
        else:
            what = self.draws_kind
            if what != POSTERIOR_SAMPLES:
                warnings.warn(
                    f"{self.method} draws are {what}: ArviZ reads them as one chain of "
                    "posterior draws, so LOO, WAIC, ESS and R-hat from them are not the "
                    "posterior's", UserWarning, stacklevel=2)
        if X is None and y is not None:
            raise ValueError("y was given without X: pass the rows X of those targets too")
        if X is None:
            X, y = self.X_train, np.asarray(self.y_train)
        else:
            if y is None:
                raise ValueError("X was given without y: to_arviz(X=..., y=...) needs the "
                                 "observed targets of those rows")
            X = check_X(X, "X", self.n_features).astype(self.X_train.dtype)
            y = self.likelihood.check_targets(check_y(y, X.shape[0]))
        if self.likelihood.kind == "classification":  # labels, so ArviZ plots them as counts
            y = np.asarray(y).astype(np.int64)
        chains = self.num_chains
        draws = self.num_draws // chains

        def shaped(a):
            a = np.asarray(a)
            return a.reshape(chains, draws, *a.shape[1:])

        names = leaf_names(self.params)
        params = self._uncentred(self.params)  # in the units of y
        posterior = {n: shaped(a) for n, a in zip(names, jax.tree_util.tree_leaves(params),
                                                  strict=True)}
        if self.likelihood.kind == "regression" and not self.likelihood.heteroscedastic:
            posterior["noise"] = shaped(self.noise_std())
        posterior.update({k: shaped(v) for k, v in self.hyper.items()})
        stats = {k: shaped(self.diagnostics[k]) for k in SAMPLE_STATS if k in self.diagnostics}
        loglik = ({"y": shaped(self._log_likelihood(X, y.astype(self.y_train.dtype)))}
                  if log_likelihood else None)
        replicated = ({"y": shaped(self.replicated_y(X, seed=seed))}
                      if posterior_predictive else None)
        return az.from_dict(
            posterior=posterior,
            posterior_predictive=replicated,
            log_likelihood=loglik,
            observed_data={"y": y},
            sample_stats=stats or None,
            attrs={"method": self.method, "inference_library": "bayesreg", "draws": what},
        )

    def summary(self) -> Summary:
        """The fit in a few lines: method, noise σ (given or learned), prior scales,
        λ = σ²/s², draws and chains, and the key diagnostics (R-hat max, ESS min,
        divergences, final loss, ELBO) where the method has them (:mod:`bayesreg.summary`).

        Examples
        --------
        >>> import numpy as np, bayesreg as br
        >>> X = np.linspace(0, 1, 20); y = 2 * X
        >>> post = br.fit(br.Linear(), X, y, method=br.Exact(), prior=br.Gaussian(1.0),
        ...               likelihood=br.GaussianLikelihood(0.5))
        >>> s = post.summary()
        >>> s.method, s.noise, s.l2_strength
        ('Exact', 0.5, {'weights': (0.25,), 'biases': (0.25,)})
        """
        return summarize(self)

    # -- persistence (plain arrays in .npz, configuration as JSON; no Python objects) --------
    def save(self, path) -> None:
        """Write this posterior to ``path`` (exactly that name) as an ``.npz`` archive,
        atomically (:mod:`bayesreg.archive`; :func:`bayesreg.load` reads it back)."""
        save(self, path)

    def __repr__(self) -> str:
        return (f"Posterior(method={self.method}, model={type(self.model).__name__}, "
                f"draws={self.num_draws}, chains={self.num_chains})")


def predictive_draws(model, params, X, chunk_size: int | None = None) -> np.ndarray:
    """f(X) under every draw: (S, N), computed ``chunk_size`` draws at a time."""
    return draw_outputs(model, params, X, chunk_size)[..., 0]


# the name earlier versions exported
predictive_outputs = draw_outputs


@partial(jax.jit, static_argnums=(0,))
def _pointwise_loglik(model, likelihood, params, theta, X, y, offset, scale):
    """log p(yᵢ | draw s) (S, N), the model's first output (T outputs for Y (N, T)) mapped
    to the units of y: s·f + offset."""
    tasks = max(offset.size, 1)

    def one(p, t):
        out = model.apply(p, X)
        out = out.at[:, :tasks].set(out[:, :tasks] * scale + offset)
        return likelihood.log_prob(y, out, t)

    return jax.lax.map(lambda pt: one(*pt), (params, theta), batch_size=64)
