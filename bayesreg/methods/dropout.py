r"""MC dropout: train with dropout, predict with dropout on (Gal & Ghahramani 2016).

Training minimises the dropout objective per data point (their appendix), for a prior
N(0, s²) (length-scale l = 1/s) and noise precision τ = 1/σ²:

    (τ/2)·MSE − ½ log τ + ((1 − rate)/(2 N s²)) ‖W‖²

i.e. the MAP objective of :class:`bayesreg.MAP` with every forward pass masked and the
weight prior raised to the power (1 − rate) (``Tempered``; biases keep their prior). With a
fixed noise that is ½·MSE + λ‖W‖², λ = (1 − rate)/(2 N τ s²): a Gaussian prior means the
same thing here as under NUTS.

Masks multiply the input of every hidden layer (the input features too with
``drop_input=True``, Gal & Ghahramani's construction; off by default), drawn independently
per example during training: "bernoulli", "gaussian" or "uniform" (:mod:`bayesreg.masks`).

Prediction: S forward passes, each with one mask per layer shared by all points, folded into
the weights (W'ₗ = diag(zₗ) Wₗ): each draw is a whole function, S parameter sets (``vmap``).

Hyperparameters: σ and the prior scales by the evidence of the network without masks (a
learned scale absorbs the tempering), by a noise grid on validation rows, or at the joint
mode (``training.hyperparameters``; docs/hyperparameters.md).

The rate (docs/methods/dropout.md). A tuple of rates, "validation", or "auto" on at least
``MIN_VALIDATION_ROWS`` held-out rows chooses it as Gal & Ghahramani's UCI experiments do:
one network per candidate on the rows left after holding out ``validation``, the highest
mean held-out log predictive density wins, and the fit returned is that rate's refitted on
every row. The candidates train as one compiled program (the rate traced; one initialisation
and key: the fits one at a time) for ``CANDIDATE_SHARE`` of the updates — they only rank
the rates, and on the UCI protocol half-length candidates changed no test log-likelihood
measurably (``benchmarks/dropout_candidates.py``). The refit runs in a program of the same
kind, so whichever rate wins compiles nothing new. Diagnostics: ``rate``, ``rate_grid``,
``rate_scores``.
"""

from __future__ import annotations

import dataclasses
import warnings

import jax
import numpy as np

from bayesreg._random import split_rows
from bayesreg._validation import Setting, as_float, check_settings
from bayesreg.fitted import Fitted, to_posterior
from bayesreg.likelihoods import GaussianLikelihood
from bayesreg.masks import DropoutNetwork
from bayesreg.models import MLP
from bayesreg.priors import Tempered
from bayesreg.problem import Problem
from bayesreg.training.members import train_values
from bayesreg.training.noise_grid import fit_noise_grid, masked_score
from bayesreg.training.results import check_trace, learned_hyperparameters
from bayesreg.training.trainer import Trainer, check_training

MASKS = ("bernoulli", "gaussian", "uniform")
RATES = (0.005, 0.01, 0.05, 0.1)  # rate="validation": Gal & Ghahramani's UCI grid

DEFAULT_RATE = 0.05  # rate="auto" on too few rows to choose on: their fixed UCI rate
MIN_VALIDATION_ROWS = 20  # below it a held-out choice of the rate warns
CANDIDATE_SHARE = 0.5  # the candidate rates train for this share of the final fit's updates


