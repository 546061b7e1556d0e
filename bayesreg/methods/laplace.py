r"""The Laplace approximation: a Gaussian at the posterior mode.

With z the unconstrained latent state (weights, and log σ when the noise is learned) and
L(z) = −log p(z, y) its negative log joint:

    p(z | y) ≈ N(z*, H⁻¹),   z* = argmin L,   H = ∇²L(z*)
    log p(y) ≈ −L(z*) + (P/2) log 2π − ½ log |H|

``hessian="full"`` uses the exact Hessian; ``hessian="ggn"`` the generalised Gauss–Newton
matrix Jᵀ Λ J + ∇²(−log p(φ)) for the weights (J: Jacobian of the outputs, Λ: Hessian of
the negative log likelihood in the outputs, 1/σ² for Gaussian noise), which is positive
semi-definite even where a network's exact Hessian is not. The (log σ, log σ) block is
exact and the cross-terms with the weights are zero in the GGN (their Fisher information
vanishes). For a linear-in-parameters model with fixed Gaussian noise and a Gaussian prior
the log joint is quadratic, so the approximation — and the evidence — is exact.

The mode comes from :class:`bayesreg.MAP` (the ``training`` setting) and is then refined
by Newton steps with the same Hessian in float64, each kept only if it lowers L: on a
quadratic log joint one step lands on the mode to float64 precision.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from bayesreg import curvature
from bayesreg._deprecated import renamed
from bayesreg._lazy import linalg
from bayesreg._validation import Setting, check_settings
from bayesreg.conjugate import GaussianCoefficients
from bayesreg.fitted import Fitted
from bayesreg.last_layer import fit_last_layer
from bayesreg.latent import check_hierarchical, init_latent, split_draws
from bayesreg.likelihoods import GaussianLikelihood
from bayesreg.linearized import Linearization
from bayesreg.priors import is_proper
from bayesreg.problem import Problem
from bayesreg.training.newton import bucketed_newton_mode
from bayesreg.training.results import check_trace, learned_hyperparameters
from bayesreg.training.trainer import Trainer, check_training

HESSIANS = ("auto", "full", "ggn")
MAX_PARAMS = 20_000


@dataclasses.dataclass(frozen=True)
class LaplaceApprox:
    """Gaussian approximation N(z*, H⁻¹) at the mode of the log joint.

    (The Laplace *prior* is :class:`bayesreg.Laplace`.)

    Parameters
    ----------
    hessian : {"auto", "full", "ggn"}
        Curvature: exact Hessian, or generalised Gauss–Newton. "auto": full for
        linear-in-parameters models, GGN for networks.
    num_samples : int
        Draws from the Gaussian for the predictive and ArviZ export (``num_draws=``, its old
        name, still works with a DeprecationWarning).
    training : MAP or Trainer
        How the mode is found. Default: 1000 full-batch L-BFGS steps, which reach a
        stationary point of a small network's loss (gradient norm ~1e-3 on a 40-point toy)
        where Adam's 3000 steps stop at ~0.9 — the expansion needs a true mode. Under a
        heteroscedastic likelihood, whose mode is unbounded, the network is the one
        ``training`` gives as a MAP fit (10% of the rows held out, the best weights kept).
    newton_steps : int
        Float64 Newton refinements of the mode (each accepted only if it lowers the loss);
        none under a heteroscedastic likelihood.
    predictive : {"auto", "linearized", "sample"}
        How a network predicts: through the network linearised at the mode (the GLM
        predictive that matches the GGN, Immer et al. 2021), or by pushing weight draws
        through the nonlinear network. "auto": linearised for networks. Linear models are
        linear already: their predictive is analytic either way.
    subset : {"all", "last_layer"}
        Which parameters get the Gaussian. "all" (default): every one. "last_layer": only
        the last layer's weights and bias, the other layers fixed at the mode (Kristiadi et
        al. 2020; laplace-torch's default), with ``hessian`` "full" (= "ggn"; "auto") or
        "kron" and an analytic predictive (:mod:`bayesreg.last_layer`;
        ``predictive`` is then unused: f is linear in the last layer).

    Examples
    --------
    >>> import numpy as np, bayesreg as br
    >>> X = np.linspace(0, 1, 15); y = np.sin(6 * X)
    >>> lik, prior = br.GaussianLikelihood(0.3), br.Gaussian(1.0)
    >>> lap = br.fit(br.Polynomial(3), X, y, method=br.LaplaceApprox(), likelihood=lik,
    ...              prior=prior)
    >>> ex = br.fit(br.Polynomial(3), X, y, method=br.Exact(), likelihood=lik, prior=prior)
    >>> bool(np.isclose(lap.log_evidence, ex.log_evidence))
    True

    Only the last layer (here the model's one layer, so again the exact posterior):

    >>> ll = br.fit(br.Polynomial(3), X, y, likelihood=lik, prior=prior,
    ...             method=br.LaplaceApprox(subset="last_layer", hessian="kron"))
    >>> bool(np.isclose(ll.log_evidence, ex.log_evidence))
    True
    """

    hessian: str = "auto"
    num_samples: int = 1000
    training: Trainer = dataclasses.field(
        default_factory=lambda: Trainer(optimizer="lbfgs", steps=1000))
    newton_steps: int = 5
    predictive: str = "auto"
    subset: str = "all"
    num_draws: dataclasses.InitVar[int | None] = None  # the old name of num_samples

    def __post_init__(self, num_draws):
        object.__setattr__(self, "num_samples", renamed(
            "LaplaceApprox", "num_draws", num_draws, "num_samples", self.num_samples,
            default=1000))
        if self.predictive not in ("auto", "linearized", "sample"):
            raise ValueError("predictive must be 'auto', 'linearized' or 'sample'; "
                             f"got {self.predictive!r}")
        if self.subset not in ("all", "last_layer"):
            raise ValueError(f"subset must be 'all' or 'last_layer'; got {self.subset!r}")
        if self.hessian not in (*HESSIANS, "kron"):
            raise ValueError(f"hessian must be one of {(*HESSIANS, 'kron')}; got "
                             f"{self.hessian!r}")
        if self.hessian == "kron" and self.subset != "last_layer":
            raise ValueError("hessian='kron' is the Kronecker-factored last layer: it needs "
                             "subset='last_layer'")
        check_settings(self, {"num_samples": Setting("int", 1),
                              "newton_steps": Setting("int", 0)})
        check_training(self.training)

    def to_dict(self) -> dict:
        return {"hessian": self.hessian, "num_samples": self.num_samples,
                "newton_steps": self.newton_steps, "predictive": self.predictive,
                "training": self.training.to_dict(),
                **({"subset": self.subset} if self.subset != "all" else {})}

    def why_not_streamed(self, n: int, likelihood) -> str:
        """Why an X read by chunks is read into memory for this method (it never streams)."""
        del n, likelihood
        return ("LaplaceApprox needs every row in memory at once: its curvature sums over "
                "every row's Jacobian")

    def supports(self, model, likelihood) -> bool:
        """Whether this method can fit ``model`` under ``likelihood``: any model and
        likelihood (the Hessian is dense, so P ≤ MAX_PARAMS); with ``subset="last_layer"``
        a homoscedastic Gaussian likelihood only."""
        del model
        if self.subset == "last_layer":
            return isinstance(likelihood, GaussianLikelihood)
        return True

    def supports_tasks(self) -> bool:
        """Targets Y (N, T) of T tasks with every parameter (the GGN of all T outputs); the
        last-layer subset fits one target."""
        return self.subset != "last_layer"

    def fit(self, problem: Problem) -> Fitted:
        if self.subset == "last_layer":
            return fit_last_layer(self, problem)
        check_hierarchical(problem.prior, "LaplaceApprox")
        model, lik, prior = problem.model, problem.likelihood, problem.prior
        problem_likelihood = lik
        init_key, train_key, draw_key = jax.random.split(problem.key, 3)
        hook = self.training.evidence_hook(problem)
        learned = {}
        if hook is not None:
            # type-II maximum likelihood: σ and the prior scales from the Laplace–GGN
            # evidence during training; the Gaussian is then over the weights at those values
            state, trace = self.training.optimize(problem, problem.init_state(init_key),
                                                  train_key, hook=hook)
            prior, learned = learned_hyperparameters(problem, check_trace(
                trace, self.training.resolved(model).lr, problem), state)
            sigma = np.asarray(learned["noise_std"], np.float64)  # (T,) for T tasks
            lik = GaussianLikelihood(float(sigma) if sigma.ndim == 0 else sigma)
            problem = dataclasses.replace(problem, likelihood=lik, prior=prior)
            state = {"params": state["params"], "theta": {}, "hyper": {}}
        elif getattr(lik, "heteroscedastic", False):  # MAP's network: the best held out
            trained = self.training.train(problem)
            problem, trace = trained.rows, trained.diagnostics
            state = {"params": trained.state["params"], "theta": {}, "hyper": {}}
        else:
            state, trace = self.training.optimize(problem, init_latent(problem, init_key),
                                                  train_key, latent=True)
        losses = trace["losses"]
        flat32, unravel32 = ravel_pytree(state)
        if flat32.size > MAX_PARAMS:
            raise ValueError(f"LaplaceApprox builds a dense P × P Hessian; P = {flat32.size} "
                             f"> {MAX_PARAMS}. Use br.VI or a smaller model.")
        kind = self.hessian
        if kind == "auto":
            kind = "full" if getattr(model, "linear_in_params", False) else "ggn"
        # a heteroscedastic likelihood is unbounded at its mode: the Gaussian sits at the
        # weights with the best held-out likelihood, where MAP stops, not refined beyond
        refine = 0 if getattr(lik, "heteroscedastic", False) else self.newton_steps
        with jax.enable_x64(True):  # rows bucketed: a new size compiles no new program
            mode, H, loss, steps, grad_norm = bucketed_newton_mode(
                model, lik, prior, state, problem.X, problem.y, kind, refine)
        try:
            chol = linalg.cholesky(H, lower=True)
        except linalg.LinAlgError:
            eig = float(np.linalg.eigvalsh(H).min())
            raise ValueError(
                f"the Hessian at the mode is not positive definite (smallest eigenvalue "
                f"{eig:.3g}): the optimiser did not reach a minimum. Train longer "
                f"(training=br.MAP(steps=...)) or use hessian='ggn'") from None
        p = mode.size
        log_ev = float(-loss + 0.5 * p * math.log(2 * math.pi) - np.sum(np.log(np.diag(chol))))
        if not is_proper(prior):
            warnings.warn("log_evidence is nan: a Flat prior is improper and has no evidence",
                          UserWarning, stacklevel=3)
            log_ev_public = math.nan
        else:
            log_ev_public = log_ev
        eps = np.asarray(jax.random.normal(draw_key, (self.num_samples, p)), np.float64)
        flat_draws = mode + linalg.solve_triangular(chol.T, eps.T, lower=False).T
        draws = jax.vmap(unravel32)(jnp.asarray(flat_draws, flat32.dtype))
        params, theta, _ = split_draws(draws)
        if theta:  # keep log σ in float64
            log_noise = flat_draws[:, curvature.index_of(state, "theta")]  # (S, T)
            theta = {"log_noise": log_noise if problem.n_tasks > 1 else log_noise.reshape(-1)}
        gaussian = linearization = None
        cov = linalg.cho_solve((chol, True), np.eye(p))
        pidx = curvature.index_of(state, "params")
        linear = getattr(model, "linear_in_params", False)
        if linear and not lik.learned_noise and lik.kind == "regression":
            order = pidx[_weights_then_bias(state)]
            gaussian = GaussianCoefficients(mean=mode[order], chol_cov=linalg.cholesky(
                cov[np.ix_(order, order)], lower=True))
        elif not linear and self.predictive in ("auto", "linearized") \
                and lik.kind == "regression":
            mode_params = jax.tree_util.tree_map(
                np.asarray, unravel32(jnp.asarray(mode, flat32.dtype))["params"])
            linearization = Linearization(mode=mode_params, chol_cov=linalg.cholesky(
                cov[np.ix_(pidx, pidx)], lower=True))
        if hook is not None and hook.learn_noise:  # the user's likelihood, σ as learned
            lik = problem_likelihood
            theta = {"log_noise": np.tile(np.log(sigma), (self.num_samples,) + (1,) * sigma.ndim)}
        return Fitted(
            model=model, likelihood=lik, prior=prior, name="LaplaceApprox", params=params,
            theta=theta, X_train=problem.X, y_train=problem.y,
            diagnostics={**learned, "hessian": kind, "losses": np.asarray(losses),
                         "mode_loss": float(loss), "newton_steps": steps,
                         "grad_norm": grad_norm, "log_evidence_improper": log_ev,
                         "min_eigenvalue": float(np.linalg.eigvalsh(H).min()),
                         **{k: trace[k] for k in ("val_losses", "best_update") if k in trace}},
            log_evidence=log_ev_public, config=self.to_dict(),
            approximation=gaussian if gaussian is not None else linearization,
        )


def _weights_then_bias(state) -> np.ndarray:
    """Permutation from the flat state's order ([biases, weights], dict keys sorted) to
    the [w, b] order of :class:`GaussianCoefficients` (linear models: one of each)."""
    n_b = int(sum(np.size(b) for b in state["params"]["biases"]))
    n_w = int(sum(np.size(w) for w in state["params"]["weights"]))
    return np.concatenate([np.arange(n_b, n_b + n_w), np.arange(n_b)])
