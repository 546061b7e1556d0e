"""Transfer learning as a prior centred on pretrained weights (L2-SP).

Pretrain a network on plenty of data from a related task (sin(3x)), then fit 8 points of
the target task (sin(3x) + 0.3x) with a prior N(φ_pretrained, s²) versus N(0, s²). The
pretrained-centred prior penalises ‖φ − φ₀‖² and transfers the shape.
"""

import numpy as np
from _common import OUTPUT, cli, save

import bayesreg as br


def main(quick=False, out=OUTPUT):
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    steps = 800 if quick else 4000
    Xs = rng.uniform(-1, 1, (400, 1))
    ys = np.sin(3 * Xs[:, 0]) + 0.05 * rng.standard_normal(400)
    source = br.fit(br.MLP((32, 32), activation="tanh"), Xs, ys, prior=br.Gaussian(3.0),
                    method=br.MAP(steps=steps), likelihood=br.GaussianLikelihood(0.05))
    phi0 = {g: [np.asarray(a[0]) for a in source.params[g]] for g in ("weights", "biases")}
    Xt = rng.uniform(-1, 1, (8, 1))
    yt = np.sin(3 * Xt[:, 0]) + 0.3 * Xt[:, 0] + 0.05 * rng.standard_normal(8)
    grid = np.linspace(-1, 1, 300)
    truth = np.sin(3 * grid) + 0.3 * grid
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, prior in (("prior N(0, 0.3²)", br.Gaussian(0.3)),
                        ("L2-SP prior N(φ₀, 0.3²)", br.Gaussian(0.3, loc=phi0))):
        post = br.fit(br.MLP((32, 32), activation="tanh"), Xt, yt, prior=prior,
                      method=br.MAP(steps=steps), likelihood=br.GaussianLikelihood(0.05))
        f = post.predict(grid).mean
        rmse = np.sqrt(np.mean((f - truth) ** 2))
        ax.plot(grid, f, label=f"{name}: RMSE {rmse:.3f}")
        print(f"{name}: RMSE to the target function {rmse:.3f}")
    ax.plot(grid, truth, "k--", label="target function")
    ax.scatter(Xt[:, 0], yt, color="k", zorder=3, label=f"{len(yt)} target points")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title("Transfer as a prior: centred on the pretrained weights φ₀,\n"
                 f"{len(yt)} points suffice to fit the target", fontsize=10)
    ax.legend(fontsize=8)
    return save(fig, out, "transfer_l2sp.png")


if __name__ == "__main__":
    cli(__doc__, main)