@dataclasses.dataclass(frozen=True)
class MCDropout:
    """Monte Carlo dropout as approximate Bayesian inference for an :class:`bayesreg.MLP`.

    Parameters
    ----------
    rate : float, tuple of float, "validation" or "auto"
        Dropout rate, in [0, 1); applies to the input of every hidden layer (and to the
        input features with ``drop_input=True``). A tuple of rates, or "validation" for Gal
        & Ghahramani's grid (0.005, 0.01, 0.05, 0.1), chooses it on held-out rows (module
        docstring). "auto" (default): their grid when at least 20 rows are held out, else
        0.05, their fixed UCI rate. On the UCI protocol (``benchmarks/results.md``) the
        choice gave Concrete test RMSE 4.85 and log-likelihood −3.00 against 5.09 and −3.03
        at 0.05, and Boston the same as 0.05, for four half-length fits and a refit.
    num_samples : int
        Stochastic forward passes (posterior draws) kept for prediction.
    mask : {"bernoulli", "gaussian", "uniform"}
        Mask distribution (module docstring).
    drop_input : bool
        Also drop the input features (Gal & Ghahramani's construction). Off by default:
        on the UCI protocol with the other defaults (``benchmarks/uci.py``, first 5 splits)
        dropping the inputs gave Concrete RMSE 5.80 and log-likelihood −3.18 against 5.34
        and −3.08 without, and a network with one input feature loses its whole input with
        probability ``rate``.
    training : MAP or Trainer
        Optimiser settings of the dropout objective.
    validation : float
        Fraction of rows held out to choose a learned noise or the rate (module
        docstring).

    Examples
    --------
    >>> import numpy as np, bayesreg as br
    >>> X, y = br.datasets.gap_example(n=40)
    >>> post = br.fit(br.MLP((32,)), X, y, method=br.MCDropout(rate=0.1, num_samples=50,
    ...               training=br.MAP(steps=500)), likelihood=br.GaussianLikelihood(0.1))
    >>> post.predict(X).draws.shape
    (50, 40)
    """

    rate: float | tuple[float, ...] | str = "auto"
    num_samples: int = 100
    mask: str = "bernoulli"
    drop_input: bool = False
    training: Trainer = dataclasses.field(default_factory=Trainer)
    validation: float = 0.2

    def __post_init__(self):
        rate = self.rate
        if isinstance(rate, list | tuple):  # hashable, like every setting
            rate = tuple(as_float(r) for r in rate)
        elif not isinstance(rate, str):
            rate = as_float(rate)
        object.__setattr__(self, "rate", rate)
        if isinstance(rate, str):
            Setting("choice", choices=("auto", "validation")).check("MCDropout rate", rate)
        else:
            one = Setting("real", 0.0, 1.0, high_open=True)
            for i, r in enumerate(rate if isinstance(rate, tuple) else (rate,)):
                one.check("MCDropout rate" + (f"[{i}]" if isinstance(rate, tuple) else ""),
                          r, example=0.05)
            if rate == ():
                raise ValueError("MCDropout rate must hold a rate, e.g. rate=(0.01, 0.05)")
        check_settings(self, {
            "num_samples": Setting("int", 1), "drop_input": Setting("bool"),
            "validation": Setting("real", 0.0, 1.0, low_open=True, high_open=True)})
        if self.mask not in MASKS:
            raise ValueError(f"mask must be one of {MASKS}; got {self.mask!r}")
        check_training(self.training)

    @property
    def rates(self) -> tuple[float, ...]:
        """The candidate rates: one for a float ``rate``."""
        if isinstance(self.rate, str):
            return RATES if self.rate in ("validation", "auto") else ()
        if isinstance(self.rate, tuple | list):
            return tuple(self.rate)
        return (self.rate,)

    def to_dict(self) -> dict:
        rate = list(self.rate) if isinstance(self.rate, tuple | list) else self.rate
        return {"rate": rate, "num_samples": self.num_samples, "mask": self.mask,
                "drop_input": self.drop_input, "validation": self.validation,
                "training": self.training.to_dict()}

    def network(self, model: MLP) -> DropoutNetwork:
        if not isinstance(model, MLP):
            raise ValueError(f"MCDropout needs a br.MLP (its masks drop the MLP's hidden units); "
                             f"got {type(model).__name__}. For another network use br.Ensemble, "
                             "br.LaplaceApprox, br.VI or br.NUTS")
        if model.dropout not in (0.0, self.rate):
            raise ValueError(
                f"the MLP's own dropout={model.dropout} differs from MCDropout(rate={self.rate});"
                " the method's rate is the one used: set MLP(dropout=0) or the same rate")
        base = dataclasses.replace(model, dropout=0.0)
        return DropoutNetwork(base, float(self.rate), self.mask, self.drop_input)

    def _spec(self, problem: Problem, hook):
        # a learned prior scale absorbs the tempering; a given prior is tempered
        return problem.prior if hook is not None and hook.learn_prior else {
            "weights": Tempered(problem.prior["weights"], 1.0 - self.rate),
            "biases": problem.prior["biases"]}

    def _train(self, problem: Problem, rates, hook):
        """[(state, trace, (X, y) trained on)] of one network per rate, from the problem's
        initialisation and key, as one program, the rate traced (:func:`train_values`)."""
        ones = [dataclasses.replace(self, rate=float(r)) for r in rates]
        net = ones[0].network(problem.model)
        shared = hook is not None and hook.learn_prior  # one prior, else tempered per rate
        prior = problem.prior if shared else jax.tree_util.tree_map(
            lambda *a: np.stack(a), *[one._spec(problem, hook) for one in ones])
        states, traces, rows = train_values(
            self.training, dataclasses.replace(problem, model=net), "rate", rates, prior,
            prior_axis=None if shared else 0, hook=hook)
        return [(*jax.tree_util.tree_map(lambda a, m=m: a[m], (states, traces)),
                 (rows.X, rows.y)) for m in range(len(rates))]

    def why_not_streamed(self, n: int, likelihood) -> str:
        """Why an X read by chunks is read into memory for this method (it never streams)."""
        return ("MCDropout needs every row in memory at once: "
                "its rate choice and noise grid hold out random rows")

    def supports(self, model, likelihood) -> bool:
        """Whether this method can fit ``model`` (an MLP: the masks act on its hidden units)."""
        return isinstance(model, MLP)

    def fit(self, problem: Problem) -> Fitted:
        own = getattr(problem.model, "dropout", 0.0)
        if own and not isinstance(self.rate, float):  # the MLP's own rate fixes it
            if self.rate != "auto" and float(own) not in self.rates:
                raise ValueError(
                    f"the MLP's own dropout={own} fixes the rate, which MCDropout(rate="
                    f"{self.rate!r}) would choose: set MLP(dropout=0) to choose it, or "
                    f"MCDropout(rate={own})")
            post = dataclasses.replace(self, rate=float(own))._run_rate(problem)
            return dataclasses.replace(post, config=self.to_dict())
        if self.rate == "auto" and round(self.validation * problem.n) < MIN_VALIDATION_ROWS:
            # too few rows to choose on: the fixed rate, recorded as the configuration
            post = dataclasses.replace(self, rate=DEFAULT_RATE)._run_rate(problem)
            return dataclasses.replace(post, config=self.to_dict())
        if len(self.rates) > 1 or isinstance(self.rate, str):
            return self._choose_rate(problem)
        if not isinstance(self.rate, int | float):  # a tuple of one rate
            return dataclasses.replace(self, rate=self.rates[0]).fit(problem)
        return self._run_rate(problem)

    def _choose_rate(self, problem: Problem):
        """One fit per candidate rate on the rows left after holding out ``validation``,
        scored by the held-out rows' mean log predictive density; the best rate's fit on
        every row is returned."""
        val, train = split_rows(problem, self.validation, jax.random.fold_in(problem.key, 29))
        if len(val) < MIN_VALIDATION_ROWS:
            warnings.warn(f"choosing the dropout rate on {len(val)} held-out rows: the choice "
                          f"is mostly noise below ~{MIN_VALIDATION_ROWS}. Fix it: give a rate "
                          "(MCDropout(rate=0.05)) or more data", UserWarning, stacklevel=3)
        part = dataclasses.replace(problem, X=problem.X[train], y=problem.y[train])
        short = dataclasses.replace(self, training=self._candidate_training(part))
        ones, hook = [dataclasses.replace(short, rate=r) for r in self.rates], \
            short.training.evidence_hook(part)
        # trained together (:meth:`_train`); a noise grid per rate, one rate at a time
        trained = (short._train(part, self.rates, hook) if hook is not None
                   or not self._noise_grid(part.likelihood) else [None] * len(ones))
        scores = {}
        for one, net in zip(ones, trained, strict=True):
            post = to_posterior(one._run_rate(part, net), part, one)
            scores[one.rate] = float(np.mean(post.predict(problem.X[val]).log_prob(
                problem.y[val])))
        finite = {r: v for r, v in scores.items() if np.isfinite(v)}
        if not finite:
            raise FloatingPointError(f"no dropout rate gave a finite held-out log density: "
                                     f"{scores}")
        best = max(finite, key=finite.get)
        # refitted by the candidates' program, the rate traced: whichever rate wins, it
        # compiles once (a rate fixed in the model compiled a program per winning rate)
        hook = self.training.evidence_hook(problem)
        refit = (self._train(problem, (best,), hook)[0] if hook is not None
                 or not self._noise_grid(problem.likelihood) else None)
        post = dataclasses.replace(self, rate=best)._run_rate(problem, refit)
        return dataclasses.replace(post, config=self.to_dict(), diagnostics={
            **post.diagnostics, "rate": best, "rate_grid": np.array(list(scores)),
            "rate_scores": np.array(list(scores.values()))})

    def _candidate_training(self, problem: Problem) -> Trainer:
        """The candidates' training: ``CANDIDATE_SHARE`` of the updates (or epochs) of the
        final fit; a named schedule is compressed to them, a callable one (or an optax
        optimizer) runs its first share."""
        t = self.training.resolved(problem.model, problem.likelihood, problem.prior)
        if t.epochs is not None:
            return dataclasses.replace(t, epochs=max(1, round(CANDIDATE_SHARE * t.epochs)))
        return dataclasses.replace(t, steps=max(1, round(CANDIDATE_SHARE * t.steps)))

    def _noise_grid(self, lik) -> bool:
        return (isinstance(lik, GaussianLikelihood) and lik.learned_noise
                and not lik.heteroscedastic and self.training.hyperparameters == "validation")

    def _run_rate(self, problem: Problem, trained=None):
        """The fit at this rate (``trained``: its network, trained with others)."""
        lik = problem.likelihood
        hook = self.training.evidence_hook(problem)
        prior, diagnostics = problem.prior, {}
        if hook is None and self._noise_grid(lik):
            # σ maximising the held-out rows' MC predictive density, a network per σ
            net, key = self.network(problem.model), jax.random.fold_in(problem.key, 1)
            key = jax.random.split(key)[0]
            state, trace, diagnostics, (X_train, y_train) = fit_noise_grid(
                problem, self.training, net, self._spec(problem, None), key,
                masked_score(net, jax.random.fold_in(key, 2), self.num_samples),
                self.validation)
        else:  # the problem's key as MAP uses it: at rate 0 the two are the same fit
            if trained is None:  # alone: MAP's compiled loop (a new rate compiles it anew)
                train = dataclasses.replace(problem, model=self.network(problem.model),
                                            prior=self._spec(problem, hook))
                train, X_val, y_val = self.training.split(train)
                init, key = jax.random.split(problem.key)
                trained = (*self.training.optimize(train, train.init_state(init), key,
                                                   X_val=X_val, y_val=y_val, hook=hook),
                           (train.X, train.y))
            state, trace, rows = trained
            trace = check_trace(trace, self.training.rate(problem.model),
                                dataclasses.replace(problem, X=rows[0], y=rows[1]))
            X_train, y_train = rows
            if hook is not None:
                prior, trace = learned_hyperparameters(problem, trace, state)
        net = self.network(problem.model)  # S masks folded into the trained weights
        draw_key = jax.random.split(jax.random.fold_in(problem.key, 1))[1]
        theta = jax.tree_util.tree_map(
            lambda a: np.repeat(np.asarray(a)[None], self.num_samples, 0), state["theta"])
        params = net.masked_params(state["params"], draw_key, self.num_samples)
        return Fitted(
            model=net.base, likelihood=problem.likelihood, prior=prior, name="MCDropout",
            params=jax.tree_util.tree_map(np.asarray, params), theta=theta,
            X_train=X_train, y_train=y_train,
            diagnostics={**trace, **diagnostics, "rate": float(self.rate)},
            config=self.to_dict(),
            draws_kind="dropout masks of one trained network, not posterior samples",
        )
