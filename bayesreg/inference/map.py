r"""Maximum a posteriori fitting: the regularised loss minimised with an optax optimiser.

The objective is the negative log joint per training point,

    J(φ, θ)/N = −(1/N) Σᵢ log p(yᵢ | xᵢ, φ, θ) − (1/N) log p(φ),

whose minimiser is the lecture's argmin_φ Σᵢ ℓᵢ + λ·g(φ) with λ·g = −log p(φ). Dividing
by N does not move the minimum; it keeps a learning rate meaningful across data sizes (the
lecture's sum-over-points update with rate α equals this one with rate α·N). A mini-batch
of B rows estimates the same objective without bias: −(1/B) Σ_batch log p − log p(φ)/N.

The whole loop — every epoch, every batch — is one ``lax.scan`` inside one ``jit``; the
compiled program is cached on the shapes and on this configuration, so a second fit with the
same shapes and settings (any prior scale, any data values) does not recompile.

Examples
--------
>>> import numpy as np, bayesreg as br
>>> X = np.linspace(-1, 1, 20); y = 2 * X + 0.1
>>> post = br.fit(br.Linear(), X, y, method=br.MAP(steps=500), prior=br.Gaussian(10.0),
...               likelihood=br.GaussianLikelihood(0.1))
>>> round(float(post.params["weights"][0][0, 0, 0]), 2)
2.0
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from bayesreg import _progress
from bayesreg._pytree import check_positive
from bayesreg._scales import divergence_causes
from bayesreg._validation import check_int
from bayesreg.inference._latent import check_hierarchical, latent_log_prior
from bayesreg.inference._problem import Problem, log_likelihood
from bayesreg.inference.evidence import NOISE_FLOOR, EvidenceHook, concrete_prior
from bayesreg.likelihoods import GaussianLikelihood
from bayesreg.priors import PARAM_GROUPS, Gaussian, log_prior

OPTIMIZERS = ("gd", "sgd", "momentum", "nesterov", "adam", "adamw", "lbfgs")
SCHEDULES = ("constant", "cosine", "exponential", "warmup_cosine")
NOISE_KEYS = {"inputs", "weights", "labels"}
HYPERPARAMETERS = ("evidence", "validation", "joint")


@dataclasses.dataclass(frozen=True)
class MAP:
    """Point estimate: minimise the negative log joint (loss + penalty) with optax.

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
        on raw polynomial features), 0.01 otherwise.
    steps : int, optional
        Number of parameter updates (rounded up to whole epochs with mini-batches).
        ``None`` (default): 10000 for a linear-in-parameters model, 3000 for a network,
        500 for "lbfgs".
    batch_size : int, optional
        Mini-batch size B; rows are reshuffled each epoch, and the N mod B rows left over
        sit out that epoch. ``None``: full-batch gradient descent.
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
    noise : dict, optional
        The lecture's noise regularizers, Gaussian noise of the given std drawn afresh at
        every update: ``{"inputs": σₓ}`` jitters the inputs, ``{"labels": σ_y}`` the targets
        (regression), ``{"weights": σ_w}`` the weights at which the loss is evaluated (the
        gradient is applied to the clean weights). Any subset of the three keys.
    validation : float, optional
        Fraction of the rows held out as a validation set (seeded); its mean negative log
        likelihood after every update is kept in ``diagnostics["val_losses"]``.
    early_stopping : int, optional
        Patience: stop updating once the validation loss has not improved for this many
        updates (the loop runs on with frozen parameters, so it stays one compiled scan).
        Holds out ``validation`` (default 0.2) of the rows.
    restore_best : bool
        With a validation set: return the parameters of the best validation loss.
    progress_bar : bool
        Show a tqdm bar while the compiled loop runs.
    hyperparameters : {"evidence", "validation", "joint"}
        How what the user left out is learned — the noise σ of a
        ``GaussianLikelihood(noise=None)``, and the prior scales when ``br.fit`` got no
        ``prior``. "evidence" (default): by the Laplace–GGN marginal likelihood, updated
        during training (:mod:`bayesreg.inference.evidence`); one Gaussian prior scale per
        parameter array. "joint": σ at the joint mode of weights and σ, the prior fixed at
        ``br.Gaussian(1.0)`` — the joint mode sends σ → 0 and λ = σ²/s² with it as a network
        interpolates, so use it only to reproduce that. "validation": σ chosen on the held
        out ``validation`` fraction (default 0.2) over a grid, one network per candidate,
        the selected network returned (:mod:`bayesreg.inference.noise_grid`); the prior
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
    >>> br.MAP(optimizer="sgd", lr=0.1, batch_size=32, epochs=20).optimizer
    'sgd'
    """

    optimizer: str | optax.GradientTransformation = "adam"
    lr: float | None = None
    steps: int | None = None
    batch_size: int | None = None
    epochs: int | None = None
    schedule: str | Callable = "cosine"
    momentum: float = 0.9
    weight_decay: float = 0.0
    noise: dict | None = None
    validation: float | None = None
    early_stopping: int | None = None
    restore_best: bool = True
    progress_bar: bool = False
    hyperparameters: str = "evidence"
    evidence_updates: int = 10

    def __hash__(self):  # ``noise`` is a dict: hash its items
        items = tuple(sorted((self.noise or {}).items()))
        fields = tuple(getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "noise")
        return hash((fields, items))

    def __post_init__(self):
        if isinstance(self.optimizer, str) and self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS} or an optax "
                             f"GradientTransformation; got {self.optimizer!r}")
        if not isinstance(self.optimizer, str | optax.GradientTransformation):
            raise TypeError(f"optimizer must be a name or an optax GradientTransformation; "
                            f"got {type(self.optimizer).__name__}")
        if self.lr is not None:
            check_positive("lr", self.lr)
        if self.steps is not None:
            check_int("steps", self.steps)
        if self.batch_size is not None:
            check_int("batch_size", self.batch_size)
        if self.epochs is not None:
            check_int("epochs", self.epochs)
        if isinstance(self.schedule, str) and self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES} or a callable; "
                             f"got {self.schedule!r}")
        if not 0.0 <= float(self.momentum) < 1.0:
            raise ValueError(f"momentum must be in [0, 1); got {self.momentum!r}")
        check_positive("weight_decay", self.weight_decay, allow_zero=True)
        if self.noise is not None:
            if not isinstance(self.noise, dict) or not set(self.noise) <= NOISE_KEYS:
                raise ValueError(f"noise must be a dict with keys among {sorted(NOISE_KEYS)}, "
                                 f"e.g. {{'inputs': 0.1}}; got {self.noise!r}")
            for k, v in self.noise.items():
                check_positive(f"noise[{k!r}]", v, allow_zero=True)
        if self.validation is not None and not 0.0 < float(self.validation) < 1.0:
            raise ValueError(f"validation must be a fraction in (0, 1); got {self.validation!r}")
        if self.early_stopping is not None:
            check_int("early_stopping", self.early_stopping)
        if self.hyperparameters not in HYPERPARAMETERS:
            raise ValueError(f"hyperparameters must be one of {HYPERPARAMETERS}; "
                             f"got {self.hyperparameters!r}")
        check_int("evidence_updates", self.evidence_updates)
        if self.optimizer == "lbfgs" and self.batch_size is not None:
            raise ValueError("optimizer='lbfgs' needs the full batch (its line search compares "
                             f"losses); got batch_size={self.batch_size}. Use 'adam' or 'sgd'.")

    # -- pieces --------------------------------------------------------------------------
    def resolved(self, model) -> MAP:
        """This configuration with ``lr`` and ``steps`` defaults filled in for ``model``."""
        convex = getattr(model, "linear_in_params", False)
        adaptive = self.optimizer in ("adam", "adamw")
        lr = self.lr if self.lr is not None else (0.1 if convex and adaptive else 0.01)
        steps = self.steps if self.steps is not None else (
            500 if self.optimizer == "lbfgs" else 10_000 if convex else 3000)
        return dataclasses.replace(self, lr=lr, steps=steps)

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

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for k in ("optimizer", "schedule"):
            if not isinstance(out[k], str):
                out[k] = "custom"
        out["noise"] = dict(self.noise) if self.noise else None
        return out

    # -- running -------------------------------------------------------------------------
    def split(self, problem: Problem) -> tuple[Problem, np.ndarray, np.ndarray]:
        """(training problem, X_val, y_val): the validation rows held out when asked for."""
        fraction = self.validation
        if fraction is None:
            if self.early_stopping is None:
                empty = problem.X[:0]
                return problem, empty, problem.y[:0]
            fraction = 0.2
        n_val = max(1, round(fraction * problem.n))
        if n_val >= problem.n:
            raise ValueError(f"validation={fraction} leaves no training rows of {problem.n}")
        seed = np.asarray(jax.random.key_data(jax.random.fold_in(problem.key, 17))).ravel()
        perm = np.random.default_rng(seed).permutation(problem.n)
        val, train = np.sort(perm[:n_val]), np.sort(perm[n_val:])
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
        method = self.resolved(problem.model)
        epochs, per_epoch, batch = method.plan(problem.n)
        X_val = problem.X[:0] if X_val is None else X_val
        y_val = problem.y[:0] if y_val is None else y_val
        X, y, mask, X_val, y_val, val_mask, batch = bucketed(problem.X, problem.y, X_val,
                                                             y_val, per_epoch, batch)
        return _train(
            problem.model, method, epochs, per_epoch, batch, latent, problem.likelihood,
            problem.prior, state0, jnp.asarray(X), jnp.asarray(y), key,
            jnp.asarray(X_val), jnp.asarray(y_val), hook=hook, mask=mask, val_mask=val_mask,
        )

    def _run_validation(self, problem: Problem):
        from bayesreg.inference.noise_grid import fit_noise_grid
        from bayesreg.posterior import Posterior

        key = jax.random.fold_in(problem.key, 17)
        state, trace, diagnostics, (X, y) = fit_noise_grid(
            problem, self, problem.model, problem.prior, key, _score_gaussian(problem.model),
            self.validation or 0.2)
        draws = jax.tree_util.tree_map(lambda a: np.asarray(a)[None], state)
        return Posterior(
            model=problem.model, likelihood=problem.likelihood, prior=problem.prior,
            method="MAP", params=draws["params"], theta=draws["theta"], X_train=X,
            y_train=y, diagnostics={**trace, **diagnostics},
            config=self.resolved(problem.model).to_dict())

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
        epochs, _, _ = self.resolved(problem.model).plan(problem.n)
        # one burn-in round, then one round after each update
        rounds = max(1, min(self.evidence_updates + 1, epochs))
        return EvidenceHook(learn_noise=learn_noise, learn_prior=learn_prior, rounds=rounds)

    def _run(self, problem: Problem):
        from bayesreg.posterior import Posterior

        check_hierarchical(problem.prior, "MAP")
        lik = problem.likelihood
        if self.hyperparameters == "validation" and isinstance(lik, GaussianLikelihood) \
                and lik.learned_noise:
            return self._run_validation(problem)
        train, X_val, y_val = self.split(problem)
        init_key, train_key = jax.random.split(problem.key)
        hook = self.evidence_hook(train)
        state, trace = self.optimize(train, train.init_state(init_key), train_key,
                                     X_val=X_val, y_val=y_val, hook=hook)
        trace = check_trace(trace, self.resolved(problem.model).lr, problem)
        prior, trace = learned_hyperparameters(problem, trace, state)
        draws = jax.tree_util.tree_map(lambda a: np.asarray(a)[None], state)
        return Posterior(
            model=problem.model, likelihood=problem.likelihood, prior=prior,
            method="MAP", params=draws["params"], theta=draws["theta"],
            X_train=train.X, y_train=train.y, diagnostics=trace,
            config=self.resolved(problem.model).to_dict(),
        )


def _score_gaussian(model):
    def score(params, sigma, X_val, y_val):
        f = np.asarray(model.apply(params, jnp.asarray(X_val)))[:, 0]
        return float(np.mean(-0.5 * ((y_val - f) / sigma) ** 2 - math.log(sigma)
                             - 0.5 * math.log(2 * math.pi)))

    return score


def bucketed(X, y, X_val, y_val, per_epoch: int, batch: int):
    """The training and validation rows padded for the compiled loop (:func:`padded`), with
    the batch size of a full-batch plan set to the padded row count."""
    X, y, mask = padded(X, y, per_epoch == 1)
    X_val, y_val, val_mask = padded(X_val, y_val, True)
    if mask is not None:
        batch = int(X.shape[-2])
    return X, y, mask, X_val, y_val, val_mask, batch


def padded(X, y, full_batch: bool):
    """(X, y, mask) with the rows padded to :func:`bayesreg.posterior.bucket` size (copies of
    the last row, mask 0) for full-batch training, so that fits on many training sizes
    compile O(log N) programs; mini-batch plans depend on N anyway, so their data is kept
    (mask None). An empty validation set stays empty."""
    from bayesreg.posterior import bucket

    n = X.shape[-2]
    if not full_batch or n == 0:
        return X, y, None
    extra = bucket(n) - n
    mask = jnp.asarray(np.arange(n + extra) < n, jnp.asarray(X).dtype)
    if not extra:
        return X, y, mask
    rows = np.concatenate([np.arange(n), np.full(extra, n - 1)])
    return X[..., rows, :], y[..., rows], mask


def learned_hyperparameters(problem: Problem, trace: dict, state) -> tuple[dict, dict]:
    """(the prior the fit used, diagnostics with σ, the prior scales and λ = σ²/s²).

    ``trace`` may hold a leading member axis (ensembles): the prior is then the one of the
    first member and the diagnostics keep every member's values."""
    trace = dict(trace)
    hyper = trace.pop("hyper", None)
    history = trace.pop("hyper_history", None)
    prior = problem.prior
    lik = problem.likelihood
    if isinstance(lik, GaussianLikelihood) and not lik.heteroscedastic:
        noise = (np.exp(np.asarray(state["theta"]["log_noise"])) if lik.learned_noise
                 else np.asarray(lik.noise, float))
        trace["noise_std"] = noise
    if hyper is None:
        return prior, trace
    trace["hyperparameters"] = "evidence"
    if "log_noise" in hyper:
        floor = NOISE_FLOOR * (float(np.std(problem.y)) or 1.0)  # as in the training loop
        if np.any(np.asarray(trace["noise_std"]) <= 1.01 * floor):
            warnings.warn(
                f"the evidence put the noise at its floor σ = {floor:.3g} ({NOISE_FLOOR:g} × "
                "std(y)): the model fits these targets exactly (noiseless data?). Intervals "
                "then carry no noise; if the noise level is known, pass "
                "likelihood=br.GaussianLikelihood(noise=...)", UserWarning, stacklevel=4)
    if history is not None and "log_noise" in history:
        trace["noise_std_history"] = np.exp(np.asarray(history["log_noise"]))
    if "log_scale" in hyper:
        scales = {g: np.stack([np.exp(np.asarray(v)) for v in hyper["log_scale"][g]], -1)
                  for g in PARAM_GROUPS}
        trace["prior_scales"] = scales
        first = {g: [v[0] if v.ndim else v for v in (
            np.asarray(x) for x in hyper["log_scale"][g])] for g in PARAM_GROUPS}
        prior = concrete_prior(first)
        if "noise_std" in trace:
            noise = np.asarray(trace["noise_std"])
            trace["l2_strength"] = {g: (noise[..., None] ** 2) / scales[g] ** 2
                                    for g in PARAM_GROUPS}
    elif "noise_std" in trace and all(isinstance(p, Gaussian) and np.ndim(p.scale) == 0
                                      for p in prior.values()):
        trace["l2_strength"] = {g: np.asarray(trace["noise_std"]) ** 2 / float(p.scale) ** 2
                                for g, p in prior.items()}
    return prior, trace


