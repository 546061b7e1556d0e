"""Early stopping: stop when the validation loss stops improving, keep the best weights.

A wide network on 40 noisy points overfits with a weak prior; MAP with
``validation=0.25, early_stopping=200`` holds out a quarter of the rows, stops 200 updates
after the best validation loss and restores those weights. Curves and both fits are drawn.
"""

import numpy as np
from _common import OUTPUT, cli, save

import bayesreg as br


def main(quick=False, out=OUTPUT):
    import matplotlib.pyplot as plt

    X, y = br.datasets.gap_example(n=40, noise=0.2, seed=1)
    steps = 2000 if quick else 8000
    common = {"optimizer": "adam", "lr": 0.01, "steps": steps, "schedule": "constant",
              "validation": 0.25}
    prior = br.Gaussian(30.0)
    full = br.fit(br.MLP((200, 200)), X, y, method=br.MAP(**common), prior=prior, seed=0)
    stopped = br.fit(br.MLP((200, 200)), X, y, method=br.MAP(**common, early_stopping=200),
                     prior=prior, seed=0)
    grid = np.linspace(-1.2, 1.2, 300)
    x_test = np.linspace(-1, 1, 400)
    truth = np.sin(3 * x_test)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    d = full.diagnostics
    updates = np.arange(1, len(d["val_losses"]) + 1)
    best = int(stopped.diagnostics["best_update"])
    val = np.asarray(d["val_losses"])
    axes[0].plot(updates, val, "C1", label="validation NLL of the full run (10 held-out points)")
    axes[0].axvline(best, color="k", linestyle=":",
                    label=f"early stopping (patience 200) keeps update {best}")
    axes[0].set_xscale("log")
    axes[0].set_ylim(val.min() - 0.2, min(val.max(), val.min() + 3))
    axes[0].set_xlabel("update (Adam, lr 0.01)")
    axes[0].set_ylabel("validation NLL [nats / point]")
    axes[0].set_title("validation loss per update: early stopping keeps the best weights\n"
                      "seen before 200 updates without improvement", fontsize=10)
    axes[0].legend(fontsize=8)
    for post, name in ((full, f"all {steps} updates"), (stopped, "early stopped")):
        rmse = np.sqrt(np.mean((post.predict(x_test).mean - truth) ** 2))
        axes[1].plot(grid, post.predict(grid).mean, label=f"{name} (RMSE to truth {rmse:.3f})")
        print(f"{name}: RMSE to the true function {rmse:.3f}")
    axes[1].plot(grid, np.sin(3 * grid), "k--", linewidth=1, label="true function sin(3x)")
    axes[1].scatter(X[:, 0], y, s=10, color="k", label=f"{len(y)} data points")
    axes[1].set_xlabel("x")
    axes[1].set_ylabel("y")
    axes[1].set_title("predictive mean: the early-stopped fit is smoother", fontsize=10)
    axes[1].set_ylim(-2.0, 1.3)  # room for the legend below the curves
    axes[1].legend(fontsize=8, ncol=2, loc="lower center")
    return save(fig, out, "early_stopping.png")


if __name__ == "__main__":
    cli(__doc__, main)
