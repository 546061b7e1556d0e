r"""The training settings every iterative method shares, and what they do to a problem.

:class:`Trainer` holds the optimiser, schedule, batches, noise injection, validation rows and
how hyperparameters are learned; its pieces plan the loop (epochs × batches), build the optax
transform and the objective, hold validation rows out, build the evidence hook and run the
loop through :mod:`bayesreg.training.run` (the compiled loop for rows in memory, the streamed
loop for rows read by chunks, laid out over the devices there). ``br.MAP(...)`` is a
``Trainer`` that is also a method; ``Ensemble``, ``MCDropout``, ``SWAG`` and ``LaplaceApprox``
take one as ``training=``.
:func:`check_trace` turns a loop's trace into diagnostics (a diverged loss is an error) and
:func:`learned_hyperparameters` reads the σ and prior scales the evidence learned.

Examples
--------
>>> import bayesreg as br
>>> br.MAP(batch_size=32, epochs=20).plan(1000)  # (epochs, batches per epoch, batch size)
(20, 31, 32)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from bayesreg import _progress
from bayesreg._deprecated import renamed
from bayesreg._pytree import check_positive
from bayesreg._random import split_rows
from bayesreg._validation import Setting, check_settings
from bayesreg.augment import check_augment
from bayesreg.data import stream as _stream
from bayesreg.likelihoods import GaussianLikelihood
from bayesreg.problem import Problem
from bayesreg.training.evidence import EvidenceHook
from bayesreg.training.noise_grid import fit_noise_grid
from bayesreg.training.objective import NegLogJoint
from bayesreg.training.results import check_trace, learned_hyperparameters
from bayesreg.training.run import run_one

OPTIMIZERS = ("gd", "sgd", "momentum", "nesterov", "adam", "adamw", "lbfgs")
SCHEDULES = ("constant", "cosine", "exponential", "warmup_cosine")
NOISE_KEYS = {"inputs", "weights", "labels"}
HYPERPARAMETERS = ("evidence", "validation", "joint")
TRAINER_RULES = {  # every number and flag of Trainer, checked by the one validator
    "lr": Setting("real", 0.0, low_open=True, optional=True),
    "steps": Setting("int", 1, optional=True),
    "batch_size": Setting("int", 1, optional=True),
    "epochs": Setting("int", 1, optional=True),
    "momentum": Setting("real", 0.0, 1.0, high_open=True),
    "weight_decay": Setting("real", 0.0),
    "validation": Setting("real", 0.0, 1.0, low_open=True, high_open=True, optional=True),
    "early_stopping": Setting("int", 1, optional=True),
    "restore_best": Setting("bool"),
    "progress_bar": Setting("bool", optional=True),
    "hyperparameters": Setting("choice", choices=HYPERPARAMETERS),
    "evidence_updates": Setting("int", 1),
}


@dataclasses.dataclass(frozen=True)
class Trainer:
    """How a network is trained: the one training loop's settings, shared by every method
    that trains (``MAP`` is these settings as a method; ``Ensemble``, ``MCDropout``, ``SWAG``
    and ``LaplaceApprox`` take them as ``training=br.MAP(...)``).

    Parameters
    ----------
    optimizer : {"gd", "sgd", "momentum", "nesterov", "adam", "adamw", "lbfgs"} or optax transform
        "gd" and "sgd" are the same update (``optax.sgd``); what makes SGD stochastic is
        ``batch_size``. "momentum"/"nesterov" use optax's m ← βm + g, which is the lecture's
        m ← βm + (1−β)g with the learning rate scaled by 1/(1−β). "adamw" adds decoupled
        weight decay ``weight_decay`` on top of the prior. "lbfgs" is ``optax.lbfgs`` with
        its zoom line search (full batch only; ``lr`` and ``schedule`` unused): on small
        ill-conditioned convex problems — raw polynomials, overlapping ReLU bases under a weak
        prior — it reaches the mode to float32 precision where first-order methods crawl.
        An optax ``GradientTransformation``
        is used as given (``lr`` and ``schedule`` are then ignored).
    lr : float, optional
        Learning rate (peak rate of a schedule) for the per-point objective. ``None``
        (default): 0.1 for Adam/AdamW on a linear-in-parameters model (a convex problem,
        where a large step decayed by the cosine schedule converges to float32 precision
        on raw polynomial features), 0.05 for Adam/AdamW on a network trained on the full
        batch, 0.01 otherwise. (Full batch, 0.01 stopped short of the mode the evidence
        assumes: on 120 points of sin(2x) + 0.1x², MLP((50,)) ended 0.25-0.32 from the curve
        over seeds 0-2 with σ and the prior given, against 0.09-0.13 at 0.05 and 0.09 for
        L-BFGS. With mini-batches the gradient noise grows with the rate: on MNIST-1D with
        augmented batches of 100, 0.05 left the training error at 39%, 0.01 at 17%.)
    steps : int, optional
        Number of parameter updates (rounded up to whole epochs with mini-batches).
        ``None`` (default): 10000 for a linear-in-parameters model, 3000 for a network,
        500 for "lbfgs".
    batch_size : int, optional
        Mini-batch size B; rows are reshuffled each epoch, and the N mod B rows left over
        sit out that epoch. ``None``: full-batch gradient descent. With an X read by chunks
        (a memmap, an h5py or zarr array: see :mod:`bayesreg.data.stream`), a mini-batch fit
        streams it — a background thread reads the next chunk of batches while the current
        one trains — and never holds more than a few chunks of X in memory; its batches
        are shuffled within chunks of rows rather than over all rows at once.
    epochs : int, optional
        With ``batch_size``: passes over the data (overrides ``steps``).
    schedule : {"constant", "cosine", "exponential", "warmup_cosine"} or callable
        Learning-rate schedule over the updates; a callable is an optax schedule
        ``step -> lr``. "exponential" decays to lr/100; "cosine" to 0; "warmup_cosine"
        warms up over the first 5% of updates.
    momentum : float
        β of "momentum" and "nesterov".
    weight_decay : float
        Decoupled weight decay of "adamw" (0 elsewhere; express L2 as a prior instead).
    noise_injection : dict, optional
        The lecture's noise regularizers, Gaussian noise of the given std drawn afresh at
        every update: ``{"inputs": σₓ}`` jitters the inputs, ``{"labels": σ_y}`` the targets
        (regression), ``{"weights": σ_w}`` the weights at which the loss is evaluated (the
        gradient is applied to the clean weights). Any subset of the three keys.
    augment : callable, optional
        Data augmentation (:mod:`bayesreg.augment`): ``aug(key, X_batch) -> X_batch``
        applied to the inputs of every batch with a fresh key, inside the compiled loop, e.g.
        ``br.augment.compose(br.augment.shift(), br.augment.scale(0.8, 1.2))``. Validation
        rows and predictions see the inputs as they are.
    validation : float, optional
        Fraction of the rows held out as a validation set (seeded); its mean negative log
        likelihood after every update is kept in ``diagnostics["val_losses"]``. Under a
        heteroscedastic likelihood 0.1 is held out when this is None (its likelihood is
        unbounded at the mode: see :class:`bayesreg.HeteroscedasticGaussian`).
    early_stopping : int, optional
        Patience: stop updating once the validation loss has not improved for this many
        updates (the loop runs on with frozen parameters, so it stays one compiled scan).
        Holds out ``validation`` (default 0.2) of the rows.
    restore_best : bool
        With a validation set: return the parameters of the best validation loss.
    progress_bar : bool, optional
        Report progress while the compiled loop runs: a tqdm bar when stderr is a terminal,
        otherwise a plain line every 5 s (``bayesreg._progress``). ``None`` (default): only
        once the loop has run for 2 s of wall time, so short fits print nothing; ``True``:
        from the first step; ``False``: never (no callbacks in the compiled loop).
    hyperparameters : {"evidence", "validation", "joint"}
        How what the user left out is learned — the noise σ of a
        ``GaussianLikelihood(noise=None)``, and the prior scales when ``br.fit`` got no
        ``prior``. "evidence" (default): by the Laplace–GGN marginal likelihood, updated
        during training (:mod:`bayesreg.training.evidence`); one Gaussian prior scale per
        parameter array. "joint": σ at the joint mode of weights and σ, the prior fixed at
        ``br.Gaussian(1.0)`` — the joint mode sends σ → 0 and λ = σ²/s² with it as a network
        interpolates, so use it only to reproduce that. "validation": σ chosen on the held
        out ``validation`` fraction (default 0.2) over a grid, one network per candidate,
        the selected network returned (:mod:`bayesreg.training.noise_grid`); the prior
        is as given (``br.Gaussian(1.0)`` when omitted). A fixed noise and an explicit prior
        are always used as given. Classification and heteroscedastic likelihoods learn
        nothing (the prior defaults to ``br.Gaussian(1.0)``).
    evidence_updates : int
        Number of evidence updates; the training is split into this many rounds plus a
        first (burn-in) round, and the hyperparameters are updated before each round but
        the first.

    Examples
    --------
    >>> import bayesreg as br
    >>> br.MAP(optimizer="sgd", lr=0.1, batch_size=32, epochs=20).plan(1000)
    (20, 31, 32)
    """

    optimizer: str | optax.GradientTransformation = "adam"
    lr: float | None = None
    steps: int | None = None
    batch_size: int | None = None
    epochs: int | None = None
    schedule: str | Callable = "cosine"
    momentum: float = 0.9
    weight_decay: float = 0.0
    noise_injection: dict | None = None
    augment: Callable | None = None
    validation: float | None = None
    early_stopping: int | None = None
    restore_best: bool = True
    progress_bar: bool | None = None
    hyperparameters: str = "evidence"
    evidence_updates: int = 10

    # the old name of ``noise_injection`` (``noise`` is σ everywhere else), for one release
    noise: dataclasses.InitVar[dict | None] = None

    def __hash__(self):  # ``noise_injection`` is a dict: hash its items
        items = tuple(sorted((self.noise_injection or {}).items()))
        fields = tuple(getattr(self, f.name) for f in dataclasses.fields(self)
                       if f.name != "noise_injection")
        return hash((fields, items))

    def __post_init__(self, noise):
        object.__setattr__(self, "noise_injection", renamed(
            type(self).__name__, "noise", noise, "noise_injection", self.noise_injection))
        check_augment(self.augment)
        if isinstance(self.optimizer, str) and self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS} or an optax "
                             f"GradientTransformation; got {self.optimizer!r}")
        if not isinstance(self.optimizer, str | optax.GradientTransformation):
            raise TypeError(f"optimizer must be a name or an optax GradientTransformation; "
                            f"got {type(self.optimizer).__name__}")
        if isinstance(self.schedule, str) and self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES} or a callable; "
                             f"got {self.schedule!r}")
        if not (self.schedule is None or isinstance(self.schedule, str) or callable(
                self.schedule)):
            raise TypeError(f"schedule must be one of {SCHEDULES} or a callable step -> lr; "
                            f"got {self.schedule!r} ({type(self.schedule).__name__})")
        check_settings(self, TRAINER_RULES)
        if self.noise_injection is not None:
            injection = self.noise_injection
            if not isinstance(injection, dict) or not set(injection) <= NOISE_KEYS:
                raise ValueError(f"noise_injection must be a dict with keys among "
                                 f"{sorted(NOISE_KEYS)}, e.g. {{'inputs': 0.1}}; got {injection!r}")
            for k, v in injection.items():
                check_positive(f"noise_injection[{k!r}]", v, allow_zero=True)
        if self.optimizer == "lbfgs" and (self.augment is not None or self.noise_injection):
            raise ValueError("optimizer='lbfgs' needs one fixed objective (its line search "
                             "compares losses across steps); augment= and noise_injection= draw "
                             "a new one every step. Use 'adam' or 'sgd'.")
        if self.optimizer == "lbfgs" and self.batch_size is not None:
            raise ValueError("optimizer='lbfgs' needs the full batch (its line search compares "
                             f"losses); got batch_size={self.batch_size}. Use 'adam' or 'sgd'.")

    # -- pieces --------------------------------------------------------------------------
    def resolved(self, model, likelihood=None, prior=None) -> Trainer:
        """This configuration with ``lr`` and ``steps`` defaults filled in for ``model``
        (under ``likelihood`` and ``prior``: a heteroscedastic likelihood or a prior other
        than Gaussian or Flat keeps the network rate at 0.01), and no progress callbacks while
        reports are silenced or loops are to be cached
        (:func:`bayesreg._progress.in_loop`)."""
        convex = getattr(model, "linear_in_params", False)
        adaptive = self.optimizer in ("adam", "adamw")
        # full batch, a homoscedastic network: 0.05 (see ``lr``); a noise head σ(x) drives
        # log σ down on the rows it fits, faster at 0.05 than the held-out rows stop it
        # (MLP(50) on 100 rows of 8 inputs, seeds 0 and 1: 95% coverage of fresh rows
        # 0.90 / 0.84 at 0.01, 0.90 / 0.71 at 0.05); and Adam's steps of about lr jitter
        # the weights an L1 penalty pins near 0 (MLP((64, 64)), 50 points, Laplace(1) prior:
        # σ learned 0.44 at 0.01, 0.63 at 0.05)
        smooth = prior is None or all(p.smooth for p in prior.values())
        brisk = (self.batch_size is None and smooth
                 and not getattr(likelihood, "heteroscedastic", False))
        lr = self.lr if self.lr is not None else (
            (0.1 if convex else 0.05 if brisk else 0.01) if adaptive else 0.01)
        steps = self.steps if self.steps is not None else (
            500 if self.optimizer == "lbfgs" else 10_000 if convex else 3000)
        # silenced (--quiet, BAYESREG_PROGRESS=0) or the command line's cacheable loops: no
        # callbacks compiled in, a static setting of its own, so the program is another one
        # — JAX writes no program with host callbacks to its persistent cache (bayesreg.cache)
        return dataclasses.replace(self, lr=lr, steps=steps,
                                   progress_bar=_progress.in_loop(self.progress_bar))

    def rate(self, model) -> float | None:
        """The learning rate in use for ``model`` (for messages); None when ``optimizer`` is
        an optax transformation, whose rate this configuration does not know."""
        if isinstance(self.optimizer, optax.GradientTransformation):
            return None
        return self.resolved(model).lr

    def plan(self, n: int) -> tuple[int, int, int]:
        """(epochs, batches per epoch, batch size) for N training rows."""
        steps = self.steps or 3000
        if self.batch_size is None or self.batch_size >= n:
            return self.epochs or steps, 1, n
        per_epoch = n // self.batch_size
        epochs = self.epochs or math.ceil(steps / per_epoch)
        return epochs, per_epoch, self.batch_size

    def learning_rate(self, total: int):
        """The optax schedule over ``total`` updates."""
        if callable(self.schedule):
            return self.schedule
        return {
            "constant": lambda: optax.constant_schedule(self.lr),
            "cosine": lambda: optax.cosine_decay_schedule(self.lr, total),
            "exponential": lambda: optax.exponential_decay(self.lr, total, 0.01),
            "warmup_cosine": lambda: optax.warmup_cosine_decay_schedule(
                0.0, self.lr, max(1, total // 20), total),
        }[self.schedule]()

    def transform(self, total: int) -> optax.GradientTransformation:
        """The optax transformation used for ``total`` updates."""
        if isinstance(self.optimizer, optax.GradientTransformation):
            return self.optimizer
        lr = self.learning_rate(total)
        return {
            "gd": lambda: optax.sgd(lr),
            "sgd": lambda: optax.sgd(lr),
            "momentum": lambda: optax.sgd(lr, momentum=self.momentum),
            "nesterov": lambda: optax.sgd(lr, momentum=self.momentum, nesterov=True),
            "adam": lambda: optax.adam(lr),
            "adamw": lambda: optax.adamw(lr, weight_decay=self.weight_decay),
            "lbfgs": lambda: optax.lbfgs(),
        }[self.optimizer]()

    def objective(self, model, latent: bool = False) -> NegLogJoint:
        """What the training loop minimises for ``model``: the negative log joint per point
        (the latent density with ``latent=True``) with this configuration's noise injection."""
        return NegLogJoint(model, tuple(sorted((self.noise_injection or {}).items())), latent,
                           self.augment)

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for k in ("optimizer", "schedule"):
            if not isinstance(out[k], str):
                out[k] = "custom"
        out["augment"] = None if self.augment is None else repr(self.augment)
        out["noise_injection"] = dict(self.noise_injection) if self.noise_injection else None
        return out

    # -- streaming (bayesreg.data.stream) ----------------------------------------------------
    def why_not_streamed(self, n: int, likelihood) -> str | None:
        """None when a fit on ``n`` rows streams an X read by chunks; else why it cannot."""
        if self.batch_size is None or self.batch_size >= n:
            return ("full-batch MAP (batch_size=None, or at least N) needs every row at each "
                    "update")
        if self.validation is not None or self.early_stopping is not None:
            return "MAP's validation and early_stopping hold out random rows kept in memory"
        if getattr(likelihood, "heteroscedastic", False):
            return ("a heteroscedastic fit holds out random rows, kept in memory (its "
                    "likelihood is unbounded at the mode: see br.HeteroscedasticGaussian)")
        if self.hyperparameters == "validation" and isinstance(likelihood, GaussianLikelihood) \
                and likelihood.learned_noise:
            return "hyperparameters='validation' holds out random rows kept in memory"
        return None


    # -- running -------------------------------------------------------------------------
    def split(self, problem: Problem) -> tuple[Problem, np.ndarray, np.ndarray]:
        """(training problem, X_val, y_val): the validation rows held out when asked for,
        and by default under a heteroscedastic likelihood (``HETEROSCEDASTIC_VALIDATION``:
        its likelihood is unbounded as σ(x) → 0 at a fitted row, so the network with the
        best held-out log likelihood is kept)."""
        fraction = self.validation
        if fraction is None:
            hetero = (getattr(problem.likelihood, "heteroscedastic", False)
                      and round(HETEROSCEDASTIC_VALIDATION * problem.n) >= 1)
            if self.early_stopping is None and not hetero:
                empty = problem.X[:0]
                return problem, empty, problem.y[:0]
            fraction = HETEROSCEDASTIC_VALIDATION if self.early_stopping is None else 0.2
        val, train = split_rows(problem, fraction, jax.random.fold_in(problem.key, 17))
        return (dataclasses.replace(problem, X=problem.X[train], y=problem.y[train]),
                problem.X[val], problem.y[val])

    def optimize(self, problem: Problem, state0, key, *, latent: bool = False,
                 X_val=None, y_val=None, hook: EvidenceHook | None = None):
        """Run the compiled loop from ``state0``; returns (final state, trace).

        ``trace`` holds ``losses`` (objective per update) and, with validation rows,
        ``val_losses`` (mean negative log likelihood of the validation rows after each
        update), ``best_update`` and ``stopped_update``; with a ``hook``, the final
        hyperparameters ``hyper`` and their ``hyper_history`` per evidence update.

        ``latent=True`` minimises the negative log density of the latent state used by the
        Bayesian methods (weight prior plus the noise prior on log σ) instead of the MAP
        objective, whose learned noise has no prior.
        """
        method = self.resolved(problem.model, problem.likelihood, problem.prior)
        return run_one(method.objective(problem.model, latent), method,
                       method.plan(problem.n), problem.likelihood, problem.prior, state0,
                       problem.X, problem.y, key, X_val, y_val, hook=hook)


    def evidence_hook(self, problem: Problem) -> EvidenceHook | None:
        """The evidence update for ``problem``, or None when there is nothing to learn
        (fixed noise and explicit prior, ``hyperparameters="joint"``, or a likelihood the
        Gauss–Newton evidence does not cover)."""
        lik = problem.likelihood
        if self.hyperparameters != "evidence" or not isinstance(lik, GaussianLikelihood) \
                or lik.heteroscedastic:
            return None
        learn_noise, learn_prior = lik.learned_noise, problem.learn_prior
        if not (learn_noise or learn_prior):
            return None
        if learn_noise and problem.n < 2:
            raise ValueError(f"a learned noise needs at least 2 training rows (residuals to "
                             f"measure it on); got {problem.n} sample. Fix it: "
                             "likelihood=br.GaussianLikelihood(noise=σ)")
        epochs, _, _ = self.resolved(problem.model, problem.likelihood,
                                     problem.prior).plan(problem.n)
        # one burn-in round, then one round after each update
        rounds = max(1, min(self.evidence_updates + 1, epochs))
        return EvidenceHook(learn_noise=learn_noise, learn_prior=learn_prior, rounds=rounds)


    def train(self, problem: Problem) -> Trained:
        """One network trained on ``problem`` from the model's initialisation: the rows held
        out for validation (when asked for) are not trained on, σ and the prior scales left
        out are learned as ``hyperparameters`` says. What ``br.MAP`` returns as one draw, and
        what SWAG pretrains."""
        lik = problem.likelihood
        if self.hyperparameters == "validation" and isinstance(lik, GaussianLikelihood) \
                and lik.learned_noise:
            key = jax.random.fold_in(problem.key, 17)
            state, trace, diagnostics, (X, y) = fit_noise_grid(
                problem, self, problem.model, problem.prior, key,
                _score_gaussian(problem.model), self.validation or 0.2)
            rows = dataclasses.replace(problem, X=X, y=y)
            return Trained(state, problem.prior, {**trace, **diagnostics}, rows)
        train, X_val, y_val = self.split(problem)
        init_key, train_key = jax.random.split(problem.key)
        hook = self.evidence_hook(train)
        state, trace = self.optimize(train, train.init_state(init_key), train_key,
                                     X_val=X_val, y_val=y_val, hook=hook)
        trace = check_trace(trace, self.rate(problem.model), problem)
        prior, trace = learned_hyperparameters(problem, trace, state)
        return Trained(state, prior, trace, train)


