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
# # Notebook 9.3: Ensembling (and dropout's test-time rule)
#
# Prince, *Understanding Deep Learning* (MIT Press 2023), chapter 9 "Regularization",
# §9.3 heuristics to improve performance — ensembling (bagging, mean or median) and
# dropout; the book's companion notebook `Notebooks/Chap09/9_3_Ensembling.ipynb` (which names
# no figure; the network is the one of Figure 8.4).
#
# The book's 15 noisy points of exp(sin(2πx)) and a network whose first layer is fixed —
# ReLU units max(0, x − k/14), k = 0 … 13 (`br.relu_basis(14)`) — so the fit is a least
# squares problem solved in closed form (`br.Exact`). Four fits on bootstrap resamples
# (`br.Ensemble(bagging=True)`), combined by the median or the mean, beat the fit to the
# original data. Then dropout: the test-time weight-scaling rule next to MC dropout.
# `BAYESREG_QUICK=1` shortens the dropout training.

# %%
import os
import warnings

import jax
import matplotlib.pyplot as plt
import numpy as np

import bayesreg as br

QUICK = os.environ.get("BAYESREG_QUICK") == "1"
# the flat prior on the bias (the book's choice) has no evidence; nothing here needs one
warnings.filterwarnings("ignore", message="log_evidence is nan")


def true_function(x):
    return np.exp(np.sin(x * (2 * 3.1413)))  # the book's constant


def generate_data(n_data, sigma_y=0.3):
    """The book's generator: x quasi-uniform (one point per 1/n interval), Gaussian noise."""
    x = np.array([np.random.uniform(i / n_data, (i + 1) / n_data) for i in range(n_data)])  # noqa: NPY002 (the book's generator)
    y = true_function(x) + np.random.normal(0, sigma_y, n_data)  # noqa: NPY002 (the book's generator)
    return x, y


x_func = np.linspace(0, 1.0, 100)
y_func = true_function(x_func)
np.random.seed(1)  # noqa: NPY002 (the book's generator)
sigma_func, n_data = 0.3, 15
x_data, y_data = generate_data(n_data, sigma_func)


def plot_function(x_model=None, y_model=None, title=None, band=None):
    _, ax = plt.subplots()
    ax.plot(x_func, y_func, "k-")
    ax.fill_between(x_func, y_func - 2 * sigma_func, y_func + 2 * sigma_func, color="lightgray")
    ax.plot(x_data, y_data, "o", color="#d18362")
    if x_model is not None:
        ax.plot(x_model, y_model, "-", color="#7fe7de")
    if band is not None:
        ax.fill_between(x_model, band[0], band[1], color="#7fe7de", alpha=0.3)
    ax.set_xlim(0, 1)
    ax.set_xlabel("Input, $x$")
    ax.set_ylabel("Output, $y$")
    if title:
        ax.set_title(title)
    plt.show()


# %% [markdown]
# ## The closed-form fit
#
# The book adds "a tiny bit of regularization", 10⁻⁵ on the weights and none on the bias:
# a sum-of-squares L2 strength λ = 10⁻⁵, i.e. the prior N(0, s²) with λ = σ²/s²
# (`br.prior_from_l2`) on the weights and a flat prior on the bias. `br.Exact` gives the
# posterior; its mean is the book's (AᵀA + λI)⁻¹Aᵀy.

# %%
model = br.relu_basis(14)
noise = br.GaussianLikelihood(sigma_func)
prior = {"weights": br.prior_from_l2(1e-5, noise=sigma_func), "biases": br.Flat()}
fit_kw = {"prior": prior, "likelihood": noise}

post = br.fit(model, x_data, y_data, method=br.Exact(), **fit_kw)
y_model = post.predict(x_func).mean
plot_function(x_func, y_model, "closed-form fit to the 15 points")
print(f"Mean square error = {np.mean((y_model - y_func) ** 2):3.3f}")

# %% [markdown]
# ## Four fits on bootstrap resamples
#
# `br.Ensemble(members=4, bagging=True)` resamples the 15 points with replacement for each
# member and fits each (here by L-BFGS to the same mode the closed form gives); `reduce`
# says how the members' predictions combine.

