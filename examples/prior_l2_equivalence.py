"""Prior ⇔ L2: Ridge, MAP and the posterior mode coincide; three prior scales (the book's figure).

With noise σ and prior N(0, s²) the MAP estimate is scikit-learn's Ridge(alpha=σ²/s²) and the
mean of the exact posterior. The figure shows, for σ_φ² = 1000, 100, 10, the Ridge fit,
the MAP fit and the posterior mean on top of each other, two posterior draws and the ±2σ
predictive band of the posterior (the book's Bayesian figure, fixed ReLU features).
"""

import numpy as np
from _common import OUTPUT, cli, save

import bayesreg as br


def main(quick=False, out=OUTPUT):
    import matplotlib.pyplot as plt
    from sklearn.linear_model import Ridge

    X, y = br.datasets.book_example(n=15, noise=0.3, seed=0)
    model, lik = br.relu_basis(10), br.GaussianLikelihood(0.3)
    grid = np.linspace(0, 1, 200)
    feats = np.asarray(model.features(grid[:, None].astype(np.float32)))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
    gaps = []
    for ax, var in zip(axes, (1000.0, 100.0, 10.0), strict=True):
        prior = br.Gaussian(np.sqrt(var))
        exact = br.fit(model, X, y, method=br.Exact(), prior=prior, likelihood=lik)
        point = br.fit(model, X, y, method=br.MAP(optimizer="lbfgs", steps=200 if quick else 500),
                       prior=prior, likelihood=lik)
        ridge = Ridge(alpha=br.l2_strength(prior, 0.3), fit_intercept=False)
        ridge.fit(np.column_stack([np.asarray(model.features(X.astype(np.float32))),
                                   np.ones(len(y))]), y)
        pred = exact.predict(grid)
        ridge_curve = np.column_stack([feats, np.ones(len(grid))]) @ ridge.coef_
        gaps.append(float(np.max(np.abs(point.predict(grid).mean - pred.mean))))
        gaps.append(float(np.max(np.abs(ridge_curve - pred.mean))))
        lo, hi = pred.mean - 2 * pred.std, pred.mean + 2 * pred.std
        ax.fill_between(grid, lo, hi, color="C0", alpha=0.2,
                        label="posterior predictive mean ± 2 sd (f and noise)")
        for s in (0, 1):
            ax.plot(grid, pred.draws[s], color="gray", linewidth=0.8,
                    label="2 posterior draws of f" if s == 0 else None)
        ax.plot(grid, pred.mean, "C0", linewidth=3, label="posterior mean")
        ax.plot(grid, point.predict(grid).mean, "C1--", label="MAP")
        ax.plot(grid, ridge_curve, "k:", label=r"Ridge, α = σ²/$\sigma_\phi^2$")
        ax.scatter(X[:, 0], y, color="k", s=12, zorder=3, label=f"{len(y)} training points")
        ax.set_title(rf"prior variance $\sigma_\phi^2$ = {var:g} (Ridge α = "
                     f"{br.l2_strength(prior, 0.3):.2g})")
        ax.set_xlabel("x")
    axes[0].set_ylabel("y")
    axes[2].legend(fontsize=7, loc="upper right")  # the narrowest band leaves room there
    fig.suptitle("Gaussian prior ⇔ L2 penalty: MAP (dashed) and Ridge (dotted) lie on the "
                 "posterior mean; a smaller prior variance smooths all three")
    print(f"largest gap between MAP / Ridge and the posterior mean: {max(gaps):.2e}")
    return save(fig, out, "prior_l2_equivalence.png")


if __name__ == "__main__":
    cli(__doc__, main)
