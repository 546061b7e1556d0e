# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Notebook 9.5: Augmentation
#
# Prince, *Understanding Deep Learning* (MIT Press 2023), chapter 9 "Regularization",
# §9.3 heuristics — data augmentation; the book's companion notebook
# `Notebooks/Chap09/9_5_Augmentation.ipynb` (which names no figure).
#
# MNIST-1D (Greydanus 2020, generated offline by the `mnist1d` package): 40-sample signals of
# ten digit templates. An MLP with two hidden layers of 200 ReLUs, batches of 100, with and
# without augmentation by a random circular shift and a random scale in [0.8, 1.2]. The book
# doubles its training set with augmented copies once; `br.MAP(augment=...)` draws a fresh
# augmentation of every mini-batch inside the compiled training loop.
#
# Full size (the default): 4 000 training and 4 000 test signals, 200 epochs. With
# `BAYESREG_QUICK=1`: 1 000 + 1 000 signals and 30 epochs, a smoke test only.

# %%
import os
import time

import jax
import matplotlib.pyplot as plt
import numpy as np

import bayesreg as br

QUICK = os.environ.get("BAYESREG_QUICK") == "1"
n_signals, epochs = (2000, 30) if QUICK else (8000, 200)

X, y, X_test, y_test = br.datasets.mnist1d(n=n_signals)  # half train, half test
print(f"Examples in training set: {len(y)}")
print(f"Examples in test set: {len(y_test)}")
print(f"Length of each example: {X.shape[-1]}")

# %% [markdown]
# ## The augmentation
#
# `br.augment.shift()` rotates each signal by its own random number of samples (points that
# fall off one end come back at the other); `br.augment.scale(0.8, 1.2)` multiplies it by a
# factor from U(0.8, 1.2); `compose` applies both, each with its own key.

# %%
aug = br.augment.compose(br.augment.shift(), br.augment.scale(0.8, 1.2))
examples = np.asarray(aug(jax.random.key(0), np.repeat(X[:1], 3, axis=0)))
fig, ax = plt.subplots(figsize=(7, 3))
ax.plot(X[0], "k-", lw=2, label=f"original (class {y[0]})")
for i, row in enumerate(examples):
    ax.plot(row, "--", label=f"augmented draw {i + 1}")
ax.set_xlabel("sample")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## Training without and with augmentation
#
# `br.MAP` with its defaults otherwise: Adam, peak learning rate 0.01 with a cosine decay,
# and — for a classification likelihood — the prior N(0, 1) on every parameter.

# %%
results = {}
for name, augment in (("without augmentation", None), ("shift + scale", aug)):
    start = time.perf_counter()
    post = br.fit(br.MLP((200, 200)), X, y, likelihood=br.Categorical(10), seed=0,
                  method=br.MAP(batch_size=100, epochs=epochs, augment=augment))
    seconds = time.perf_counter() - start
    train_error = float(np.mean(post.predict(X).predict_class() != y))
    test_error = float(np.mean(post.predict(X_test).predict_class() != y_test))
    results[name] = test_error
    print(f"{name}: train error {100 * train_error:3.2f}, test error {100 * test_error:3.2f} "
          f"(%), {seconds:.1f} s")

gain = results["without augmentation"] - results["shift + scale"]
print(f"augmentation lowers the test error by {100 * gain:.2f} percentage points")

# %%
fig, ax = plt.subplots()
ax.bar(list(results), [100 * e for e in results.values()], color=["C0", "C2"])
ax.set_ylabel("test error (%)")
ax.set_ylim(0, 100)
ax.set_title(f"MNIST-1D, {len(y)} training signals, {epochs} epochs")
plt.show()

# %% [markdown]
# Augmentation makes the training error *higher* (the network is asked to classify every
# shifted and rescaled version, not to memorise 4 000 signals) and the test error lower:
# the Bayesian reading (docs/augmentation.md) is a likelihood averaged over the
# transformations, an assumption that the class does not change under them.
