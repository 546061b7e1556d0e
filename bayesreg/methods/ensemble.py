r"""Deep ensembles, bagging and anchored ensembles, trained together in one program.

M members start from different initialisations (and, with ``bagging``, see different
bootstrap resamples of the rows) and are trained by ``jax.vmap`` of the same compiled loop
that :class:`bayesreg.MAP` runs: one program for all members, not M. The members are the
posterior draws: the predictive is the equally weighted mixture over them, each with its
own noise when the noise is learned (a point estimate per member).

``anchored=True`` (Pearce et al. 2020, "randomised MAP sampling"): member m minimises

    −Σᵢ log N(yᵢ + σεᵢₘ | f(xᵢ), σ²) + ‖φ − φ_anc,m‖² / (2s²),   φ_anc,m ~ N(loc, s²)

— each member is regularised towards its own anchor drawn from the prior, and, with a fixed
noise σ, fits its own jittered targets. For a linear-Gaussian model the members are then
exact posterior draws: φ_m = A⁻¹(Φᵀ(y + σε)/σ² + Λ₀φ_anc) has mean m and covariance
A⁻¹(ΦᵀΦ/σ² + Λ₀)A⁻¹ = A⁻¹. Anchoring needs a Gaussian prior.

``reduce="median"`` makes the point prediction the median over members (the lecture's
median ensemble); intervals and densities still use the mixture.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from bayesreg._validation import Setting, check_settings
from bayesreg.fitted import Fitted
from bayesreg.latent import check_hierarchical
from bayesreg.priors import PARAM_GROUPS, Flat, Gaussian
from bayesreg.problem import Problem
from bayesreg.training import members as _members
from bayesreg.training.heads import pooled
from bayesreg.training.trainer import Trainer, check_training

REDUCE = ("mean", "median")


@dataclasses.dataclass(frozen=True)
class Ensemble:
    """M independently initialised MAP fits, vmapped, as posterior draws.

    The members are trained together by :func:`bayesreg.training.members.train_many`:
    sharded across JAX devices when there are several (and across processes after
    ``jax.distributed.initialize``); on an X read lazily from disk (a memmap), streamed
    when the members train on mini-batches (``training=br.MAP(batch_size=B)``, no validation
    or early stopping), without bagging or anchoring, on one device — every row is read
    once an epoch and all members train on it in one ``vmap``ped program. Otherwise such an
    X is read into memory up to a limit and refused above (docs: "Data larger than memory").

    Parameters
    ----------
    members : int
        Ensemble size M.
    bagging : bool
        Resample the rows with replacement for each member (the lecture's bagging).
    anchored : bool
        Regularise each member towards its own draw from the (Gaussian) prior and, with a
        fixed noise, jitter its targets: approximately Bayesian ensembling.
    reduce : {"mean", "median"}
        Point prediction ``pred.point``: mean or median over members.
    training : MAP or Trainer
        Optimiser settings shared by all members.

    Examples
    --------
    >>> import bayesreg as br
    >>> X, y = br.datasets.gap_example(n=40)
    >>> post = br.fit(br.MLP((16,)), X, y, method=br.Ensemble(members=4,
    ...               training=br.MAP(steps=300)))
    >>> post.num_draws
    4
    """

    members: int = 10
    bagging: bool = False
    anchored: bool = False
    reduce: str = "mean"
    training: Trainer = dataclasses.field(default_factory=Trainer)

    def __post_init__(self):
        check_settings(self, {"members": Setting("int", 1), "bagging": Setting("bool"),
                              "anchored": Setting("bool")})
        if self.reduce not in REDUCE:
            raise ValueError(f"reduce must be one of {REDUCE}; got {self.reduce!r}")
        check_training(self.training)

    def to_dict(self) -> dict:
        return {"members": self.members, "bagging": self.bagging, "anchored": self.anchored,
                "reduce": self.reduce, "training": self.training.to_dict()}

    def member_inputs(self, problem: Problem):
        """Per-member (initial states, keys, X, y, prior) and the vmap axes, as used by
        the compiled program (public so that a member can be re-run on its own)."""
        M = self.members
        state0, keys, X, y, prior, (data_axis, prior_axis) = _members.member_inputs(problem, M)
        bag_key, anchor_key, jitter_key = jax.random.split(problem.key, 5)[2:]
        if self.bagging:
            idx = jax.random.randint(bag_key, (M, problem.n), 0, problem.n)
            X, y, data_axis = X[idx], y[idx], 0
        if self.anchored:
            prior = self._anchors(problem, state0["params"], anchor_key)
            prior_axis = 0
            lik = problem.likelihood
            if getattr(lik, "kind", "") == "regression" and not lik.learned_noise \
                    and not lik.heteroscedastic:
                y = (y if data_axis == 0 else jnp.broadcast_to(y, (M, *y.shape)))
                y = y + lik.noise * jax.random.normal(jitter_key, y.shape, y.dtype)
                if data_axis is None:
                    X = jnp.broadcast_to(X, (M, *X.shape))
                data_axis = 0
        return state0, keys, X, y, prior, (data_axis, prior_axis)

    def _anchors(self, problem: Problem, params0, key):
        stacked = {}
        for g, k in zip(PARAM_GROUPS, jax.random.split(key, 2), strict=True):
            prior = problem.prior[g]
            if isinstance(prior, Flat):  # no leaves: nothing to stack, nothing to anchor
                stacked[g] = prior
                continue
            if not isinstance(prior, Gaussian) or isinstance(prior.loc, dict | list | tuple):
                raise ValueError(f"anchored ensembles need a Gaussian prior with a scalar loc; "
                                 f"the {g} prior is {prior!r}")
            leaves, treedef = jax.tree_util.tree_flatten(params0[g])
            ks = jax.random.split(k, max(1, len(leaves)))
            layered = isinstance(prior.scale, list | tuple)  # one scale per array
            scales = list(prior.scale) if layered else [prior.scale] * len(leaves)
            anchors = [prior.loc + s * jax.random.normal(kk, a.shape, a.dtype)
                       for a, kk, s in zip(leaves, ks, scales, strict=False)]
            scale = ([jnp.full((self.members,), s, jnp.float32) for s in scales] if layered
                     else jnp.full((self.members,), prior.scale, jnp.float32))
            stacked[g] = prior.replace_unchecked(
                scale=scale, loc=jax.tree_util.tree_unflatten(treedef, anchors))
        return stacked

    def supports(self, model, likelihood) -> bool:
        """Whether this method can fit ``model`` under ``likelihood`` (what its members' training
        supports)."""
        return self.training.supports(model, likelihood)

    def supports_tasks(self) -> bool:
        """Targets Y (N, T) of T tasks: every member is a multi-output MAP network."""
        return True

    # -- data read lazily from disk ---------------------------------------------------------
    def why_not_streamed(self, n: int, likelihood) -> str | None:
        """None when the members stream an X read lazily (a memmap); else why they cannot."""
        why = _members.why_not_streamed(self.training, n, likelihood, self.members)
        if why is None and self.bagging:
            why = "bagging resamples rows at random for each member"
        if why is None and self.anchored:
            why = "anchored members each fit their own jittered copy of y (not streamed yet)"
        return None if why is None else f"Ensemble needs every row in memory here: {why}"


    def fit(self, problem: Problem) -> Fitted:
        check_hierarchical(problem.prior, "Ensemble")
        if getattr(problem.model, "same_start", False) and not (self.bagging or self.anchored):
            raise ValueError("every member would start from the FunctionModel's one params and "
                             "fit the same rows: give it init=(key -> params) for random starts, "
                             "or use Ensemble(bagging=True) or Ensemble(anchored=True)")
        _members.check_streams(problem, self.why_not_streamed)
        # anchors are draws from the given prior: an anchored ensemble keeps it
        net = _members.train_many(self.training, problem, self.members,
                                  lambda rows, _: self.member_inputs(rows),
                                  learn_prior=not self.anchored)
        # several tasks: one prior covariance on the heads (members that see their own rows
        # or their own prior draw keep theirs)
        if not (self.bagging or self.anchored):
            net = pooled(net, members=True)
        return Fitted(
            model=problem.model, likelihood=problem.likelihood, prior=net.prior,
            name="Ensemble", params=jax.tree_util.tree_map(np.asarray, net.state["params"]),
            theta=jax.tree_util.tree_map(np.asarray, net.state["theta"]), X_train=net.rows.X,
            y_train=net.rows.y, diagnostics=net.diagnostics, config=self.to_dict(),
            point=self.reduce,
            draws_kind="independently trained ensemble members, not posterior samples",
        )
