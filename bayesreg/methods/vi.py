r"""Mean-field Gaussian variational inference through NumPyro's SVI with ``AutoNormal``.

The variational family is q(z) = Πⱼ N(zⱼ | μⱼ, ρⱼ²) over the unconstrained latent state z
(weights, log σ when the noise is learned, log s for sampled prior scales), fitted by
maximising the ELBO

    ELBO(μ, ρ) = E_q[log p(z, y)] − E_q[log q(z)]

with the reparameterisation gradient (``Trace_ELBO``) and an optax optimiser, in a loop
that NumPyro compiles into one program. For a Gaussian target N(m, A⁻¹) the optimum is
known in closed form — μ = m, ρⱼ² = 1/Aⱼⱼ (mean field under-states the marginal variances
of correlated coordinates) — and the tests check exactly that.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from bayesreg import _progress
from bayesreg import variational_noise as vn
from bayesreg._deprecated import renamed
from bayesreg._validation import Setting, check_settings
from bayesreg.fitted import Fitted
from bayesreg.latent import NUMPYRO_LOCK, init_latent, latent_log_joint, split_draws
from bayesreg.likelihoods import GaussianLikelihood
from bayesreg.priors import is_hierarchical
from bayesreg.problem import Problem
from bayesreg.training.results import check_progress
from bayesreg.training.trainer import latent_mode
from bayesreg.variational import inflation_warning, mean_field_check
from bayesreg.variational_noise import evidence_noise, residual_sum


@dataclasses.dataclass(frozen=True)
class VI:
    """Mean-field Gaussian VI (NumPyro ``SVI`` + ``AutoNormal``) on the log joint.

    Parameters
    ----------
    steps : int
        Optimisation steps on the ELBO.
    lr : float
        Peak learning rate of Adam; it decays to lr/100 along a cosine, which lets the
        noisy ELBO gradients settle.
    optimizer : optax.GradientTransformation, optional
        Replaces Adam and its schedule.
    num_particles : int
        Monte Carlo samples per ELBO gradient.
    init_scale : float
        Initial standard deviation of every factor of q. 0.01 (default): q starts nearly
        at the mode and widens where the data allow; at 0.1 — five times the prior's
        scale of a network's first layer when the prior is learned — q had not narrowed
        after 5 000 steps (diabetes, MLP(50): σ 74 against MAP's 51, coverage 1.00; at 0.01
        σ 59, coverage 0.97).
    num_samples : int
        Draws from q kept for the predictive and ArviZ export (``num_draws``, its old
        name, works for one release with a DeprecationWarning).
    init : {"map", "model"}
        Where the variational means start: at the mode of the log joint found by 500
        L-BFGS steps (default; on the book's 10-feature ReLU basis this took the test RMSE
        from 0.455 to that of the exact posterior), or at the model's initialisation.
        A hierarchical prior has no mode to start from and always uses "model"; where the
        mode interpolates its rows (σ below 1e-3 std y) σ starts at std y instead (12 rows,
        MLP(32): from σ = 3e-5 VI ended at ELBO −71 426 and covered 0.10; now −47.6, 1.00).
    noise : {"evidence", "elbo"}
        How a learned σ is set. ``"evidence"`` (default): q is fitted with a factor on
        log σ, then σ is the evidence's fixed point at q's mean, σ² = RSS(μ) / (N − γ) with
        γ the weights the full curvature counts as determined
        (:func:`bayesreg.variational_noise.evidence_noise`), and q is fitted again under that σ
        (``steps // 2`` more steps, from the first q). Mean field counts too many weights
        as determined, so the ELBO's own σ is too wide (diabetes, MLP(50): 58.7 against
        NUTS's 51.2, coverage 1.000; docs/methods/vi.md). Where q has pruned the network
        (its mean leaves over twice σ²N, σ the evidence's at the mode it started from) σ is
        set at that mode, under any prior family, and q fitted from there. Where γ cannot
        be formed (a prior that is not Gaussian, above 3 000 coordinates a flat prior on
        a weight or more than 3 000 rows, several tasks, above 2·10⁷ Jacobian entries) and with
        ``"elbo"``, σ is q's factor as fitted, and where the model nearly interpolates its
        rows (N − γ < 1: a warning). ``diagnostics["noise"]`` says which (``"given"`` for a σ
        given, ``"none"`` for a likelihood without one); ``diagnostics["elbo"]`` is the first
        fit's bound (σ in q), ``["elbo_at_noise"]`` the second's, with σ held.
    progress_bar : bool, optional
        Report progress (``bayesreg._progress``): a bar when stderr is a terminal, otherwise
        a line every 5 s such as ``VI: 2500/5000 steps (50%), 3.1 s, ~3 s left``. ``None``
        (default): only once the run has taken 2 s, so short runs print nothing; ``True``:
        from the start; ``False``: never (also for the L-BFGS start). The report is a host
        callback inside the compiled loop and does not change the result. (NumPyro's own
        bar is not used: it steps SVI from Python, one dispatch per step.)

    Examples
    --------
    >>> import numpy as np, bayesreg as br
    >>> X = np.linspace(0, 1, 20); y = 2 * X + 0.1
    >>> post = br.fit(br.Linear(), X, y, method=br.VI(steps=2000, progress_bar=False),
    ...               likelihood=br.GaussianLikelihood(0.1))
    >>> len(post.diagnostics["elbo"])
    2000
    """

    steps: int = 5000
    lr: float = 0.01
    optimizer: optax.GradientTransformation | None = None
    num_particles: int = 1
    init_scale: float = 0.01
    num_samples: int = 1000
    init: str = "map"
    noise: str = "evidence"
    progress_bar: bool | None = None
    num_draws: dataclasses.InitVar[int | None] = None  # the old name of num_samples

    def __post_init__(self, num_draws):
        object.__setattr__(self, "num_samples", renamed(
            "VI", "num_draws", num_draws, "num_samples", self.num_samples, default=1000))
        if self.init not in ("map", "model"):
            raise ValueError(f"init must be 'map' or 'model'; got {self.init!r}")
        if self.noise not in ("evidence", "elbo"):
            raise ValueError(f"noise must be 'evidence' or 'elbo'; got {self.noise!r}")
        check_settings(self, {
            "steps": Setting("int", 1), "lr": Setting("real", 0.0, low_open=True),
            "num_particles": Setting("int", 1),
            "init_scale": Setting("real", 0.0, low_open=True),
            "num_samples": Setting("int", 1), "progress_bar": Setting("bool", optional=True)})
        if self.optimizer is not None and not isinstance(self.optimizer,
                                                         optax.GradientTransformation):
            raise TypeError(f"VI optimizer must be None (Adam with a cosine schedule) or an "
                            f"optax GradientTransformation, e.g. optimizer=optax.adam(0.01); "
                            f"got {self.optimizer!r} ({type(self.optimizer).__name__})")

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["optimizer"] = "adam+cosine" if self.optimizer is None else "custom"
        return out

    def transform(self) -> optax.GradientTransformation:
        if self.optimizer is not None:
            return self.optimizer
        return optax.adam(optax.cosine_decay_schedule(self.lr, self.steps, alpha=0.01))

    def why_not_streamed(self, n: int, likelihood) -> str:
        """Why an X read by chunks is read into memory for this method (it never streams)."""
        del n, likelihood
        return ("VI needs every row in memory at once: "
                "the ELBO is evaluated on every row at each step")

    def supports(self, model, likelihood) -> bool:
        """Whether this method can fit ``model`` under ``likelihood`` (any model and likelihood)."""
        del model, likelihood
        return True

    def supports_tasks(self) -> bool:
        """Targets Y (N, T) of T tasks: the joint density sums each row's observed labels."""
        return True

    def fit(self, problem: Problem) -> Fitted:
        with NUMPYRO_LOCK:  # NumPyro's handler stack is global (see _latent.NUMPYRO_LOCK)
            return self._run_locked(problem)

    def _run_locked(self, problem: Problem):
        init_key, run_key, draw_key = jax.random.split(problem.key, 3)
        z0 = init_latent(problem, init_key)
        started_at_mode = self.init == "map" and not is_hierarchical(problem.prior)
        if started_at_mode:
            z0 = latent_mode(problem, z0, init_key, self.progress_bar)
        rss_known = (started_at_mode and isinstance(problem.likelihood, GaussianLikelihood)
                     and problem.y.ndim == 1)  # one Gaussian target: did q prune (below)?
        mode_rss = residual_sum(problem, z0["params"]) if rss_known else np.nan
        loc, scale, losses = self._svi(problem, z0, None, run_key, self, "VI")
        dof, gamma, inflation = mean_field_check(problem, z0, loc, scale)
        unravel = ravel_pytree(z0)[1]
        sigma_elbo = np.exp(np.asarray(unravel(loc)["theta"].get("log_noise", np.nan)))  # (T,)
        noise = None if self.noise != "evidence" or gamma is None else evidence_noise(
            problem, z0, loc, gamma)
        elbo = -losses  # the bound with σ in q, comparable across fits
        # q again under that σ, from the first q: each weight's factor narrows with σ; but a
        # q that switched off units the data need (its mean leaves > PRUNED_RSS × the
        # residual the mode's σ expects) has no fit to set σ at: σ at the mode, q from there
        start, start_scale, at = unravel(loc), dict(unravel(scale), theta={}), "mean"
        sigma_mode = vn.pruned(problem, z0, start["params"], mode_rss) if rss_known else None
        if self.noise == "evidence" and sigma_mode is not None:  # any prior family
            noise, start, start_scale, at = sigma_mode, z0, None, "mode"
        if noise is not None:
            given = dataclasses.replace(problem, likelihood=dataclasses.replace(
                problem.likelihood, noise=noise))
            z0 = dict(start, theta={})
            loc, scale, losses = self._svi(
                given, z0, start_scale, jax.random.fold_in(run_key, 1),
                dataclasses.replace(self, steps=max(1, self.steps // 2)), "VI under σ")
            unravel = ravel_pytree(z0)[1]
        else:  # σ stays the ELBO's: say why when it is wrong
            interpolates = self.noise == "evidence" and gamma is not None
            message = (vn.interpolation_warning(gamma, problem.n) if interpolates else
                       inflation_warning(dof, gamma, problem.n, inflation))
            if message:
                warnings.warn(message, UserWarning, stacklevel=4)
        rss = {"rss_mean": residual_sum(problem, unravel(loc)["params"]) if rss_known
               else np.nan, "rss_mode": mode_rss}
        if message := vn.pruning_warning(sigma_mode is not None, at, rss["rss_mean"], problem.n,
                                         noise):
            warnings.warn(message, UserWarning, stacklevel=4)
        eps = jax.random.normal(draw_key, (self.num_samples, loc.size))
        params, theta, hyper = split_draws(jax.vmap(unravel)(loc + scale * eps))
        if noise is not None:  # the evidence's σ, one value for every draw
            theta = {"log_noise": np.full(self.num_samples, np.log(noise), np.asarray(loc).dtype)}
        return Fitted(
            params=params, theta=theta, prior=problem.prior, hyper=hyper,
            diagnostics={"elbo": elbo, "final_elbo": float(np.mean(elbo[-100:])),
                         # under the evidence's σ: q's ELBO with σ held there
                         **({} if noise is None else {"elbo_at_noise": -losses}),
                         "variational_loc": np.asarray(loc),
                         "variational_scale": np.asarray(scale),
                         "noise": vn.noise_source(problem.likelihood, noise),
                         "noise_at": at if noise is not None else "",
                         "sigma_elbo": sigma_elbo,
                         "mean_field_dof": np.nan if dof is None else dof,
                         "posterior_dof": np.nan if gamma is None else gamma,
                         "sigma_inflation": np.nan if inflation is None else inflation,
                         **rss})

    def _svi(self, problem: Problem, z0, scale0, key, method, name: str):
        """(means, scales, −ELBO per step) of q fitted by ``method``'s settings from the
        means ``z0`` and the scales ``scale0`` (a pytree like z0; None: ``init_scale``)."""
        X, y = jnp.asarray(problem.X), jnp.asarray(problem.y)
        flat0, _ = ravel_pytree(z0)
        scale0 = (jnp.full_like(flat0, self.init_scale) if scale0 is None
                  else ravel_pytree(scale0)[0])
        shapes = tuple((a.shape, a.dtype) for a in jax.tree_util.tree_leaves(z0))
        run = _program(method, problem.model, jax.tree_util.tree_structure(z0), shapes)
        with _progress.active(_progress.Reporter(name, method.steps, enabled=self.progress_bar,
                                                 unit="steps")):
            loc, scale, losses = jax.block_until_ready(run(key, flat0, scale0, X, y,
                                                           problem.likelihood, problem.prior))
        losses = np.asarray(losses)
        # -ELBO is a sum over rows: a rise of more than a nat a row is no Monte Carlo noise
        check_progress(losses, "VI", self.lr, problem, scale=float(problem.n),
                       fix=f"a step too large (lower lr, now {self.lr}, e.g. lr={self.lr / 10:g})"
                       if self.optimizer is None else "a step too large for the optimizer given")
        return loc, scale, losses


@functools.lru_cache(maxsize=64)
def _program(method: VI, model, treedef, shapes):
    """SVI's whole run as one jitted program of (key, initial means, X, y, likelihood, prior),
    built once per configuration and parameter structure: a second fit of the same shapes
    compiles nothing, and the data are arguments, not constants baked into a program."""
    # NumPyro is imported here, where it runs: numpyro.infer costs 0.44 s after bayesreg
    import numpyro
    import numpyro.distributions as dist
    from numpyro.distributions import constraints
    from numpyro.distributions.transforms import biject_to
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.infer.autoguide import AutoNormal
    from numpyro.infer.initialization import init_to_uniform
    from numpyro.optim import optax_to_numpyro

    like = jax.tree_util.tree_unflatten(treedef, [jnp.zeros(s, d) for s, d in shapes])
    flat_like, unravel = ravel_pytree(like)

    def numpyro_model(X, y, likelihood, prior):
        z = numpyro.sample("z", dist.ImproperUniform(constraints.real, (), flat_like.shape))
        numpyro.factor("log_joint", latent_log_joint(model, likelihood, prior, unravel(z), X, y))

    steps = method.steps

    class ReportingSVI(SVI):  # every update ticks the progress report (see _progress)
        def update(self, svi_state, *args, **kwargs):
            new, loss = super().update(svi_state, *args, **kwargs)
            _progress.tick(new.optim_state[0], steps)  # numpyro.optim's step count
            return new, loss

    @jax.jit
    def run(key, flat0, scale0, X, y, likelihood, prior):
        # the guide and SVI are built inside the trace: an AutoNormal keeps its prototype
        # trace, whose values would be tracers of an earlier trace (a new N retraces)
        guide = AutoNormal(numpyro_model, init_loc_fn=init_to_uniform(radius=0.0),
                           init_scale=method.init_scale)
        cls = SVI if method.progress_bar is False else ReportingSVI
        svi = cls(numpyro_model, guide, optax_to_numpyro(method.transform()),
                  Trace_ELBO(num_particles=method.num_particles))
        state = svi.init(key, X, y, likelihood, prior)
        # the means and scales start where the caller says (radius 0 above only fills the
        # site); the optimiser holds the scales unconstrained, through the guide's transform
        params = dict(svi.optim.get_params(state.optim_state), z_auto_loc=flat0,
                      z_auto_scale=biject_to(AutoNormal.scale_constraint).inv(scale0))
        state = state._replace(optim_state=svi.optim.init(params))

        def step(state, _):
            return svi.update(state, X, y, likelihood, prior)

        state, losses = jax.lax.scan(step, state, None, length=steps)
        fitted = svi.get_params(state)
        return fitted["z_auto_loc"], fitted["z_auto_scale"], losses

    return run
