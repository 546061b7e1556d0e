"""L1 and sparsity: a Laplace prior's MAP estimate is the Lasso, and zeroes coefficients.

Ten features, three relevant. As the Laplace scale b shrinks, MAP (= Lasso with
alpha = σ²/(n b)) sets more coefficients to zero, while a Gaussian prior of the same variance
only shrinks them. The full posterior under the Laplace prior (NUTS) is not sparse: its
draws put no mass exactly at zero — sparsity belongs to the mode, not to the posterior.
"""

import warnings

import numpy as np
from _common import OUTPUT, cli, save

import bayesreg as br


def main(quick=False, out=OUTPUT):
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    n, d, sigma = 100, 10, 0.5
    X = rng.standard_normal((n, d))
    w_true = np.zeros(d)
    w_true[:3] = [2.0, -1.5, 1.0]
    y = X @ w_true + sigma * rng.standard_normal(n)
    lik = br.GaussianLikelihood(sigma)
    scales = np.logspace(-3, 0, 6 if quick else 12)
    lap, gau = [], []
    for b in scales:
        for path, prior in ((lap, br.Laplace(b)), (gau, br.Gaussian(np.sqrt(2) * b))):
            post = br.fit(br.Linear(), X, y, likelihood=lik,
                          prior={"weights": prior, "biases": br.Flat()})
            path.append(post.params["weights"][0][0, :, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        nuts = br.fit(br.Linear(), X, y, likelihood=lik,
                      prior={"weights": br.Laplace(0.01), "biases": br.Flat()},
                      method=br.NUTS(num_warmup=200 if quick else 500,
                                     num_samples=200 if quick else 1000))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    zeros = [int(np.sum(np.abs(c) < 1e-4)) for c in lap]
    axes[0].set_title(f"MAP, Laplace prior (Lasso): {zeros[0]} → {zeros[-1]} weights\n"
                      "exactly 0 as b grows", fontsize=10)
    axes[1].set_title("MAP, Gaussian prior of the same variance\n(Ridge): shrinks, never 0",
                      fontsize=10)
    for ax, path in zip(axes[:2], (lap, gau), strict=True):
        path = np.array(path)
        for j, c in enumerate(("C0", "C1", "C2")):
            ax.plot(scales, path[:, j], c, label=f"relevant $w_{j + 1}$ (true {w_true[j]:g})")
        ax.plot(scales, path[:, 3:], color="gray", linewidth=0.8)
        ax.plot([], [], color="gray", linewidth=0.8, label=f"{d - 3} irrelevant (true 0)")
        ax.set_xscale("log")
        ax.set_xlabel("prior scale b (Laplace); Gaussian sd √2·b")
        ax.set_ylabel("MAP weight")
    axes[1].legend(fontsize=7, loc="upper left")  # the Ridge paths leave that corner empty
    w = nuts.params["weights"][0][:, 5, 0]
    axes[2].hist(w, bins=40)
    axes[2].set_xlabel("$w_6$ (an irrelevant weight, true value 0)")
    axes[2].set_ylabel("NUTS draws")
    axes[2].set_title(f"posterior, Laplace prior b = 0.01: {int(np.sum(w == 0))} of "
                      f"{len(w)}\ndraws exactly 0 — the posterior is not sparse", fontsize=10)
    print(f"zero coefficients along the Laplace path: {zeros}")
    return save(fig, out, "l1_sparsity.png")


if __name__ == "__main__":
    cli(__doc__, main)
