"""Self-supervised pretraining, then transfer as a prior (L2-SP), on MNIST-1D.

4 000 unlabelled training signals teach a 40-100-100 body a pretext task; 300 of them are
then labelled and a 10-class head is fitted under the prior N(φ₀, s²) centred on the
pretrained body (``br.transfer_prior``), starting from it (``br.warm_start``). Two pretext
tasks, both built from the signals alone:

* masked segment: zero 8 consecutive samples at a random place, regress the whole signal
  (40 outputs, Gaussian likelihood);
* spectrum clusters: k-means (64 clusters) on the magnitude of each signal's Fourier
  transform, which a circular shift leaves unchanged; the network predicts a signal's
  cluster from the signal shifted at random (``br.augment.shift``), so it has to learn
  features of the waveform's shape rather than of its position.

Compared on the 4 000 test signals, over seeds: the same network from scratch on the 300
labels (prior N(0, 1)), from scratch with the shift augmentation, fine-tuned from the
pretrained body under the plain L2 prior N(0, 1) (centred on zero), and L2-SP over a range
of s, and L2-SP (s = 0.1) with the shift augmentation while fitting the labels (against
scratch with it: how much the pretext adds beyond the invariance the augmentation already
teaches). The figure shows test error against s.
"""

import numpy as np
from _common import OUTPUT, cli, save

import bayesreg as br

HIDDEN = (100, 100)
SCALES = (0.01, 0.03, 0.1, 0.3, 1.0)


def masked_segment(X, rng, copies=4, width=8):
    """(inputs with a segment zeroed, the whole signals): ``copies`` masks per signal."""
    rows = np.repeat(np.arange(len(X)), copies)
    start = rng.integers(0, X.shape[1] - width + 1, len(rows))
    t = np.arange(X.shape[1])[None]
    mask = (t >= start[:, None]) & (t < start[:, None] + width)
    return np.where(mask, 0.0, X[rows]).astype(np.float32), X[rows]


def spectrum_clusters(X, rng, k=64, iterations=50):
    """k-means cluster of each signal's |FFT| (standardised): a label that ignores shifts."""
    F = np.abs(np.fft.rfft(X, axis=1))
    F = (F - F.mean(0)) / F.std(0)
    centres = F[rng.choice(len(F), k, replace=False)]
    for _ in range(iterations):
        label = np.argmin(((F[:, None] - centres[None]) ** 2).sum(-1), axis=1)
        centres = np.stack([F[label == j].mean(0) if np.any(label == j) else centres[j]
                            for j in range(k)])
    return label


def main(quick=False, out=OUTPUT):
    import matplotlib.pyplot as plt

    X, y, X_test, y_test = br.datasets.mnist1d(n=2000 if quick else 8000)
    n_labels, seeds = (100, (0,)) if quick else (300, (0, 1, 2))
    pretext_epochs, steps = (3, 300) if quick else (30, 2000)
    rng = np.random.default_rng(0)
    pretext = br.MAP(batch_size=100, lr=0.01, epochs=pretext_epochs)

    # the pretext tasks see the signals only, never y
    Xm, Ym = masked_segment(X, rng)
    masked = br.fit(br.MLP(HIDDEN), Xm, Ym, method=pretext, prior=br.Gaussian(1.0),
                    likelihood=br.GaussianLikelihood(0.3))
    clusters = spectrum_clusters(X, rng)
    spectral = br.fit(br.MLP(HIDDEN), X, clusters, prior=br.Gaussian(1.0),
                      likelihood=br.Categorical(64),
                      method=br.MAP(batch_size=100, lr=0.01, epochs=pretext_epochs,
                                    augment=br.augment.shift()))
    bodies = {"masked segment": masked, "spectrum clusters": spectral}
    print(f"pretext data: {len(X)} unlabelled signals; labelled: {n_labels}; "
          f"test: {len(y_test)}; seeds {list(seeds)}")

    Xl, yl = X[:n_labels], y[:n_labels]
    train = br.MAP(steps=steps, lr=0.01)

    def test_error(model, prior, method=train, seed=0):
        post = br.fit(model, Xl, yl, likelihood=br.Categorical(10), prior=prior,
                      method=method, seed=seed)
        return float(np.mean(post.predict(X_test).predict_class() != y_test))

    def over_seeds(*args, **kw):
        return np.array([test_error(*args, **kw, seed=s) for s in seeds])

    shifted = br.MAP(steps=steps, lr=0.01, augment=br.augment.shift())
    rows = {"scratch, N(0, 1)": over_seeds(br.MLP(HIDDEN), br.Gaussian(1.0)),
            "scratch + shift augmentation, N(0, 1)": over_seeds(
                br.MLP(HIDDEN), br.Gaussian(1.0), method=shifted)}
    curves = {}
    for name, source in bodies.items():
        start = br.warm_start(br.MLP(HIDDEN), source)
        rows[f"{name}: fine-tuned, plain L2 N(0, 1)"] = over_seeds(start, br.Gaussian(1.0))
        curves[name] = [over_seeds(start, br.transfer_prior(source, s)) for s in SCALES]
        for s, errors in zip(SCALES, curves[name], strict=True):
            rows[f"{name}: L2-SP N(φ₀, {s}²) body, N(0, 1) head"] = errors
        rows[f"{name}: L2-SP N(φ₀, 0.1²) + shift augmentation"] = over_seeds(
            start, br.transfer_prior(source, 0.1), method=shifted)
    width = max(map(len, rows))
    for name, errors in rows.items():
        print(f"{name:<{width}}  test error {errors.mean():.3f} ± {errors.std():.3f} "
              f"({', '.join(f'{e:.3f}' for e in errors)})")

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for (name, errs), marker in zip(curves.items(), "os", strict=True):
        mean = np.array([e.mean() for e in errs])
        ax.plot(SCALES, mean, marker=marker, label=f"L2-SP, {name} pretext")
        ax.axhline(rows[f"{name}: fine-tuned, plain L2 N(0, 1)"].mean(), ls=":",
                   color=ax.lines[-1].get_color(), label=f"fine-tuned, plain L2 ({name})")
    ax.axhline(rows["scratch, N(0, 1)"].mean(), color="k", ls="--", label="from scratch")
    ax.axhline(rows["scratch + shift augmentation, N(0, 1)"].mean(), color="gray", ls="-.",
               label="from scratch + shift augmentation")
    ax.set_xscale("log")
    ax.set_xlabel("prior scale s of the body around the pretrained φ₀")
    ax.set_ylabel(f"test error ({len(y_test)} signals)")
    ax.set_title(f"MNIST-1D, {n_labels} labels: a self-supervised body as the prior's centre "
                 f"(mean of {len(seeds)} seed{'s' * (len(seeds) > 1)})", fontsize=9)
    ax.legend(fontsize=7)
    return save(fig, out, "self_supervised_mnist1d.png")


if __name__ == "__main__":
    cli(__doc__, main)
