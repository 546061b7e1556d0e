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
# # Notebook 9.4: Bayesian approach
#
# Prince, *Understanding Deep Learning* (MIT Press 2023), chapter 9 "Regularization",
# §9.3 heuristics — Bayesian inference, **Figure 9.11**; the book's companion notebook
# `Notebooks/Chap09/9_4_Bayesian_Approach.ipynb`.
#
# The book's 15 points and a network with a fixed first layer of 5 ReLU units
# (`br.relu_basis(5)`): the output layer is linear in its parameters φ = (ω, β), so with a
# Gaussian prior N(0, σ_p²I) and Gaussian noise σ² the posterior and the predictive are
# Gaussian in closed form — `br.Exact`. The notebook checks the library against the book's
# formulas, draws two parameter sets from the posterior, plots the predictive mean ± 2 sd,
# repeats with σ_p² = 1 (the book's exercise), and samples the same posterior with `br.NUTS`.
# `BAYESREG_QUICK=1` shortens the NUTS chains.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

import bayesreg as br

QUICK = os.environ.get("BAYESREG_QUICK") == "1"


def true_function(x):
    return np.exp(np.sin(x * (2 * 3.1413)))  # the book's constant


def generate_data(n_data, sigma_y=0.3):
    x = np.array([np.random.uniform(i / n_data, (i + 1) / n_data) for i in range(n_data)])  # noqa: NPY002 (the book's generator)
    y = true_function(x) + np.random.normal(0, sigma_y, n_data)  # noqa: NPY002 (the book's generator)
    return x, y


x_func = np.linspace(0, 1.0, 100)
y_func = true_function(x_func)
np.random.seed(1)  # noqa: NPY002 (the book's generator)
sigma_func, n_data = 0.3, 15
x_data, y_data = generate_data(n_data, sigma_func)


def plot_function(x_model=None, y_model=None, sigma_model=None, title=None):
    _, ax = plt.subplots()
    ax.plot(x_func, y_func, "k-")
    ax.plot(x_data, y_data, "o", color="#d18362")
    if x_model is not None:
        ax.plot(x_model, y_model, "-", color="#7fe7de")
    if sigma_model is not None:
        ax.fill_between(x_model, y_model - 2 * sigma_model, y_model + 2 * sigma_model,
                        color="lightgray")
    ax.set_xlim(0, 1)
    ax.set_xlabel("Input, $x$")
    ax.set_ylabel("Output, $y$")
    if title:
        ax.set_title(title)
    plt.show()


# %% [markdown]
# ## The posterior over φ, from the library and from the book's formula
#
# Pr(φ | data) = Norm[(1/σ²) A⁻¹Hy, A⁻¹] with A = HHᵀ/σ² + I/σ_p², H the hidden units
# (plus a row of ones for the bias) at the 15 inputs.

# %%
n_hidden, sigma_sq, sigma_p_sq = 5, sigma_func**2, 1000.0
model = br.relu_basis(n_hidden)
likelihood = br.GaussianLikelihood(sigma_func)


def compute_H(x, n_hidden):
    knots = np.linspace(0.0, 1.0, num=n_hidden, endpoint=False)
    return np.vstack([np.maximum(0, x[None, :] - knots[:, None]), np.ones((1, x.size))])


H = compute_H(x_data, n_hidden)
A = H @ H.T / sigma_sq + np.eye(n_hidden + 1) / sigma_p_sq
book_covar = np.linalg.inv(A)
book_mean = book_covar @ H @ y_data / sigma_sq

post = br.fit(model, x_data, y_data, method=br.Exact(), prior=br.Gaussian(np.sqrt(sigma_p_sq)),
              likelihood=likelihood)
m = post.mean_params()
lib_mean = np.concatenate([np.ravel(m["weights"][0]), np.ravel(m["biases"][0])])
print(f"log evidence (σ_p² = {sigma_p_sq:g}, 5 hidden units): {post.log_evidence:.2f}")
print("posterior mean φ (ω₁…ω₅, β):", np.round(lib_mean, 4).tolist())
print(f"largest gap to the book's formula: {np.max(np.abs(lib_mean - book_mean)):.2e}")

# %%
plot_function(x_func, post.predict(x_func).mean, title="posterior mean model")

# %% [markdown]
# ## Two draws from the posterior over φ

# %%
draws = post.predict(x_func).draws                 # (S, 100): one function per draw of φ
for s in (0, 1):
    plot_function(x_func, draws[s], title=f"posterior draw {s + 1}")

# %% [markdown]
# ## The predictive distribution (Figure 9.11)
#
# Pr(y* | x*) = Norm[(1/σ²) h*ᵀA⁻¹Hy, h*ᵀA⁻¹h*] for f(x*) (the book's formula, the
# epistemic part); y* adds the noise σ², which `pred.std` includes.

# %%
pred = post.predict(x_func)
h_star = compute_H(x_func, n_hidden)
book_var = np.einsum("in,ij,jn->n", h_star, book_covar, h_star)
print(f"largest gap of the epistemic sd to the book's formula: "
      f"{np.max(np.abs(pred.epistemic_std - np.sqrt(book_var))):.2e}")
print(f"predictive sd of y*: {pred.std.min():.3f} … {pred.std.max():.3f} "
      f"(noise alone {sigma_func})")
plot_function(x_func, pred.mean, pred.epistemic_std,
              title=f"σ_p² = {sigma_p_sq:g}: mean ± 2 sd of f")

# %% [markdown]
# ## The book's exercises: a tighter prior, more hidden units
#
# σ_p² = 1 pulls every φ towards 0: a flatter mean (it cannot reach the peaks) and a
# narrower band. More hidden units widen the band between the data.

# %%
for n_h, var in ((5, 1.0), (12, 1000.0), (12, 1.0)):
    post_h = br.fit(br.relu_basis(n_h), x_data, y_data, method=br.Exact(),
                    prior=br.Gaussian(np.sqrt(var)), likelihood=likelihood)
    p = post_h.predict(x_func)
    print(f"{n_h:2d} hidden units, σ_p² = {var:6g}: MSE to the true function "
          f"{np.mean((p.mean - y_func) ** 2):.3f}, mean sd of f {p.epistemic_std.mean():.3f}, "
          f"log evidence {post_h.log_evidence:.2f}")
    plot_function(x_func, p.mean, p.epistemic_std, f"{n_h} hidden units, σ_p² = {var:g}")

# %% [markdown]
# ## The same posterior by sampling: NUTS
#
# Where no closed form exists (a network whose first layer is learned too) the posterior
# must be sampled. On this conjugate problem `br.NUTS` should agree with `br.Exact` up to
# Monte Carlo error: the mean of f to about sd/√ESS.

# %%
nuts = br.NUTS(num_warmup=300 if QUICK else 1000, num_samples=500 if QUICK else 2000,
               num_chains=1 if QUICK else 2)
post_nuts = br.fit(model, x_data, y_data, method=nuts, prior=br.Gaussian(np.sqrt(sigma_p_sq)),
                   likelihood=likelihood, seed=0)
pn = post_nuts.predict(x_func)
print(f"NUTS vs Exact: largest gap of the mean of f {np.max(np.abs(pn.mean - pred.mean)):.3f}, "
      f"of its sd {np.max(np.abs(pn.epistemic_std - pred.epistemic_std)):.3f} "
      f"(largest sd {pred.epistemic_std.max():.3f})")
