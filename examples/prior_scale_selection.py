"""Choosing the prior scale: a validation set (the lecture) next to the evidence (Bayes).

Both curves over the same grid of prior scales for the book's example with fixed ReLU
features; 5-fold cross-validation too. The evidence uses all 30 points and needs no split.
"""

import numpy as np
from _common import OUTPUT, cli, save

import bayesreg as br


def main(quick=False, out=OUTPUT):
    import matplotlib.pyplot as plt

    X, y = br.datasets.book_example(n=30, noise=0.3, seed=3)
    scales = np.logspace(-1, 2, 7 if quick else 16)
    lik = br.GaussianLikelihood(0.3)
    # three different quantities, each in its own units (higher is better for all)
    ylabels = {"evidence": "log evidence log p(y | s)  [nats, 30 points]",
               "validation": "held-out log density  [nats / point]",
               "cv": "5-fold CV log density  [nats / point]"}
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharex=True)
    for ax, by in zip(axes, ("evidence", "validation", "cv"), strict=True):
        sel = br.select_prior_scale(br.relu_basis(10), X, y, scales=scales, by=by,
                                    likelihood=lik, method=None if by == "evidence" else
                                    br.Exact())
        ax.plot(sel.scales, sel.scores, "o-", label=f"{by} score")
        ax.axvline(sel.best_scale, color="k", linestyle=":",
                   label=f"best s = {sel.best_scale:.3g}")
        ax.set_xscale("log")
        ax.set_title(f"{by}: best s = {sel.best_scale:.3g}")
        ax.set_xlabel("prior scale s (prior sd of each weight)")
        ax.set_ylabel(ylabels[by], fontsize=8)
        ax.legend(fontsize=7)
        print(f"{by}: best prior scale {sel.best_scale:.3g}")
    fig.suptitle("choosing the prior scale: do the three criteria peak at the same s? "
                 "(higher is better)", fontsize=10)
    fig.tight_layout()
    return save(fig, out, "prior_scale_selection.png")


if __name__ == "__main__":
    cli(__doc__, main)
