"""MAP vs NUTS vs MC dropout vs ensembles (and Laplace, VI) on one 1-D problem with a gap.

Same 1-16-1 tanh network, same N(0, 1) prior, same noise; one panel per method, with its
test metrics and its distance (W₁) from the NUTS predictive (``br.compare``).
"""

import warnings

import numpy as np
from _common import OUTPUT, cli, save

import bayesreg as br


def main(quick=False, out=OUTPUT):
    from bayesreg import plots

    X, y = br.datasets.gap_example(n=40, noise=0.1, seed=0)
    X_test, y_test = br.datasets.gap_example(n=200, noise=0.1, seed=1)
    q = quick
    methods = [br.MAP(steps=1000 if q else 3000),
               br.LaplaceApprox(),
               br.VI(steps=1000 if q else 5000),
               br.MCDropout(rate=0.05, training=br.MAP(steps=1000 if q else 5000)),
               br.Ensemble(members=10, training=br.MAP(steps=1000 if q else 3000)),
               br.NUTS(num_warmup=200 if q else 1000, num_samples=200 if q else 1000)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        res = br.compare(br.MLP((16,), activation="tanh"), X, y, methods=methods,
                         X_test=X_test, y_test=y_test, prior=br.Gaussian(1.0),
                         likelihood=br.GaussianLikelihood(0.1))
    print(res.to_markdown())
    titles = {}
    for r in res.rows:  # each panel's test metrics, and its W₁ distance to NUTS
        w1 = (f", W₁ to NUTS {r['w1_to_nuts']:.3f}"
              if r.get("w1_to_nuts") is not None and r["method"] != "NUTS" else "")
        titles[r["method"]] = (f"{r['method']}\nRMSE {r['rmse']:.3f}, "
                               f"coverage_95 {r['coverage_95']:.2f}{w1}")
    fig = plots.compare(res, np.linspace(-1.8, 1.8, 300), truth=lambda x: np.sin(3 * x),
                        titles=titles)
    for ax in fig.axes:
        ax.title.set_fontsize(9)
    return save(fig, out, "map_vs_bayes_1d.png")


if __name__ == "__main__":
    cli(__doc__, main)
