"""Multi-task learning: a task with few labels borrows the features the other tasks train.

Three regression tasks are linear read-outs of the same two nonlinear features
h(x) = (sin(2x₁ + x₂), cos(x₁ − 2x₂)) on x ∈ [−2, 2]². Tasks 0 and 1 have 300 labels; task 2
has 12 (the rest masked). One network with three outputs (a shared body, a head per task)
against the same network fitted to task 2's 12 labels alone: the shared body needs only
task 2's head to be learned from its 12 labels, and with the prior left out the heads share a
prior covariance learned from all three (docs/multitask.md), so that head lies in the span of
the heads the well-labelled tasks use.
"""

import numpy as np
from _common import OUTPUT, cli, save

import bayesreg as br


def main(quick=False, out=OUTPUT):
    import matplotlib.pyplot as plt

    X, Y, Xt, Yt = br.datasets.multitask_example(seed=0)
    mask = np.zeros(Y.shape, bool)
    mask[12:, 2] = True  # task 2: 12 labels
    net = br.MLP((32,), activation="tanh")
    method = br.MAP(steps=600) if quick else br.MAP()  # the prior and σ: learned
    multi = br.fit(net, X, np.ma.masked_array(Y, mask), method=method)
    alone = br.fit(net, X[:12], Y[:12, 2], method=method)
    pred_multi, pred_alone = multi.predict(Xt), alone.predict(Xt)
    fits = {"task 2 alone (12 labels)": pred_alone.mean,
            "multi-task (12 labels, 2 tasks × 300)": pred_multi.mean[:, 2]}
    fig, axes = plt.subplots(1, 2, figsize=(9, 4), sharex=True, sharey=True)
    lims = [Yt[:, 2].min() - 0.2, Yt[:, 2].max() + 0.2]
    for ax, (name, mean) in zip(axes, fits.items(), strict=True):
        rmse = np.sqrt(np.mean((mean - Yt[:, 2]) ** 2))
        print(f"{name}: test RMSE on task 2 {rmse:.3f}")
        ax.scatter(Yt[:, 2], mean, s=6, alpha=0.6)
        ax.plot(lims, lims, "k--", lw=1)
        ax.set_title(f"{name}\ntest RMSE {rmse:.3f}", fontsize=10)
        ax.set_xlabel("true y (task 2, 500 test rows)")
    axes[0].set_ylabel("predicted mean")
    metrics = pred_multi.metrics(Yt)
    print("multi-task, every task: " + ", ".join(f"task {t} RMSE {metrics[f'rmse_task{t}']:.3f}"
                                                 for t in range(3)))
    fig.suptitle("A task with 12 labels borrows the shared body of two tasks with 300",
                 fontsize=11)
    fig.tight_layout()
    return save(fig, out, "multitask.png")


if __name__ == "__main__":
    cli(__doc__, main)
