"""Dropout and continuous dropout: Bernoulli, Gaussian and uniform masks as MC dropout.

The same 1-50-1 network trained with each mask from the lecture (Bernoulli; Gaussian
N(1, p/(1−p)), the lecture's N(0.5, σ²) rescaled; uniform U(0, 1) rescaled by 2), then
predicting with the masks on: the spread of the stochastic forward passes is the band.
"""

import numpy as np
from _common import OUTPUT, cli, save

import bayesreg as br


def main(quick=False, out=OUTPUT):
    import matplotlib.pyplot as plt

    from bayesreg import plots

    X, y = br.datasets.gap_example(n=60, noise=0.1, seed=0)
    grid = np.linspace(-1.6, 1.6, 300)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharey=True)
    for ax, mask in zip(axes, ("bernoulli", "gaussian", "uniform"), strict=True):
        post = br.fit(br.MLP((50,)), X, y, prior=br.Gaussian(3.0),
                      likelihood=br.GaussianLikelihood(0.1),
                      method=br.MCDropout(rate=0.1, mask=mask, num_samples=100,
                                          training=br.MAP(lr=0.01,
                                                          steps=800 if quick else 5000)))
        pred = post.predict(grid)
        plots.bands(pred, grid, X=X, y=y, ax=ax, label="predictive mean",
                    ylabel="y" if mask == "bernoulli" else "")
        ax.set_title(f"{mask} masks: epistemic std {pred.epistemic_std[150]:.2f} in the gap "
                     f"(x = 0),\n{pred.epistemic_std[-1]:.2f} outside the data (x = 1.6)",
                     fontsize=10)
        print(f"{mask}: epistemic std at x=0 (gap) {pred.epistemic_std[150]:.3f}, "
              f"at x=1.6 {pred.epistemic_std[-1]:.3f}")
    fig.suptitle("MC dropout with three mask distributions: the bands widen away from the "
                 "data (|x| > 1), barely in the gap")
    return save(fig, out, "dropout.png")


if __name__ == "__main__":
    cli(__doc__, main)
