r"""Stochastic-gradient Langevin dynamics (SGLD), cyclical SG-MCMC and SGHMC.

The sampler works on the same unconstrained latent state and log density as NUTS and VI
(:mod:`bayesreg.latent`). A mini-batch B of the N rows estimates that log density by
log p̃(z) = (N/|B|) Σ_{i∈B} log p(yᵢ | xᵢ, z) + log p(z), and each step is

    v ← m·v + η ∇log p̃(z) + √(2(1 − m)η) ξ,   ξ ~ N(0, I);   z ← z + v

with η = ε_t / N (``step_size`` ε is per data point). m = 0 is SGLD (Welling & Teh 2011),
m > 0 SGHMC (Chen et al. 2014) with friction 1 − m. The step is the optax transform
:func:`bayesreg.training.langevin.langevin` (its key in its state), the schedules of ε_t
(constant, polynomial, cyclical) are optax schedules there, and the chains run where the rows
are (:func:`bayesreg.training.langevin_chains.sample`: the members of the training loop, in
memory or streamed).
This module holds the method: its settings, its plan, and its fit.

Without a Metropolis correction SGLD samples a distribution near the posterior: for a
Gaussian posterior of per-point precision h along some direction, the full-batch chain's
stationary variance is Var_post / (1 − εh / (2(1 + m))), an O(ε) inflation; docs/methods/sgld.md
derives it and measures it.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from bayesreg import mcmc
from bayesreg._validation import Setting, check_settings
from bayesreg.fitted import Fitted
from bayesreg.latent import init_latent, split_draws
from bayesreg.priors import is_hierarchical
from bayesreg.problem import Problem
from bayesreg.training.langevin import Plan, prior_precondition, stable_step_size
from bayesreg.training.langevin_chains import log_joint_draws, sample
from bayesreg.training.trainer import latent_mode

SCHEDULES = ("constant", "polynomial")


@dataclasses.dataclass(frozen=True)
class SGLD:
    r"""Stochastic-gradient Langevin dynamics: posterior draws from noisy gradient steps.

    Samples the weights, a learned noise (σ ~ HalfNormal(``noise_prior``), like
    :class:`bayesreg.NUTS`) and sampled prior scales, from mini-batch gradients of the log
    joint. Without a Metropolis correction the draws come from a distribution whose
    variance is inflated by O(``step_size``) (module docstring; the docs page measures it).
    With ``batch_size`` below N, an X larger than memory streams
    (:func:`bayesreg.training.langevin_chains.sample`; docs/large-data.md); full-batch
    SGLD needs every row at each step, so ``br.fit`` loads such an X up to a limit and
    refuses it above.

    Parameters
    ----------
    num_samples : int
        Draws kept per chain; S = num_chains × num_samples.
    batch_size : int, optional
        Rows per gradient (drawn with replacement at each step: O(batch) a step, whatever
        N); None: every row.
    cyclical : bool
        Cosine cyclical step sizes with an exploration phase without noise (cSG-MCMC,
        Zhang et al. 2020); ``num_warmup`` and ``schedule`` are then not used.
    step_size : float
        ε, per data point: each step moves by (ε/N)·∇log p̃ plus noise of variance 2ε/N
        (times 1 − momentum). The default suits standardised inputs and targets; divide it
        by ten when the noise σ is much below 0.1 or the draws diverge (a clear error).
        Chains started at a mode take at most the step with ε h ≤ 1 + m, h the largest
        per-point curvature of the log joint there (half the stability limit:
        :func:`~bayesreg.training.langevin.stable_step_size`; ``diagnostics["step_size_used"]``
        and ``["curvature"]``): diabetes, MLP(50), has h ≈ 1 800, where ε = 5e-3 gave σ 60
        against NUTS's 51 and the step taken, about 5.5e-4, gives 52.5 (docs/methods/sgld.md).
    momentum : float
        m in [0, 1): 0 is SGLD; e.g. 0.9 is SGHMC with friction 1 − m, which moves further
        per step along directions the data barely constrain.
    num_warmup : int
        Steps before the first kept draw (not cyclical), rounded up to a multiple of
        ``thinning``.
    thinning : int
        Keep every ``thinning``-th state of the sampling phase.
    num_chains : int
        Independent chains from jittered starts, run with ``vmap``; R-hat compares them.
    schedule : {"constant", "polynomial"}
        ε_t = ε, or ε(1 + t/num_warmup)^(−0.55) (not cyclical).
    num_cycles : int
        Cycles of the cyclical schedule; num_samples must be a multiple of it.
    exploration : float
        Fraction of each cycle spent exploring (no noise, nothing kept), in [0, 1).
    init_jitter : float
        Chains start at the model's initialisation plus U(−init_jitter, init_jitter).
    init : {"map", "model"}
        "map" (default): each chain then climbs to a mode of the log joint by 500 L-BFGS
        steps (:func:`~bayesreg.training.trainer.latent_mode`) before its warm-up, so the
        warm-up starts in the typical set instead of spending itself getting there
        (diabetes, MLP(50): from the model's initialisation the draws' training RMS was
        55.3 after 1 000 warm-up steps and 53.5 after 20 000, NUTS's 51.1; from the mode at
        the capped step 52.0). Used by full-batch SGLD with a prior that is not
        hierarchical; a mini-batch fit (its rows may stream) starts from the model.
    log_joint : bool
        Also evaluate the log joint of every draw over every row (``diagnostics["lp"]``,
        ``lp`` in ArviZ's ``sample_stats``): one pass over the data per draw, which can
        cost more than the sampling, so only when asked.

    Examples
    --------
    >>> import numpy as np, bayesreg as br
    >>> X = np.linspace(-1, 1, 30); y = 2 * X + 0.3 * np.random.default_rng(0).standard_normal(30)
    >>> post = br.fit(br.Linear(), X, y, method=br.SGLD(num_samples=200, batch_size=10),
    ...               likelihood=br.GaussianLikelihood(0.3))
    >>> post.num_draws, post.num_chains, post.draws_kind
    (400, 2, 'posterior samples')
    >>> cyc = br.SGLD(num_samples=200, cyclical=True, num_cycles=4)
    """

    num_samples: int = 1000
    batch_size: int | None = None
    cyclical: bool = False
    step_size: float = 5e-3
    momentum: float = 0.0
    num_warmup: int = 1000
    thinning: int = 10
    num_chains: int = 2
    schedule: str = "constant"
    num_cycles: int = 4
    exploration: float = 0.5
    init_jitter: float = 0.5
    log_joint: bool = False
    init: str = "map"

    def __post_init__(self):
        check_settings(self, {
            "num_samples": Setting("int", 1), "batch_size": Setting("int", 1, optional=True),
            "cyclical": Setting("bool"), "step_size": Setting("real", 0.0, low_open=True),
            "momentum": Setting("real", 0.0, 1.0, high_open=True),
            "num_warmup": Setting("int", 0), "thinning": Setting("int", 1),
            "num_chains": Setting("int", 1), "num_cycles": Setting("int", 1),
            "exploration": Setting("real", 0.0, 1.0, high_open=True),
            "init_jitter": Setting("real", 0.0), "log_joint": Setting("bool")})
        if self.init not in ("map", "model"):
            raise ValueError(f"init must be 'map' or 'model'; got {self.init!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}; got {self.schedule!r}")
        if self.cyclical and self.num_samples % self.num_cycles:
            raise ValueError(f"num_samples ({self.num_samples}) must be a multiple of "
                             f"num_cycles ({self.num_cycles}) when cyclical=True")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def supports(self, model, likelihood) -> bool:
        """Whether this method can fit ``model`` under ``likelihood`` (any model and
        likelihood: it needs only the gradient of the log joint)."""
        del model, likelihood
        return True

    def plan(self, n: int) -> Plan:
        """The static shape of the run for N = n rows (what the compiled scan depends on)."""
        batch = None if self.batch_size is None or self.batch_size >= n else self.batch_size
        if self.cyclical:
            draws = self.num_samples // self.num_cycles
            sampling = draws * self.thinning
            explore = round(sampling * self.exploration / (1.0 - self.exploration))
            explore = -(-explore // self.thinning) * self.thinning
            return Plan(self.num_cycles, explore, False, draws, self.thinning, batch,
                        "cyclical", n, self.num_warmup)
        warmup = -(-self.num_warmup // self.thinning) * self.thinning
        return Plan(1, warmup, True, self.num_samples, self.thinning, batch,
                    self.schedule, n, self.num_warmup)

    def why_not_streamed(self, n: int, likelihood) -> str | None:
        """None when a fit on ``n`` rows streams an X too large to load; else why it cannot."""
        del likelihood
        if self.batch_size is None or self.batch_size >= n:
            return ("full-batch SGLD (batch_size=None, or at least N) needs every row at each "
                    "step")
        return None

    def fit(self, problem: Problem) -> Fitted:
        model, lik, prior = problem.model, problem.likelihood, problem.prior
        init_key, run_key = jax.random.split(problem.key)
        starts = [init_latent(problem, k, self.init_jitter)
                  for k in jax.random.split(init_key, self.num_chains)]
        at_mode = self.init == "map" and self.batch_size is None and not is_hierarchical(prior)
        if at_mode:
            starts = [latent_mode(problem, z, k, progress_bar=False) for z, k in
                      zip(starts, jax.random.split(init_key, self.num_chains), strict=True)]
        z0 = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *starts)
        plan = self.plan(problem.n)
        chain_keys = jax.random.split(run_key, self.num_chains)
        start = time.perf_counter()
        step_size, curvature, capped = float(self.step_size), math.nan, False
        for attempt in range(2):
            # a prior scale too narrow for the step (a learned one, down to 1e-4) gets a
            # smaller step of its own: the other coordinates keep theirs, bit for bit
            precondition = prior_precondition(lik, prior, starts[0], step_size, problem.n)
            if at_mode and not attempt:  # and the whole step its stable range at the mode
                step_size, curvature = stable_step_size(
                    model, lik, prior, starts[0], problem.X, problem.y, step_size,
                    float(self.momentum), precondition)
                capped = step_size < self.step_size
            z = jax.block_until_ready(sample(model, plan, lik, prior, z0, chain_keys, problem.X,
                                             problem.y, step_size, float(self.momentum),
                                             precondition))
            flat = jax.tree_util.tree_map(lambda a: a.reshape(-1, *a.shape[2:]), z)
            if not mcmc.diverged(model, z, problem.X, problem.y):
                break
            if attempt:
                raise ValueError(
                    f"SGLD diverged (non-finite draws, or outputs at training rows beyond "
                    f"{mcmc.RUNAWAY:g} × max|y|) at step_size={self.step_size} and at "
                    f"{step_size:g}: lower it further, standardise X and y, or use a wider "
                    "prior or noise")
            # the same chains at a tenth of the step (the compiled program is reused: ε is
            # an argument); near the edge of stability a stiff prior scale (a learned one,
            # down to 1e-4) or an unlucky batch sends a chain to inf
            warnings.warn(
                f"SGLD diverged (non-finite or runaway draws) at step_size={step_size:g}; ran "
                f"again at "
                f"{step_size / 10:g} (diagnostics['step_size_used']). Give a smaller step_size "
                "to skip the failed run", UserWarning, stacklevel=4)
            step_size /= 10
        seconds = time.perf_counter() - start
        params, theta, hyper = split_draws(flat)
        # R-hat and ESS of a few identified summaries (the noise, the prior scales, and a
        # linear model's weights or a network's output at a few rows), not of every weight
        diagnostics = {**mcmc.chain_summary(mcmc.chain_summaries(model, z, problem.X)),
                       "sampling_seconds": seconds,
                       "step_size": np.tile(plan.kept_step_sizes(step_size),
                                            self.num_chains),
                       "step_size_used": step_size, "curvature": curvature,
                       "preconditioned": 0 if precondition is None else int(sum(
                           int(jnp.sum(m < 1)) for m in jax.tree_util.tree_leaves(
                               precondition))),
                       "gradient_evaluations": plan.steps * self.num_chains}
        if self.log_joint:
            diagnostics["lp"] = log_joint_draws(model, lik, prior, flat, problem.X, problem.y)
        mcmc.warn("SGLD", diagnostics,
                  f"run longer (num_warmup={self.num_warmup}, num_samples={self.num_samples}, "
                  f"thinning={self.thinning}), "
                  + (f"raise momentum (step_size {step_size:g} after a divergence), "
                     if attempt else
                     f"raise momentum (step_size {step_size:g}, the stable step at the mode "
                     f"for curvature {curvature:.3g} per row), " if capped else
                     f"raise step_size (now {step_size:g}) or momentum, ")
                  + "and check for multiple modes", stacklevel=5)
        return Fitted(
            model=model, likelihood=lik, prior=prior, name="SGLD", params=params,
            theta=theta, X_train=problem.X, y_train=problem.y, diagnostics=diagnostics,
            num_chains=self.num_chains, config=self.to_dict(), hyper=hyper,
        )
