"""NUTS: NumPyro's No-U-Turn sampler on the model's log joint.

The sampler sees the unconstrained latent state of :mod:`bayesreg.latent`
(weights, log σ when the noise is learned, log s for sampled prior scales) as one vector
site of a NumPyro model whose only other statement is ``numpyro.factor(log joint)``, so the
cost per gradient is that of the log joint itself. Data, prior and likelihood are model
arguments (``jit_model_args=True``), the kernel is cached on shapes and settings, and the
chains run in a loop compiled once per kernel (:mod:`bayesreg.training.chains`): a second fit
of the same shapes compiles nothing, and repeated fits hold no more memory.

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
import functools
import time
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from bayesreg import _progress, mcmc
from bayesreg._validation import Setting, check_settings
from bayesreg.fitted import Fitted
from bayesreg.latent import (
    NUMPYRO_LOCK,
    init_latent,
    latent_log_joint,
    split_draws,
)
from bayesreg.problem import Problem
from bayesreg.training.chains import reporting, run_chains
from bayesreg.training.results import no_valid_start

if TYPE_CHECKING:  # NumPyro is imported where it runs: ``import bayesreg`` stays light
    from numpyro.infer import NUTS as NumPyroNUTS

CHAIN_METHODS = ("sequential", "vectorized", "parallel")
EXTRA_FIELDS = ("diverging", "accept_prob", "num_steps", "energy", "potential_energy",
                "adapt_state.step_size")
DENSE_MASS_MAX = 100


@dataclasses.dataclass(frozen=True)
class NUTS:
    """Full Bayes by Hamiltonian Monte Carlo (NumPyro's NUTS), for every model and prior.

    A learned noise is sampled with σ ~ HalfNormal(noise_prior) (see
    ``bayesreg.GaussianLikelihood``); a prior scale that is itself a prior
    (``br.Gaussian(scale=br.HalfNormal(1.0))``) is sampled on the log scale.

    Parameters
    ----------
    num_warmup, num_samples : int
        Adaptation steps (discarded) and kept draws, per chain.
    num_chains : int
        Independent chains; R-hat compares them. Draws are S = num_chains × num_samples.
    chain_method : {"sequential", "vectorized", "parallel"}
        How chains run: one after another, batched with ``vmap`` on one device, or one
        per JAX device (falls back to sequential with NumPyro's warning when there are
        fewer devices than chains).
    target_accept : float
        Target acceptance probability of step-size adaptation; raise it (0.9, 0.95)
        when divergences appear.
    dense_mass : bool, optional
        Adapt a dense mass matrix instead of a diagonal one. ``None`` (default): dense when
        the latent vector has at most ``DENSE_MASS_MAX`` (100) coordinates. On the book's
        cubic polynomial (4 coefficients, x ∈ [0, 1]) dense adaptation raised the bulk ESS of
        2 × 1000 draws from 390–470 to about 2000 and cut leapfrog steps per draw from ~55
        to 5.
    max_tree_depth : int
        Cap on trajectory doubling (at most 2^depth leapfrog steps per draw).
    init_jitter : float
        Chains start at the model's initialisation plus U(−init_jitter, init_jitter).
    progress_bar : bool, optional
        Report progress (``bayesreg._progress``): a bar when stderr is a terminal, otherwise
        a line every 5 s such as ``NUTS: 700/3000 iterations (23%), 3.1 s, ~10 s left
        [chain 1/2, warmup]``. ``None`` (default): only once the run has taken 2 s, so short
        runs print nothing; ``True``: from the start; ``False``: never. The report is a host
        callback inside the kernel's step and does not change the draws. (NumPyro's own bar
        is not used: it steps one chain from Python, one dispatch per iteration.)

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

    def kernel(self, numpyro_model) -> NumPyroNUTS:
        """The NumPyro NUTS kernel with these settings (the low-level piece stays public)."""
        from numpyro.infer import NUTS as NumPyroNUTS

        return NumPyroNUTS(numpyro_model, target_accept_prob=self.target_accept,
                           dense_mass=self.dense_mass, max_tree_depth=self.max_tree_depth)

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
        with NUMPYRO_LOCK:  # NumPyro's handler stack is global (see _latent.NUMPYRO_LOCK)
            return self._run_locked(problem)

    def _run_locked(self, problem: Problem):
        model, lik, prior = problem.model, problem.likelihood, problem.prior
        init_key, run_key = jax.random.split(problem.key)
        inits = [ravel_pytree(init_latent(problem, k, self.init_jitter))[0]
                 for k in jax.random.split(init_key, self.num_chains)]
        template = init_latent(problem, init_key)
        leaves, treedef = jax.tree_util.tree_flatten(template)
        size = sum(int(np.prod(jnp.shape(a))) for a in leaves)
        method = (self if self.dense_mass is not None
                  else dataclasses.replace(self, dense_mass=size <= DENSE_MASS_MAX))
        shapes = tuple(jnp.shape(a) for a in leaves)
        structure = jax.tree_util.tree_structure((lik, prior))
        init = {"z": inits[0] if self.num_chains == 1 else jnp.stack(inits)}
        # on a cluster, parallel chains are split over the processes (bayesreg.mcmc)
        share = mcmc.process_chains(self.num_chains, self.chain_method == "parallel")
        sampler, unravel = _sampler(
            method if share is None else dataclasses.replace(method, num_chains=len(share)),
            model, treedef, shapes, structure)
        if share is not None:  # this process's chains, with the keys one process would use
            keys = jax.random.split(run_key, self.num_chains)[share]
            starts = jnp.stack(inits)[share]
            one = len(share) == 1  # NumPyro takes one key and one start for a single chain
            run_key, init = (keys[0], {"z": starts[0]}) if one else (keys, {"z": starts})
        start = time.perf_counter()
        args = (jnp.asarray(problem.X), jnp.asarray(problem.y), lik, prior)
        with _progress.active(_reporter(self)), no_valid_start(problem):
            if (self.chain_method == "parallel" and self.num_chains > 1) or share is not None:
                sampler.run(run_key, *args, init_params=init, extra_fields=EXTRA_FIELDS)
                z, extra = (sampler.get_samples(group_by_chain=True),
                            sampler.get_extra_fields(group_by_chain=True))
            else:  # compiled once per shapes (bayesreg.training.chains)
                z, extra = run_chains(
                    sampler.sampler, run_key, init, args, num_warmup=self.num_warmup,
                    num_samples=self.num_samples, num_chains=self.num_chains,
                    vectorized=self.chain_method == "vectorized", fields=EXTRA_FIELDS)
            flat_z = jax.block_until_ready(z["z"])
        if share is not None:  # every process gets every chain
            flat_z, extra = mcmc.all_chains((flat_z, extra), self.num_chains)
        seconds = time.perf_counter() - start
        z = jax.vmap(jax.vmap(unravel))(jnp.asarray(flat_z))
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