def check_trace(trace, lr, problem: Problem | None = None) -> dict:
    """NumPy diagnostics from a training trace; a non-finite loss is an error, not a NaN fit
    (with the likely causes for ``problem``)."""
    out = {k: jax.tree_util.tree_map(np.asarray, v) for k, v in trace.items()}
    losses = out["losses"]
    bad = ~np.isfinite(losses)
    if np.any(bad):
        first = np.argmax(bad.reshape(-1, losses.shape[-1]).any(0))
        causes = (divergence_causes(problem, lr) if problem is not None
                  else f"a step too large (lower lr, now {lr})")
        raise FloatingPointError(
            f"MAP diverged: the loss became {losses[bad][0]} after {int(first)} updates. "
            f"Likely: {causes}")
    out["final_loss"] = float(np.mean(losses[..., -1]))
    out["num_updates"] = int(losses.shape[-1])
    for k in ("best_update", "stopped_update"):
        if k in out and out[k].ndim == 0:
            out[k] = int(out[k])
    if "val_losses" not in out or out["val_losses"].shape[-1] == 0:
        out.pop("val_losses", None)
        out.pop("best_update", None)
        out.pop("stopped_update", None)
    return out


def _perturb(tree, key, scale):
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    keys = jax.random.split(key, max(1, len(leaves)))
    return jax.tree_util.tree_unflatten(treedef, [
        x + scale * jax.random.normal(k, x.shape, x.dtype) for x, k in zip(leaves, keys,
                                                                          strict=False)])


