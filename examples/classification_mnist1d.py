"""Classification on MNIST-1D: MAP, a deep ensemble and MC dropout, with calibration.

A 40-100-100-10 ReLU network, Categorical likelihood, N(0, 1) prior. Reported: accuracy,
NLL, Brier score, ECE and the mean mutual information (epistemic part of the entropy) on the
test signals; the figure shows reliability diagrams.
"""

import numpy as np
from _common import OUTPUT, cli, save

import bayesreg as br


def main(quick=False, out=OUTPUT):
    import matplotlib.pyplot as plt

    X, y, X_test, y_test = br.datasets.mnist1d(n=1000 if quick else 8000)
    steps = 300 if quick else 3000
    train = br.MAP(lr=0.003, steps=steps, batch_size=100)
    methods = {"MAP": train, "Ensemble(5)": br.Ensemble(members=5, training=train),
               "MC dropout": br.MCDropout(rate=0.1, num_samples=50, training=train)}
    fig, axes = plt.subplots(1, len(methods), figsize=(12, 3.6), sharey=True)
    for ax, (name, method) in zip(axes, methods.items(), strict=True):
        post = br.fit(br.MLP((100, 100)), X, y, method=method, likelihood=br.Categorical(10),
                      prior=br.Gaussian(1.0))
        pred = post.predict(X_test)
        m = pred.metrics(y_test)
        print(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in m.items()))
        conf = pred.probs.max(1)
        correct = pred.predict_class() == y_test
        edges = np.linspace(0, 1, 11)
        idx = np.clip(np.digitize(conf, edges[1:-1]), 0, 9)
        acc = [correct[idx == b].mean() if np.any(idx == b) else np.nan for b in range(10)]
        ax.bar(edges[:-1] + 0.05, acc, width=0.09, alpha=0.7, label="accuracy in the bin")
        ax.plot([0, 1], [0, 1], "k--", label="perfect calibration")
        ax.set_title(f"{name}: accuracy {m['accuracy']:.3f}, ECE {m['ece']:.3f}")
        ax.set_xlabel("confidence (top predicted probability)")
        ax.legend(fontsize=8, loc="upper left")
    axes[0].set_ylabel("test accuracy in the confidence bin")
    fig.suptitle(f"Reliability on MNIST-1D ({len(y_test)} test signals): bars below the "
                 "diagonal are overconfident")
    return save(fig, out, "classification_mnist1d.png")


if __name__ == "__main__":
    cli(__doc__, main)