@functools.lru_cache(maxsize=16)
def _sampler(method: NUTS, model, treedef, shapes, data_structure):
    """A cached ``MCMC`` (and the latent vector's unravel) for these settings and shapes.
    NumPyro's own bar is off; unless ``progress_bar=False`` the kernel ticks
    :mod:`bayesreg._progress`."""
    import numpyro
    import numpyro.distributions as dist
    from numpyro.distributions import constraints
    from numpyro.infer import MCMC

    del data_structure  # part of the cache key: the likelihood and prior tree structure
    template = jax.tree_util.tree_unflatten(treedef, [jnp.zeros(s) for s in shapes])
    flat, unravel = ravel_pytree(template)

    def numpyro_model(X, y, likelihood, prior):
        z = numpyro.sample("z", dist.ImproperUniform(constraints.real, (), flat.shape))
        numpyro.factor("log_joint", latent_log_joint(model, likelihood, prior, unravel(z), X, y))

    kernel = method.kernel(numpyro_model)
    if method.progress_bar is not False:
        kernel = reporting(kernel, method.num_warmup + method.num_samples)
    sampler = MCMC(kernel, num_warmup=method.num_warmup,
                   num_samples=method.num_samples, num_chains=method.num_chains,
                   chain_method=method.chain_method, progress_bar=False, jit_model_args=True)
    return sampler, unravel


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
        "lp": -np.asarray(extra["potential_energy"]).reshape(-1),
        "step_size": np.asarray(extra["adapt_state.step_size"]).reshape(-1),
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