def _train_impl(model, method, epochs, per_epoch, batch, latent, likelihood, prior, state0, X,
                y, key, X_val, y_val, *, hook=None, mask=None, val_mask=None):
    """The whole training loop; pure, so that ensembles can ``vmap`` it over members.

    The loop runs ``epochs`` units (one update each with the full batch, one pass over the
    shuffled mini-batches otherwise). With a ``hook`` (:class:`EvidenceHook`) the units are
    split into a burn-in and rounds: before each round the hook updates the hyperparameters
    h (σ, prior scales), which the objective then holds fixed, so the loop is a scan over
    rounds of a scan over units — no ``cond``, so it stays cheap under ``vmap``.

    ``mask`` (full batch only) and ``val_mask`` mark the real rows (1) of data padded to a
    bucketed size (0 for padding): the objective averages over real rows only, so fits on
    many training sizes share a few compiled programs.
    """
    full = per_epoch == 1 and (mask is not None or batch == X.shape[0])
    mask = jnp.ones(X.shape[0], X.dtype) if mask is None else mask
    val_mask = jnp.ones(X_val.shape[0], X.dtype) if val_mask is None else val_mask
    n = X.shape[0] if not full else jnp.sum(mask)
    total = epochs * per_epoch
    tx = method.transform(total)
    noise = dict(method.noise or {})
    watch = X_val.shape[0] > 0
    patience = method.early_stopping
    lbfgs = method.optimizer == "lbfgs"
    # the scale of the targets (1 for a constant target): σ's start and floor
    if hook:
        y_mean = jnp.sum(mask * y) / jnp.sum(mask)
        y_sd = jnp.sqrt(jnp.sum(mask * (y - y_mean) ** 2) / jnp.sum(mask))
        y_std = jnp.where(y_sd > 0, y_sd, 1.0).astype(X.dtype)
    else:
        y_std = None

    def bound(h):
        return hook.bind(h, likelihood, prior) if hook is not None else (likelihood, prior)

    def objective(state, h, Xb, yb, k):
        lik, pri = bound(h)
        k_drop, k_in, k_w, k_lab = jax.random.split(k, 4)
        if noise.get("inputs"):
            Xb = Xb + noise["inputs"] * jax.random.normal(k_in, Xb.shape, Xb.dtype)
        if noise.get("labels"):
            yb = yb + noise["labels"] * jax.random.normal(k_lab, yb.shape, yb.dtype)
        used = state
        if noise.get("weights"):  # the loss at jittered weights, its gradient w.r.t. the clean
            used = dict(state, params=dict(state["params"], weights=_perturb(
                state["params"]["weights"], k_w, noise["weights"])))
        ll = log_likelihood(model, lik, used, Xb, yb, key=k_drop)
        if full:  # padded rows weigh nothing
            ll = ll * mask * (mask.shape[0] / n)
        lp = (latent_log_prior(lik, pri, state) if latent
              else log_prior(pri, state["params"]))
        return -(jnp.mean(ll) + lp / n)

    def val_loss(state, h):
        lik, _ = bound(h)
        ll = log_likelihood(model, lik, state, X_val, y_val)
        return -jnp.sum(ll * val_mask) / jnp.sum(val_mask)

    def update(carry, xs):
        state, opt_state, track, h = carry
        Xb, yb, k = xs
        if lbfgs:  # the line search needs the objective itself

            def value_fn(s):
                return objective(s, h, Xb, yb, k)

            loss, grads = optax.value_and_grad_from_state(value_fn)(state, state=opt_state)
            updates, new_opt = tx.update(grads, opt_state, state, value=loss, grad=grads,
                                         value_fn=value_fn)
        else:
            loss, grads = jax.value_and_grad(objective)(state, h, Xb, yb, k)
            updates, new_opt = tx.update(grads, opt_state, state)
        new_state = optax.apply_updates(state, updates)
        if not watch:
            return (new_state, new_opt, track, h), (loss, jnp.zeros((), loss.dtype))
        best_state, best, since, step, stopped_at = track
        frozen = since >= patience if patience is not None else jnp.array(False)
        # once stopped, keep the parameters where they were: the loop runs on, unchanged
        new_state = jax.tree_util.tree_map(lambda a, b: jnp.where(frozen, a, b), state,
                                           new_state)
        new_opt = jax.tree_util.tree_map(lambda a, b: jnp.where(frozen, a, b), opt_state,
                                         new_opt)
        v = val_loss(new_state, h)
        better = (v < best) & ~frozen
        best_state = jax.tree_util.tree_map(lambda a, b: jnp.where(better, b, a), best_state,
                                            new_state)
        track = (best_state, jnp.where(better, v, best),
                 jnp.where(better, 0, jnp.where(frozen, since, since + 1)), step + 1,
                 jnp.where(frozen & (stopped_at < 0), step, stopped_at))
        return (new_state, new_opt, track, h), (loss, v)

    if full:  # full batch: a unit is one update

        def unit(carry, k):
            return update(carry, (X, y, k))
    else:  # a unit is one epoch of shuffled mini-batches

        def unit(carry, k):
            perm_key, step_key = jax.random.split(k)
            idx = jax.random.permutation(perm_key, n)[: per_epoch * batch]
            idx = idx.reshape(per_epoch, batch)
            step_keys = jax.random.split(step_key, per_epoch)
            return jax.lax.scan(lambda c, xs: update(c, (X[xs[0]], y[xs[0]], xs[1])), carry,
                                (idx, step_keys))

    track0 = (state0, jnp.asarray(jnp.inf, X.dtype), jnp.asarray(0), jnp.asarray(0),
              jnp.asarray(-1)) if watch else ()
    h0 = hook.init(state0["params"], y_std, X.dtype) if hook is not None else {}
    carry0 = (state0, tx.init(state0), track0, h0)
    desc = f"MAP ({method.optimizer if isinstance(method.optimizer, str) else 'custom'})"
    keys = jax.random.split(key, epochs)
    if hook is None:
        (state, _, track, h), (losses, vals) = _progress.scan(
            unit, carry0, keys, length=epochs, enabled=method.progress_bar, desc=desc)
        extra = {}
    else:
        # rounds of ``every`` units; before each round but the first (the burn-in) the hook
        # updates h. The last round is padded to full length with masked units, so the unit
        # body is compiled once.
        rounds, every = hook.rounds, -(-epochs // hook.rounds)
        valid = jnp.arange(rounds * every) < epochs
        pad = rounds * every - epochs
        keys = jnp.concatenate([keys, jax.random.split(jax.random.fold_in(key, 1), pad)])[
            : rounds * every] if pad else keys
        hyper_keys = jax.random.split(jax.random.fold_in(key, epochs), rounds)

        def masked(carry, xs):
            k, ok = xs
            new, out = unit(carry, k)
            new = jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), new, carry)
            return new, out

        def round_(carry, xs):
            r, k_h, ks, oks = xs
            state, opt_state, track, h = carry
            h_new, gamma = hook.update(h, model, likelihood, prior, state["params"], X, y,
                                       k_h, y_std, mask)
            keep = r == 0  # the burn-in round; and once early stopping froze the weights
            if watch and patience is not None:
                keep = keep | (track[2] >= patience)
            h = jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b), h, h_new)
            if lbfgs:  # the objective changed: L-BFGS's memory and cached value are stale
                opt_state = jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b),
                                                   opt_state, tx.init(state))
            carry, outs = jax.lax.scan(masked, (state, opt_state, track, h), (ks, oks))
            return carry, (outs, gamma, h)

        xs = (jnp.arange(rounds), hyper_keys, keys.reshape(rounds, every, *keys.shape[1:]),
              valid.reshape(rounds, every))
        (state, _, track, h), ((losses, vals), gammas, history) = _progress.scan(
            round_, carry0, xs, length=rounds, enabled=method.progress_bar, desc=desc,
            stride=every, total=epochs)
        per = losses.shape[2:] if losses.ndim > 2 else ()
        losses = losses.reshape(-1, *per)[:epochs]
        vals = vals.reshape(-1, *per)[:epochs]
        extra = {"hyper": h, "effective_parameters": gammas[-1], "hyper_history": history}
        if hook.learn_noise:  # the noise the evidence chose is the posterior's noise
            state = dict(state, theta={"log_noise": h["log_noise"]})
    losses, vals = losses.reshape(-1), vals.reshape(-1)
    trace = {"losses": losses, **extra}
    if watch:
        best_state, _, _, _, stopped_at = track
        trace.update(val_losses=vals, best_update=jnp.argmin(vals) + 1,
                     stopped_update=stopped_at)
        if method.restore_best:
            state = dict(best_state, theta=state["theta"])
    return state, trace


_STATIC = (0, 1, 2, 3, 4, 5)
_train = jax.jit(_train_impl, static_argnums=_STATIC, static_argnames=("hook",))


@partial(jax.jit, static_argnums=(*_STATIC, 6), static_argnames=("hook",))
def _train_members(model, method, epochs, per_epoch, batch, latent, axes, likelihood, prior,
                   state0, X, y, key, X_val, y_val, *, hook=None, mask=None, val_mask=None):
    """M members in one program: ``vmap`` of the training loop over initial states and keys,
    and over data (bagging) or prior (anchoring) when ``axes`` = (data axis, prior axis)."""
    data_axis, prior_axis = axes
    fn = partial(_train_impl, model, method, epochs, per_epoch, batch, latent, hook=hook,
                 mask=mask, val_mask=val_mask)
    return jax.vmap(fn, in_axes=(None, prior_axis, 0, data_axis, data_axis, 0, None, None))(
        likelihood, prior, state0, X, y, key, X_val, y_val)
