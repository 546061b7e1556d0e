"""The noise grid (σ chosen on validation rows, bayesreg.training.noise_grid) trains as a
single fit does."""

import numpy as np
import pytest

import bayesreg as br
from bayesreg.training import noise_grid


@pytest.mark.parametrize(("prior", "lr"), [(br.Gaussian(1.0), 0.05), (br.Laplace(1.0), 0.01)])
def test_the_grid_uses_the_rate_a_single_fit_resolves(monkeypatch, prior, lr):
    """Full-batch Adam's default rate is 0.05 under a smooth prior and 0.01 under an L1
    penalty (Trainer.resolved); the grid's networks resolve it the same way."""
    seen, real = [], noise_grid.run_members

    def spy(objective, method, *args, **kwargs):
        seen.append(method.lr)
        return real(objective, method, *args, **kwargs)

    monkeypatch.setattr(noise_grid, "run_members", spy)
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (60, 1))
    y = np.sin(2 * X[:, 0]) + 0.2 * rng.standard_normal(60)
    training = br.MAP(steps=20, hyperparameters="validation")
    post = br.fit(br.MLP((4,)), X, y, method=training, prior=prior, seed=0)
    assert seen == [lr]
    assert training.resolved(br.MLP((4,)), post.likelihood, {"weights": prior}).lr == lr
