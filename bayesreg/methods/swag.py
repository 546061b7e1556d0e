r"""SWA-Gaussian (Maddox et al. 2019) and MultiSWAG (Wilson & Izmailov 2020).

SWAG fits a Gaussian to the iterates of stochastic gradient descent run, after a MAP
pretraining, at a constant (or cyclical) learning rate. Every ``collect_every`` updates
the iterate θₖ is collected into running first and second moments,

    θ_SWA = (1/K) Σₖ θₖ,     Σ_diag = (1/K) Σₖ (θₖ − θ_SWA)²   (Welford's update),

and the last ``rank`` deviations θₖ − θ̄ₖ (θ̄ₖ the running mean after θₖ) are kept as the
columns of D (P × K_D, K_D = min(K, rank)). The posterior is

    N(θ_SWA, ½ (Σ_diag + D Dᵀ / (K_D − 1))),

and a draw is θ = θ_SWA + (1/√2) Σ_diag^{1/2} z₁ + (1/√(2(K_D − 1))) D z₂ with
z₁ ~ N(0, I_P), z₂ ~ N(0, I_{K_D}). The draws pushed through the network are SWAG's
predictive (Bayesian model averaging by Monte Carlo), so no approximation object is kept.

``members > 1`` is MultiSWAG: M SWAG fits from M independently initialised MAP
pretrainings (trained together as an ensemble's members are), their SGD phases the members of
one compiled loop; the predictive is the equal mixture of the M Gaussians
(``num_samples`` draws from each).

**The SGD phase.** Each update takes B rows drawn without replacement (``batch_size``;
``None``: all rows, which leaves no gradient noise: SGD then stays at the mode and the
covariance is only that of the optimiser's own transient) and steps on the per-point
negative log joint −(1/B) Σ_batch log p(yᵢ | φ, θ) − log p(φ)/N, the objective of
:class:`bayesreg.MAP`, with the hyperparameters (σ, prior scales) held where the
pretraining's evidence put them; the noise of each draw is its member's σ. The update is
heavy-ball SGD, v ← βv + g, φ ← φ − η v, with one rate per parameter by default: Mandt,
Hoffman & Blei's (2017) optimal diagonal preconditioner ηₖ = 2B/(N Cₖₖ) (Cₖₖ the variance
over rows of the per-row gradient at the mode), capped for stability (docs/methods/swag.md
gives the caps and why). The phase runs on the training engine
(:mod:`bayesreg.training.swag_phase`): MAP's objective, the update with the rates as its
initial state, the iterates folded into the moments by the engine's collector; the rates,
the phase and the draws are compiled programs cached on shapes and configuration.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from bayesreg._validation import Setting, check_settings
from bayesreg.fitted import Fitted
from bayesreg.latent import check_hierarchical
from bayesreg.problem import Problem
from bayesreg.training import members as _members
from bayesreg.training import swag_phase as _phase
from bayesreg.training.results import check_progress
from bayesreg.training.trainer import Trained, Trainer, check_training

SCHEDULES = ("constant", "cyclical")


@dataclasses.dataclass(frozen=True)
class SWAG:
    r"""SWA-Gaussian: a low-rank plus diagonal Gaussian fitted to SGD iterates.

    Parameters
    ----------
    rank : int
        Number of deviation columns K kept in D (Maddox et al.'s K = 20).
    num_samples : int
        Draws from each member's Gaussian (S = ``members`` × ``num_samples``).
    members : int
        1: SWAG; M > 1: MultiSWAG, M SWAG fits from independently initialised pretrainings
        (:func:`bayesreg.training.members.train_many`, as ``br.Ensemble``'s), vmapped.
    epochs : int
        Length of the SGD phase in passes over the training rows (⌈N/B⌉ updates each;
        one update each with the full batch).
    batch_size : int, optional
        Rows per SGD update (default 32, or N when N is smaller). ``None``: full batch —
        no gradient noise, so SGD stays at the mode (see the module docstring).
    lr : float, optional
        The SGD learning rate on the per-point objective, one for every parameter.
        ``None`` (default): one rate per parameter, Mandt et al.'s (2017) diagonal
        preconditioner 2B/(N Cₖₖ), capped for stability (docs/methods/swag.md); their median
        is ``diagnostics["swag_lr"]``, their (min, max) ``diagnostics["swag_lr_range"]``.
    schedule : {"constant", "cyclical"}
        "cyclical": from lr down to lr/10 linearly within each cycle of ``collect_every``
        updates, collecting at each cycle's end (Izmailov et al. 2018).
    momentum : float
        β of the heavy-ball update v ← βv + g, φ ← φ − ηv (0: plain SGD).
    collect_every : int, optional
        Updates between two collected iterates. ``None``: once per epoch (Maddox et al.).
        At least 2 iterates must be collected.
    training : MAP or Trainer
        The pretraining (a MAP fit, or one per member). The noise σ and the prior scales
        that it learns by the evidence when the user leaves them out are held fixed in the
        SGD phase and reported in ``diagnostics`` as MAP reports them.

    Notes
    -----
    ``post.diagnostics`` holds the pretraining's (``losses``, ``noise_std``,
    ``prior_scales``, ``l2_strength``, …) and ``swag_losses`` (the mini-batch objective at
    every SGD update, per member), ``swa_loss`` (the full-data objective at θ_SWA),
    ``swag_lr`` (median rate), ``swag_lr_range``, ``num_collected`` (K) and ``rank_used``
    (K_D).

    Examples
    --------
    >>> import bayesreg as br
    >>> X, y = br.datasets.gap_example(n=40)
    >>> post = br.fit(br.MLP((16,)), X, y, method=br.SWAG(rank=10, num_samples=50, epochs=20,
    ...               training=br.MAP(steps=500)))
    >>> post.num_draws, post.diagnostics["num_collected"]
    (50, 20)
    """

    rank: int = 20
    num_samples: int = 100
    members: int = 1
    epochs: int = 100
    batch_size: int | None = 32
    lr: float | None = None
    schedule: str = "constant"
    momentum: float = 0.0
    collect_every: int | None = None
    training: Trainer = dataclasses.field(default_factory=Trainer)

    def __post_init__(self):
        check_settings(self, {
            "rank": Setting("int", 2), "num_samples": Setting("int", 1),
            "members": Setting("int", 1), "epochs": Setting("int", 1),
            "batch_size": Setting("int", 1, optional=True),
            "lr": Setting("real", 0.0, low_open=True, optional=True),
            "momentum": Setting("real", 0.0, 1.0, high_open=True),
            "collect_every": Setting("int", 1, optional=True)})
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}; got {self.schedule!r}")
        check_training(self.training)

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["training"] = self.training.to_dict()
        return out

    def supports(self, model, likelihood) -> bool:
        """Whether this method can fit ``model`` under ``likelihood`` (what its MAP
        pretraining supports)."""
        return self.training.supports(model, likelihood)

    def plan(self, n: int) -> tuple[int, int, int]:
        """(batch size B, collected iterates K, updates between collections) for N rows."""
        return _phase.plan(n, self.epochs, self.batch_size, self.collect_every)

    def pretrain(self, problem: Problem) -> Trained:
        """The MAP pretraining: one network (``training.train``), or M trained together
        (:func:`bayesreg.training.members.train_many`); the states have a leading member
        axis either way."""
        if self.members > 1:
            return _members.train_many(self.training, problem, self.members)
        net = self.training.train(problem)
        return net._replace(state=jax.tree_util.tree_map(lambda a: np.asarray(a)[None],
                                                         net.state))

    # -- data read lazily from disk ---------------------------------------------------------
    def why_not_streamed(self, n: int, likelihood) -> str | None:
        """None when a fit on ``n`` rows streams an X read lazily (a memmap); else why it cannot."""
        why = _members.why_not_streamed(self.training, n, likelihood, self.members)
        if why is not None:
            return f"{'Multi' * (self.members > 1)}SWAG's pretraining cannot stream: {why}"
        return _phase.why_not_streamed(n, self.batch_size, self.collect_every)


    # -- running -------------------------------------------------------------------------
    def fit(self, problem: Problem) -> Fitted:
        check_hierarchical(problem.prior, "SWAG")
        if getattr(problem.model, "same_start", False) and self.members > 1:
            raise ValueError("MultiSWAG's members would all start from the FunctionModel's one "
                             "params: give it init=(key -> params) for random starts")
        _members.check_streams(problem, self.why_not_streamed)
        pre = self.pretrain(problem)
        draws, out, collected = _phase.run_sgd_phase(self, problem, pre)
        M, S = self.members, self.num_samples
        # (M, S, ...) → (M·S, ...), member-major: member m's draws are one "chain"
        params = jax.tree_util.tree_map(lambda a: np.asarray(a).reshape(M * S, *a.shape[2:]),
                                        draws)
        theta = {k: np.repeat(np.asarray(v), S, axis=0) for k, v in pre.state["theta"].items()}
        losses = np.asarray(out["losses"])
        check_progress(losses, "SWAG's SGD phase", np.asarray(out["lr"])[:, 0], problem,
                       fix="a learning rate too large: lower lr, or leave lr=None for the "
                           "default")
        if not all(np.all(np.isfinite(a)) for a in jax.tree_util.tree_leaves(params)):
            raise FloatingPointError(
                f"SWAG's SGD phase diverged (learning rate {np.asarray(out['lr'])[:, 0]}): "
                "lower lr, or leave lr=None for the default")
        diagnostics = dict(pre.diagnostics)
        one = M == 1
        diagnostics.update(
            swag_losses=losses[0] if one else losses,
            swa_loss=float(out["swa_loss"][0]) if one else np.asarray(out["swa_loss"]),
            swag_lr=float(out["lr"][0, 0]) if one else np.asarray(out["lr"][:, 0]),
            swag_lr_range=(np.asarray(out["lr"][0, 1:]) if one
                           else np.asarray(out["lr"][:, 1:])),
            num_collected=collected, rank_used=min(collected, self.rank))
        return Fitted(
            model=problem.model, likelihood=problem.likelihood, prior=pre.prior,
            name="MultiSWAG" if M > 1 else "SWAG", params=params, theta=theta,
            X_train=problem.X, y_train=problem.y, diagnostics=diagnostics,
            config=self.to_dict(), num_chains=M,
            draws_kind="draws from SWAG's Gaussian fitted to SGD iterates (an approximate "
                       "posterior), not posterior samples")
