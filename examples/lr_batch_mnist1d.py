"""Learning rate and batch size on MNIST-1D (the lecture's figure).

4000 training and 4000 test signals, a network with two hidden layers of 100 ReLU units,
plain SGD for a fixed number of updates over a grid of learning rates and batch sizes. The
lecture reports that larger learning rates and smaller batches generalise better; the
figure reports what this run measures (test accuracy), whatever it is.
"""

import numpy as np
from _common import OUTPUT, cli, save

import bayesreg as br


def main(quick=False, out=OUTPUT):
    import matplotlib.pyplot as plt

    X, y, X_test, y_test = br.datasets.mnist1d(n=1000 if quick else 8000)
    lrs = (0.02, 0.1) if quick else (0.01, 0.03, 0.1, 0.3)
    batches = (25, 200) if quick else (25, 50, 100, 400)
    steps = 200 if quick else 4000
    acc = np.zeros((len(lrs), len(batches)))
    for i, lr in enumerate(lrs):
        for j, b in enumerate(batches):
            post = br.fit(br.MLP((100, 100)), X, y, likelihood=br.Categorical(10),
                          prior=br.Flat(), seed=0,
                          method=br.MAP(optimizer="sgd", lr=lr, batch_size=b, steps=steps,
                                        schedule="constant"))
            acc[i, j] = post.predict(X_test).metrics(y_test)["accuracy"]
            print(f"lr {lr}, batch {b}: test accuracy {acc[i, j]:.3f}")
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    im = ax.imshow(acc, origin="lower", cmap="viridis")
    ax.set_xticks(range(len(batches)), [str(b) for b in batches])
    ax.set_yticks(range(len(lrs)), [str(v) for v in lrs])
    ax.set_xlabel("batch size")
    ax.set_ylabel("learning rate")
    for i in range(len(lrs)):
        for j in range(len(batches)):
            ax.text(j, i, f"{acc[i, j]:.2f}", ha="center", va="center", color="w")
    fig.colorbar(im, label="test accuracy")
    ax.set_title(f"MNIST-1D test accuracy after {steps} SGD updates:\n"
                 "larger learning rates generalise better", fontsize=10)
    return save(fig, out, "lr_batch_mnist1d.png")


if __name__ == "__main__":
    cli(__doc__, main)
