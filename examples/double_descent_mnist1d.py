"""Double descent on MNIST-1D as the hidden layer widens.

A small training set (with 15% of labels replaced by random ones, as in the book's
experiment) fitted by one-hidden-layer networks of growing width, trained full-batch to
(near) zero training loss without a prior. Test error against width; the interpolation
threshold is where the parameter count passes the number of training labels. The figure
reports what this run measures.
"""

import numpy as np
from _common import OUTPUT, cli, save

import bayesreg as br


def main(quick=False, out=OUTPUT):
    import matplotlib.pyplot as plt

    X, y, X_test, y_test = br.datasets.mnist1d(n=1000 if quick else 4000)
    n_train = 200 if quick else 1000
    X, y = X[:n_train], y[:n_train].copy()
    rng = np.random.default_rng(0)
    noisy = rng.random(n_train) < 0.15
    y[noisy] = rng.integers(0, 10, noisy.sum())
    widths = (4, 32) if quick else (2, 4, 8, 16, 24, 32, 48, 64, 128, 256, 512)
    steps = 300 if quick else 6000
    train_err, test_err = [], []
    for w in widths:
        post = br.fit(br.MLP((w,)), X, y, likelihood=br.Categorical(10), prior=br.Flat(),
                      method=br.MAP(lr=0.01, steps=steps), seed=0)
        train_err.append(1 - post.predict(X).metrics(y)["accuracy"])
        test_err.append(1 - post.predict(X_test).metrics(y_test)["accuracy"])
        print(f"width {w} ({w * 51 + 10} parameters): train error {train_err[-1]:.3f}, "
              f"test error {test_err[-1]:.3f}")
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(widths, train_err, "o-", label=f"train ({n_train} signals, 15% labels random)")
    ax.plot(widths, test_err, "o-", label=f"test ({len(y_test)} signals)")
    ax.axvline(n_train * 10 / 51, color="k", linestyle=":",
               label="parameters = N · classes")
    ax.set_xscale("log")
    ax.set_xlabel("hidden units (one hidden layer)")
    ax.set_ylabel("error rate (fraction misclassified)")
    ax.set_title("Double descent: test error peaks where training error\n"
                 "first reaches 0, then falls as the network widens", fontsize=10)
    ax.legend(fontsize=8)
    return save(fig, out, "double_descent_mnist1d.png")


if __name__ == "__main__":
    cli(__doc__, main)
