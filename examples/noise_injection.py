"""Adding noise to inputs, weights and labels at each step: three regularizers from the lecture.

Each panel trains the same wide network with one kind of noise at three strengths; more
noise gives smoother fits. (For a linear model, input noise σₓ is ridge with λ = σₓ² on the
mean squared error — a test in the suite checks that.)
"""

import numpy as np
from _common import OUTPUT, cli, save

import bayesreg as br


def main(quick=False, out=OUTPUT):
    import matplotlib.pyplot as plt

    X, y = br.datasets.gap_example(n=40, noise=0.15, seed=2)
    grid = np.linspace(-1.2, 1.2, 300)
    levels = {"inputs": (0.0, 0.05, 0.2), "weights": (0.0, 0.02, 0.1),
              "labels": (0.0, 0.2, 0.6)}
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharey=True)
    for ax, (kind, sds) in zip(axes, levels.items(), strict=True):
        for sd in sds:
            post = br.fit(br.MLP((100, 100)), X, y, prior=br.Gaussian(10.0), seed=0,
                          likelihood=br.GaussianLikelihood(0.15),
                          method=br.MAP(steps=600 if quick else 4000, noise_injection={kind: sd}))
            rmse = post.predict(X).metrics(y)["rmse"]
            ax.plot(grid, post.predict(grid).mean,
                    label=f"noise sd {sd}" + (" (none)" if sd == 0 else "")
                    + f": train RMSE {rmse:.3f}")
            print(f"{kind} noise {sd}: train RMSE {rmse:.3f}")
        ax.scatter(X[:, 0], y, s=10, color="k", label=f"{len(y)} training points")
        ax.set_title(f"Gaussian noise added to the {kind} at each update", fontsize=10)
        ax.set_xlabel("x")
        ax.legend(fontsize=7, loc="lower right")
    axes[0].set_ylabel("MAP fit f(x)")
    fig.suptitle("Noise injection: more noise, smoother fit of a 1-100-100-1 network "
                 "(higher training RMSE)")
    return save(fig, out, "noise_injection.png")


if __name__ == "__main__":
    cli(__doc__, main)