# %%
training = br.MAP(optimizer="lbfgs", steps=300)
ensembles = {reduce: br.fit(model, x_data, y_data, seed=1, method=br.Ensemble(
    members=4, bagging=True, reduce=reduce, training=training), **fit_kw)
    for reduce in ("median", "mean")}
draws = ensembles["mean"].predict(x_func).draws          # (4, 100): one curve per member
for c_model, draw in enumerate(draws):
    plot_function(x_func, draw, f"member {c_model + 1} (bootstrap resample)")
    print(f"Mean square error = {np.mean((draw - y_func) ** 2):3.3f}")

# %%
for reduce, ens in ensembles.items():
    combined = ens.predict(x_func).point              # the members' median or mean
    plot_function(x_func, combined, f"{reduce} of the 4 members")
    print(f"{reduce}: Mean square error = {np.mean((combined - y_func) ** 2):3.3f}")
print(f"average member: Mean square error = {np.mean((draws - y_func) ** 2):3.3f}")

# %% [markdown]
# Both combinations are closer to the true function than the average member (for the mean
# this is Jensen's inequality: the squared error of the mean is at most the mean squared
# error), at four times the training and prediction cost.
#
# ## Dropout: weight scaling at test time, or Monte Carlo dropout
#
# The lecture's rule: train dropping each hidden unit with probability 1 − p (keep it with
# probability p); at test time drop nothing and scale each unit's output by p, so every unit
# passes on its expected training-time value. `br.MLP(dropout=q)` uses *inverted* dropout —
# the kept units are divided by 1 − q during training — so the network used at test time
# with nothing dropped already is the weight-scaled network (its weights are the
# conventional network's weights times 1 − q). Monte Carlo dropout (Gal & Ghahramani 2016,
# `br.MCDropout`) instead keeps dropping at test time and averages S masked passes: the
# average approximates the weight-scaled prediction for a near-linear network, and the
# spread between passes is an uncertainty estimate the scaling rule throws away.

# %%
q = 0.2
net = br.MLP((100,), dropout=q)
steps = 1000 if QUICK else 4000
post_do = br.fit(net, x_data, y_data, method=br.MAP(lr=0.01, steps=steps), seed=0,
                 prior=br.Gaussian(3.0), likelihood=noise)
params = post_do.mean_params()                   # the one trained network

scaled = np.asarray(net.apply(params, x_func[:, None]))[:, 0]           # weight scaling
S = 500
keys = jax.random.split(jax.random.key(0), S)
passes = np.asarray(jax.vmap(lambda k: net.apply(params, x_func[:, None], key=k))(keys))[..., 0]
mc = passes.mean(0)
print(f"weight scaling (one deterministic pass): Mean square error = "
      f"{np.mean((scaled - y_func) ** 2):3.3f}")
print(f"MC dropout, average of {S} masked passes: Mean square error = "
      f"{np.mean((mc - y_func) ** 2):3.3f}")
print(f"largest gap between the two predictions: {np.max(np.abs(scaled - mc)):.3f}; "
      f"MC standard error of the average at most {passes.std(0).max() / np.sqrt(S):.3f}")
plot_function(x_func, mc, "MC dropout: mean ± 2 sd of the masked passes",
              band=(mc - 2 * passes.std(0), mc + 2 * passes.std(0)))

# %% [markdown]
# `br.MCDropout` trains with the dropout objective and predicts by masked passes, giving a
# `Predictive` like every other method:

# %%
mcd = br.fit(br.MLP((100,)), x_data, y_data, seed=0, method=br.MCDropout(
    rate=q, num_samples=200, training=br.MAP(lr=0.01, steps=steps)),
    prior=br.Gaussian(3.0), likelihood=noise)
pred = mcd.predict(x_func)
print(f"br.MCDropout: Mean square error = {np.mean((pred.mean - y_func) ** 2):3.3f}, "
      f"mean epistemic sd {pred.epistemic_std.mean():.3f}")
