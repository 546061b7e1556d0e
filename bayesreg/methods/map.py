r"""Maximum a posteriori fitting: the regularised loss minimised with an optax optimiser.

The objective is the negative log joint per training point,

    J(φ, θ)/N = −(1/N) Σᵢ log p(yᵢ | xᵢ, φ, θ) − (1/N) log p(φ),

whose minimiser is the lecture's argmin_φ Σᵢ ℓᵢ + λ·g(φ) with λ·g = −log p(φ). Dividing
by N does not move the minimum; it keeps a learning rate meaningful across data sizes (the
lecture's sum-over-points update with rate α equals this one with rate α·N). A mini-batch
of B rows estimates the same objective without bias: −(1/B) Σ_batch log p − log p(φ)/N.

The whole loop — every epoch, every batch — is one ``lax.scan`` inside one ``jit``
(:mod:`bayesreg.training.loop`); the
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

import jax
import numpy as np

from bayesreg.fitted import Fitted
from bayesreg.latent import check_hierarchical
from bayesreg.problem import Problem
from bayesreg.training.heads import pooled
from bayesreg.training.trainer import Trainer


class MAP(Trainer):
    """Point estimate: minimise the negative log joint (loss + penalty) with optax.

    The settings are the training loop's (:class:`bayesreg.training.trainer.Trainer`, whose
    docstring lists them: ``optimizer``, ``lr``, ``steps``, ``batch_size``, ``epochs``,
    ``schedule``, ``momentum``, ``weight_decay``, ``noise_injection``, ``validation``,
    ``early_stopping``, ``restore_best``, ``progress_bar``, ``hyperparameters``,
    ``evidence_updates``); MAP runs that loop once from the model's initialisation and keeps
    the final (or best held-out) parameters as one draw.

    Examples
    --------
    >>> import bayesreg as br
    >>> br.MAP(optimizer="sgd", lr=0.1, batch_size=32, epochs=20).optimizer
    'sgd'
    """

    def supports(self, model, likelihood) -> bool:
        """Whether this method can fit ``model`` under ``likelihood`` (any model and likelihood)."""
        del model, likelihood
        return True

    def supports_tasks(self) -> bool:
        """Targets Y (N, T) of T regression tasks: one network with T outputs, σ per task."""
        return True

    def fit(self, problem: Problem) -> Fitted:
        check_hierarchical(problem.prior, "MAP")
        net = pooled(self.train(problem), members=False)  # several tasks: heads share a prior
        draws = jax.tree_util.tree_map(lambda a: np.asarray(a)[None], net.state)
        return Fitted(params=draws["params"], theta=draws["theta"], prior=net.prior,
                      diagnostics=net.diagnostics, X_train=net.rows.X, y_train=net.rows.y,
                      config=self.resolved(problem.model, problem.likelihood,
                                           problem.prior).to_dict())
