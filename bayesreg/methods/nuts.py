"""NUTS: blackjax's No-U-Turn sampler, after its window adaptation, on the model's log joint.

The sampler sees the unconstrained latent state of :mod:`bayesreg.latent` (weights, log σ
when the noise is learned, log s for sampled prior scales) as one pytree whose log
density is :func:`bayesreg.latent.latent_log_joint`, so the cost per gradient is that of the
log joint itself. Each chain is ``blackjax.window_adaptation`` (Stan's schedule) for
``num_warmup`` steps and then ``num_samples`` steps of ``blackjax.nuts``, all in one program
compiled once per settings and shapes, with the data, prior and likelihood as its arguments
(:mod:`bayesreg.training.chains`): a second fit of the same shapes compiles nothing, and
repeated fits hold no more memory. blackjax rather than NumPyro's NUTS (used until issue 21):
on ``benchmarks/nuts_vs_blackjax.py`` NumPyro's kernel, even in a loop compiled once, took
1.04–1.25× the seconds per effective sample of blackjax written by hand on the same log
density; now br.NUTS runs that program (``benchmarks/results.md``). ``NUTS.kernel()``, which
returned NumPyro's kernel, is gone with it: ``numpyro.infer.NUTS`` is the same object.

Diagnostics are those of :mod:`bayesreg.mcmc` (ArviZ: rank-normalised split R-hat, bulk and
tail ESS). Divergent transitions and R-hat > 1.01 raise a ``UserWarning`` that names the fix.

Examples
--------
>>> import numpy as np, bayesreg as br
>>> X = np.linspace(0, 1, 20); y = 2 * X + 0.1 * np.random.default_rng(0).standard_normal(20)
>>> post = br.fit(br.Linear(), X, y, method=br.NUTS(num_warmup=300, num_samples=200,
...               progress_bar=False), likelihood=br.GaussianLikelihood(0.1))
>>> post.num_draws, post.num_chains
(400, 2)
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from bayesreg import _progress, mcmc
from bayesreg._pytree import signature
from bayesreg._validation import Setting, check_settings
from bayesreg.fitted import Fitted
from bayesreg.latent import NUMPYRO_LOCK, init_latent, split_draws
from bayesreg.problem import Problem
from bayesreg.training.chains import BATCH, chain_program, sample
from bayesreg.training.results import no_valid_start

CHAIN_METHODS = tuple(BATCH)  # "sequential", "vectorized", "parallel"
DENSE_MASS_MAX = 100


@dataclasses.dataclass(frozen=True)
class NUTS:
    """Full Bayes by Hamiltonian Monte Carlo (blackjax's NUTS), for every model and prior.

    A learned noise is sampled with σ ~ HalfNormal(noise_prior) (see
    ``bayesreg.GaussianLikelihood``); a prior scale that is itself a prior
    (``br.Gaussian(scale=br.HalfNormal(1.0))``) is sampled on the log scale.

    Parameters
    ----------
    num_warmup, num_samples : int
        Adaptation steps (discarded) and kept draws, per chain. The warmup is blackjax's
        window adaptation, Stan's schedule: step size only for the first 75 and last 50
        steps, mass matrix in doubling windows between (step size only when below 20
        steps; with ``num_warmup=0`` a unit mass and the step size at which one leapfrog
        step is accepted with probability 0.8).
    num_chains : int
        Independent chains; R-hat compares them. Draws are S = num_chains × num_samples.
    chain_method : {"sequential", "vectorized", "parallel"}
        How chains run: one after another, batched with ``vmap`` on one device, or one
        per JAX device with ``pmap`` (in groups of the device count when there are fewer
        devices than chains, one chain per group on a single device; on a cluster each
        process runs its share, :func:`bayesreg.training.chains.sample`). Each chain adapts its
        own step size and mass matrix.
    target_accept : float
        Target acceptance probability of step-size adaptation; raise it (0.9, 0.95)
        when divergences appear.
    dense_mass : bool, optional
        Adapt a dense mass matrix instead of a diagonal one. ``None`` (default): dense when
        the latent vector has at most ``DENSE_MASS_MAX`` (100) coordinates. On the book's
        cubic polynomial (4 coefficients, x ∈ [0, 1]) dense adaptation raised the bulk ESS of
        2 × 1000 draws from 390–470 to about 2000 and cut leapfrog steps per draw from ~55
        to 5 (measured with NumPyro's adaptation, which follows the same schedule).
    max_tree_depth : int
        Cap on trajectory doubling (at most 2^depth leapfrog steps per draw; blackjax's
        ``max_num_doublings``).
    init_jitter : float
        Chains start at the model's initialisation plus U(−init_jitter, init_jitter).
    progress_bar : bool, optional
        Report progress (``bayesreg._progress``): a bar when stderr is a terminal, otherwise
        a line every 5 s such as ``NUTS: 700/3000 iterations (23%), 3.1 s, ~10 s left
        [chain 1/2, warmup]``. ``None`` (default): only once the run has taken 2 s, so short
        runs print nothing; ``True``: from the start; ``False``: never. The report is a host
        callback inside the kernel's step (warmup and sampling) and does not change the
        draws; with ``False`` none is compiled in.

    Examples
    --------
    >>> import bayesreg as br
    >>> br.NUTS(num_chains=4, chain_method="vectorized").num_chains
    4
    """

    num_warmup: int = 500
    num_samples: int = 1000
    num_chains: int = 2
    chain_method: str = "sequential"
    target_accept: float = 0.8
    dense_mass: bool | None = None
    max_tree_depth: int = 10
    init_jitter: float = 0.5
    progress_bar: bool | None = None

    def __post_init__(self):
        check_settings(self, {
            "num_warmup": Setting("int", 0), "num_samples": Setting("int", 1),
            "num_chains": Setting("int", 1), "max_tree_depth": Setting("int", 1),
            "target_accept": Setting("real", 0.0, 1.0, low_open=True, high_open=True),
            "init_jitter": Setting("real", 0.0), "dense_mass": Setting("bool", optional=True),
            "progress_bar": Setting("bool", optional=True)})
        if self.chain_method not in CHAIN_METHODS:
            raise ValueError(f"chain_method must be one of {CHAIN_METHODS}; "
                             f"got {self.chain_method!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    # br.compare measures every method's distance to the first reference method it runs
    is_reference = True

    def why_not_streamed(self, n: int, likelihood) -> str:
        """Why an X read by chunks is read into memory for this method (it never streams)."""
        del n, likelihood
        return "NUTS needs every row in memory: the log joint sees every row at each leapfrog step"

    def supports(self, model, likelihood) -> bool:
        """Whether this method can fit ``model`` under ``likelihood`` (any model and
        likelihood; slow beyond a few hundred parameters)."""
        del model, likelihood
        return True

    def supports_tasks(self) -> bool:
        """Targets Y (N, T) of T tasks: the joint density sums each row's observed labels."""
        return True

    def fit(self, problem: Problem) -> Fitted:
        # one NUTS or VI run at a time: the progress ticks go to the one active reporter
        with NUMPYRO_LOCK:  # (bayesreg._progress.active)
            return self._run_locked(problem)

    def _run_locked(self, problem: Problem) -> Fitted:
        model, lik, prior = problem.model, problem.likelihood, problem.prior
        init_key, run_key = jax.random.split(problem.key)
        inits = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *[
            init_latent(problem, k, self.init_jitter)
            for k in jax.random.split(init_key, self.num_chains)])
        size = sum(int(np.prod(jnp.shape(a)[1:])) for a in jax.tree_util.tree_leaves(inits))
        method = (self if self.dense_mass is not None
                  else dataclasses.replace(self, dense_mass=size <= DENSE_MASS_MAX))
        keys = jax.random.split(run_key, self.num_chains) if self.num_chains > 1 else run_key[None]
        args = (jnp.asarray(problem.X), jnp.asarray(problem.y), lik, prior)

        def program_for(batch, one_start):  # cached on one chain's shapes and the settings
            return chain_program(
                model, signature((one_start, args)), num_warmup=self.num_warmup,
                num_samples=self.num_samples, dense=method.dense_mass,
                target_accept=self.target_accept, max_tree_depth=self.max_tree_depth,
                report=self.progress_bar is not False, batch=batch)

        with _progress.active(_reporter(self)), no_valid_start(problem):
            z, extra, start_ok, seconds = sample(program_for, keys, inits, args,
                                                 self.chain_method)
            if not bool(jnp.all(start_ok)):  # what NumPyro raised; no_valid_start explains
                raise RuntimeError("Cannot find valid initial parameters")
        flat = jax.tree_util.tree_map(
            lambda a: np.asarray(a).reshape(-1, *np.shape(a)[2:]), z)
        params, theta, hyper = split_draws(flat)
        diagnostics = _diagnostics(mcmc.chain_summaries(model, z, problem.X), extra, seconds)
        mcmc.warn("NUTS", diagnostics,
                  f"run longer (num_warmup={self.num_warmup}, num_samples={self.num_samples}) "
                  "or more chains, and check for multiple modes",
                  divergence_fix=f"raise target_accept (now {self.target_accept}, try 0.95), "
                  "use a narrower prior, or standardise the inputs", stacklevel=6)
        return Fitted(
            model=model, likelihood=lik, prior=prior, name="NUTS", params=params,
            theta=theta, X_train=problem.X, y_train=problem.y, diagnostics=diagnostics,
            num_chains=self.num_chains, config=method.to_dict(), hyper=hyper,
        )


def _reporter(method: NUTS) -> _progress.Reporter:
    """The run's progress: iterations (warmup + sampling) of every chain; sequential chains
    count one after another, vectorized and parallel ones together."""
    per_chain = method.num_warmup + method.num_samples
    together = method.chain_method != "sequential" and method.num_chains > 1
    chains = 1 if together else method.num_chains
    state = {"chain": 0, "last": 0}

    def note(done):
        i = done - state["chain"] * per_chain
        phase = "warmup" if i <= method.num_warmup and method.num_warmup else "sampling"
        if together:
            return f"{method.num_chains} chains, {phase}"
        return f"chain {state['chain'] + 1}/{chains}, {phase}" if chains > 1 else phase

    reporter = _progress.Reporter("NUTS", chains * per_chain, enabled=method.progress_bar,
                                  unit="iterations", note=note)
    update = reporter.update

    def per_chain_update(i):  # each chain's kernel counts 1 … per_chain
        if i < state["last"] and state["chain"] + 1 < chains:
            state["chain"] += 1  # the next sequential chain started
        state["last"] = i
        update(state["chain"] * per_chain + i)

    reporter.update = per_chain_update
    return reporter


def _diagnostics(summaries, extra, seconds: float) -> dict:
    """R-hat and ESS of the chains' identified summaries (:func:`bayesreg.mcmc.chain_summaries`:
    σ and the prior scales, and a small linear model's weights or a network's output at a few
    training rows, not every weight of a network, whose hidden units permute between equally
    good modes) and per-draw sampler statistics, flattened to (S,)."""
    per_draw = {
        "diverging": np.asarray(extra["diverging"]).reshape(-1).astype(bool),
        "acceptance_rate": np.asarray(extra["accept_prob"]).reshape(-1),
        "n_steps": np.asarray(extra["num_steps"]).reshape(-1),
        "energy": np.asarray(extra["energy"]).reshape(-1),
        "lp": np.asarray(extra["lp"]).reshape(-1),
        "step_size": np.asarray(extra["step_size"]).reshape(-1),
    }
    num_grad = float(np.sum(per_draw["n_steps"]))
    return {
        "divergences": int(per_draw["diverging"].sum()),
        **mcmc.chain_summary(summaries),
        "step_size_mean": float(np.mean(per_draw["step_size"])),
        "sampling_seconds": seconds,
        "gradient_evaluations_sampling": num_grad,
        **per_draw,
    }