class Trained(NamedTuple):
    """One trained network: ``state`` ({"params", "theta"}), the ``prior`` it was trained
    under (learned scales written in), its ``diagnostics``, and the problem holding the
    ``rows`` it was trained on."""

    state: dict
    prior: dict
    diagnostics: dict
    rows: Problem


def _score_gaussian(model):
    """The mean Gaussian log density of held-out rows at noise σ: the validation grid's score."""
    def score(params, sigma, X_val, y_val):
        f = np.asarray(model.apply(params, jnp.asarray(X_val)))[:, 0]
        return float(np.mean(-0.5 * ((y_val - f) / sigma) ** 2 - math.log(sigma)
                             - 0.5 * math.log(2 * math.pi)))

    return score


# a heteroscedastic fit holds out this fraction of rows unless told otherwise (MAP.split)
HETEROSCEDASTIC_VALIDATION = 0.1


def latent_mode(problem: Problem, z0: dict, key, progress_bar: bool | None = None,
                steps: int = 500) -> dict:
    """The mode of the log joint of the latent state (weights, log σ) reached by ``steps``
    full-batch L-BFGS steps from ``z0``: where VI's means and SGLD's chains start
    (``init="map"``). ``z0`` itself where that mode is not finite (2 rows); the mode's
    weights with ``z0``'s σ where the network interpolates its rows (σ → 0 and the density
    → ∞: a σ below ``INTERPOLATES`` × std(y)).

    Examples
    --------
    >>> import jax, numpy as np, bayesreg as br
    >>> from bayesreg.latent import init_latent
    >>> X = np.linspace(0, 1, 20)[:, None]; y = 2 * X[:, 0] + 0.1
    >>> problem = Problem(br.Linear(), br.GaussianLikelihood(0.1), {"weights": br.Gaussian(
    ...     10.0), "biases": br.Gaussian(10.0)}, X, y, jax.random.key(0))
    >>> z = latent_mode(problem, init_latent(problem, jax.random.key(1)), jax.random.key(2))
    >>> round(float(z["params"]["weights"][0][0, 0]), 2)  # the ridge solution, ≈ 2
    2.0
    """
    z, _ = Trainer(optimizer="lbfgs", steps=steps, progress_bar=progress_bar).optimize(
        problem, z0, key, latent=True)
    if not all(bool(jnp.all(jnp.isfinite(a))) for a in jax.tree_util.tree_leaves(z)):
        return z0
    # a finite mode can still interpolate: 12 rows and an MLP(32) reached σ = 3e-5 (std y
    # 0.35), and VI started there kept σ 2e-4 (95% coverage 0.10)
    log_noise = z["theta"].get("log_noise")
    floor = INTERPOLATES * (_stream.std(problem.y) or 1.0)
    if log_noise is not None and np.any(np.exp(np.asarray(log_noise, np.float64)) < floor):
        return {**z, "theta": z0["theta"]}
    return z


# σ at the mode of the log joint below this fraction of std(y): the network reproduces its
# rows, and the mode is no place to start sampling or a variational fit from (latent_mode)
INTERPOLATES = 1e-3


def check_training(training) -> None:
    """``TypeError`` unless ``training`` is a :class:`Trainer` such as ``br.MAP(...)`` (the
    training setting of the methods that start from a trained network)."""
    if not isinstance(training, Trainer):
        raise TypeError(f"training must be a br.MAP(...); got {type(training).__name__}")
