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

Example
-------
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
from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from bayesreg import _progress
from bayesreg._pytree import check_positive
from bayesreg._validation import check_int
from bayesreg.inference._latent import check_hierarchical, latent_log_prior
from bayesreg.inference._problem import Problem, log_likelihood
from bayesreg.priors import log_prior

OPTIMIZERS = ("gd", "sgd", "momentum", "nesterov", "adam", "adamw", "lbfgs")
SCHEDULES = ("constant", "cosine", "exponential", "warmup_cosine")


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
    progress_bar : bool
        Show a tqdm bar while the compiled loop runs.

    Example
    -------
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
    progress_bar: bool = False

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
        return out

    # -- running -------------------------------------------------------------------------
    def optimize(self, problem: Problem, state0, key, *, latent: bool = False):
        """Run the compiled loop from ``state0``; returns (final state, losses per update).

        ``latent=True`` minimises the negative log density of the latent state used by the
        Bayesian methods (weight prior plus the noise prior on log σ) instead of the MAP
        objective, whose learned noise has no prior.
        """
        method = self.resolved(problem.model)
        epochs, per_epoch, batch = method.plan(problem.n)
        return _train(
            problem.model, method, epochs, per_epoch, batch, latent, problem.likelihood,
            problem.prior, state0, jnp.asarray(problem.X), jnp.asarray(problem.y), key,
        )

    def _run(self, problem: Problem):
        from bayesreg.posterior import Posterior

        check_hierarchical(problem.prior, "MAP")
        init_key, train_key = jax.random.split(problem.key)
        state, losses = self.optimize(problem, problem.init_state(init_key), train_key)
        losses = np.asarray(losses)
        if not np.all(np.isfinite(losses)):
            raise FloatingPointError(
                f"MAP diverged: the loss became {losses[~np.isfinite(losses)][0]} after "
                f"{int(np.argmax(~np.isfinite(losses)))} updates; lower lr "
                f"(now {self.resolved(problem.model).lr})"
            )
        draws = jax.tree_util.tree_map(lambda a: np.asarray(a)[None], state)
        return Posterior(
            model=problem.model, likelihood=problem.likelihood, prior=problem.prior,
            method="MAP", params=draws["params"], theta=draws["theta"],
            X_train=problem.X, y_train=problem.y,
            diagnostics={"losses": losses, "final_loss": float(losses[-1]),
                         "num_updates": int(losses.size)},
            config=self.resolved(problem.model).to_dict(),
        )


@partial(jax.jit, static_argnums=(0, 1, 2, 3, 4, 5))
def _train(model, method, epochs, per_epoch, batch, latent, likelihood, prior, state0, X, y,
           key):
    n = X.shape[0]
    tx = method.transform(epochs * per_epoch)

    def objective(state, Xb, yb, k):
        ll = log_likelihood(model, likelihood, state, Xb, yb, key=k)
        lp = (latent_log_prior(likelihood, prior, state) if latent
              else log_prior(prior, state["params"]))
        return -(jnp.mean(ll) + lp / n)

    def update(carry, xs):
        state, opt_state = carry
        Xb, yb, k = xs
        if method.optimizer == "lbfgs":  # the line search needs the objective itself

            def value_fn(s):
                return objective(s, Xb, yb, k)

            loss, grads = optax.value_and_grad_from_state(value_fn)(state, state=opt_state)
            updates, opt_state = tx.update(grads, opt_state, state, value=loss, grad=grads,
                                           value_fn=value_fn)
        else:
            loss, grads = jax.value_and_grad(objective)(state, Xb, yb, k)
            updates, opt_state = tx.update(grads, opt_state, state)
        return (optax.apply_updates(state, updates), opt_state), loss

    carry0 = (state0, tx.init(state0))
    desc = f"MAP ({method.optimizer if isinstance(method.optimizer, str) else 'custom'})"
    if per_epoch == 1 and batch == n:  # full batch: one scan over the updates
        keys = jax.random.split(key, epochs)

        def full(carry, k):
            return update(carry, (X, y, k))

        (state, _), losses = _progress.scan(full, carry0, keys, length=epochs,
                                            enabled=method.progress_bar, desc=desc)
        return state, losses

    def epoch(carry, k):
        perm_key, drop_key = jax.random.split(k)
        idx = jax.random.permutation(perm_key, n)[: per_epoch * batch].reshape(per_epoch, batch)
        drop_keys = jax.random.split(drop_key, per_epoch)
        return jax.lax.scan(lambda c, xs: update(c, (X[xs[0]], y[xs[0]], xs[1])), carry,
                            (idx, drop_keys))

    (state, _), losses = _progress.scan(epoch, carry0, jax.random.split(key, epochs),
                                        length=epochs, enabled=method.progress_bar, desc=desc)
    return state, losses.reshape(-1)
