"""Bagging with mean and median: ensembles of bootstrap fits beat their average member.

The book's 15-point example, 1-50-1 ReLU networks on bootstrap resamples. The mean
ensemble's squared error is at most the average member's (Jensen); the median ensemble
(the lecture's robust alternative) usually is too.
"""

import numpy as np
from _common import OUTPUT, cli, save

import bayesreg as br


def main(quick=False, out=OUTPUT):
    import matplotlib.pyplot as plt

    X, y = br.datasets.book_example(n=15, noise=0.3, seed=0)
    grid = np.linspace(0, 1, 300)
    truth = br.datasets.book_function(grid)
    kw = {"prior": br.Gaussian(3.0), "likelihood": br.GaussianLikelihood(0.3), "seed": 1}
    training = br.MAP(lr=0.03, steps=500 if quick else 3000)
    members = 8 if quick else 30
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    for ax, reduce in zip(axes, ("mean", "median"), strict=True):
        post = br.fit(br.MLP((50,)), X, y, method=br.Ensemble(
            members=members, bagging=True, reduce=reduce, training=training), **kw)
        pred = post.predict(grid)
        for i, draw in enumerate(pred.draws):
            ax.plot(grid, draw, color="C0", alpha=0.3, linewidth=0.8,
                    label=f"{members} members (one per bootstrap resample)" if i == 0 else None)
        ax.plot(grid, pred.point, "C3", linewidth=2, label=f"ensemble: {reduce} of the members")
        ax.plot(grid, truth, "k--", label="true function")
        ax.scatter(X[:, 0], y, color="k", s=12, zorder=3, label=f"{len(y)} training points")
        member = np.mean((pred.draws - truth) ** 2)
        ens = np.mean((pred.point - truth) ** 2)
        ax.set_title(f"{reduce} ensemble: MSE to the truth {ens:.3f}\n"
                     f"vs {member:.3f} for the average member", fontsize=10)
        ax.set_xlabel("x")
        ax.legend(fontsize=7)
        print(f"{reduce} ensemble MSE {ens:.4f}, average member MSE {member:.4f}")
    axes[0].set_ylabel("f(x)")
    fig.suptitle("Bagging: the ensemble (red) is closer to the truth than its average member")
    return save(fig, out, "bagging.png")


if __name__ == "__main__":
    cli(__doc__, main)
