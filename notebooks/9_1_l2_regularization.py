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
# # Notebook 9.1: L2 regularization
#
# Prince, *Understanding Deep Learning* (MIT Press 2023), chapter 9 "Regularization",
# §9.1 explicit regularization (§9.1.1 its probabilistic interpretation, §9.1.2 L2),
# **Figure 9.1**; the book's companion notebook `Notebooks/Chap09/9_1_L2_Regularization.ipynb`.
#
# Gradient descent on the Gabor model of chapter 6 from (2.6, 8.5) falls into a local
# minimum. The book adds λ(φ₀² + (φ₁ − 12.5)²): weak knowledge that the answer lies near
# (0, 12.5). In bayesreg that term *is* a prior: `br.Gaussian(s, loc=[0, 12.5])` with
# λ = σ²/s² (`br.prior_from_l2`), its penalty ‖φ − loc‖²/(2s²) times 2σ² giving the book's
# λ·g[φ]. `BAYESREG_QUICK=1` changes nothing here.

# %%
import os

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

import bayesreg as br

jax.config.update("jax_enable_x64", True)
QUICK = os.environ.get("BAYESREG_QUICK") == "1"

data = np.array([
    [-1.920e+00, -1.422e+01, 1.490e+00, -1.940e+00, -2.389e+00, -5.090e+00, -8.861e+00,
     3.578e+00, -6.010e+00, -6.995e+00, 3.634e+00, 8.743e-01, -1.096e+01, 4.073e-01,
     -9.467e+00, 8.560e+00, 1.062e+01, -1.729e-01, 1.040e+01, -1.261e+01, 1.574e-01,
     -1.304e+01, -2.156e+00, -1.210e+01, -1.119e+01, 2.902e+00, -8.220e+00, -1.179e+01,
     -8.391e+00, -4.505e+00],
    [-1.051e+00, -2.482e-02, 8.896e-01, -4.943e-01, -9.371e-01, 4.306e-01, 9.577e-03,
     -7.944e-02, 1.624e-01, -2.682e-01, -3.129e-01, 8.303e-01, -2.365e-02, 5.098e-01,
     -2.777e-01, 3.367e-01, 1.927e-01, -2.222e-01, 6.352e-02, 6.888e-03, 3.224e-02,
     1.091e-02, -5.706e-01, -5.258e-02, -3.666e-02, 1.709e-01, -4.805e-02, 2.008e-01,
     -1.904e-01, 5.952e-01]])


def model(phi, x):
    z = phi[0] + 0.06 * phi[1] * x
    return jnp.sin(z) * jnp.exp(-z * z / 32)


def compute_loss(phi, x=data[0], y=data[1]):
    return jnp.sum((model(phi, x) - y) ** 2)



grad = jax.jit(jax.grad(compute_loss))

# %%
offsets, freqs = np.meshgrid(np.arange(-10, 10.0, 0.1), np.arange(2.5, 22.5, 0.1))
grid = jnp.stack([offsets.ravel(), freqs.ravel()], 1)
loss_mesh = np.asarray(jax.vmap(compute_loss)(grid)).reshape(offsets.shape)


def draw(paths, title):
    _, ax = plt.subplots(figsize=(6, 6))
    ax.contourf(offsets, freqs, loss_mesh, 256, cmap="YlOrBr_r")
    ax.contour(offsets, freqs, loss_mesh, 20, colors=["#80808080"])
    for (label, path), style in zip(paths.items(), ("go-", "bo-", "mo-"), strict=False):
        ax.plot(path[:, 0], path[:, 1], style, label=label, markersize=3)
    ax.set_ylim([2.5, 22.5])
    ax.set_xlabel(r"Offset $\phi_0$")
    ax.set_ylabel(r"Frequency $\phi_1$")
    ax.set_title(title)
    ax.legend()
    plt.show()


# %% [markdown]
# ## Gradient descent without the regularizer
#
# The lecture's fixed-step rule `br.optim.gd(0.1)`, 41 steps from (2.6, 8.5).

# %%
def descend(objective, phi0=(2.6, 8.5), lr=0.1, n_steps=41):
    tx, g = br.optim.gd(lr), jax.jit(jax.grad(objective))
    phi = jnp.asarray(phi0)
    state, path = tx.init(phi), [phi]
    for _ in range(n_steps):
        updates, state = tx.update(g(phi), state)
        phi = optax.apply_updates(phi, updates)
        path.append(phi)
    return np.stack(path)


path = descend(compute_loss)
print(f"Initial parameters, Loss = {float(compute_loss(path[0])):f}")
for c_step in range(0, 41, 8):
    print(f"Iteration {c_step + 1}, loss = {float(compute_loss(path[c_step + 1])):f}")
draw({"gradient descent": path}, "Without regularization: a local minimum")

# %% [markdown]
# ## The regularizer as a prior
#
# J(φ) = Σᵢ(yᵢ − f(xᵢ))² + λ(φ₀² + (φ₁ − 12.5)²). Read as a log posterior with a Gaussian
# likelihood of noise σ = 1 (the sum of squares is 2σ² times its negative log) the penalty is
# the prior N((0, 12.5), s²I) with λ = σ²/s²: `br.prior_from_l2(λ, noise_scale=1)` gives s.

# %%
lambda_ = 0.2
s = br.prior_from_l2(lambda_, noise=1.0).scale
prior = br.Gaussian(s, loc=jnp.array([0.0, 12.5]))
print(f"λ = {lambda_} ⇔ prior N((0, 12.5), s²) with s = {float(s):.4f} (s² = 1/λ = "
      f"{float(s) ** 2:.1f})")


def compute_loss2(phi, lambda_=lambda_):
    prior = br.Gaussian(br.prior_from_l2(lambda_, noise=1.0).scale,
                        loc=jnp.array([0.0, 12.5]))
    return compute_loss(phi) + 2 * 1.0**2 * prior.penalty(phi)  # 2σ² · (−log prior)


phi = jnp.array([1.0, 9.0])
book = compute_loss(phi) + lambda_ * (phi[0] ** 2 + (phi[1] - 12.5) ** 2)
print(f"at φ = (1, 9): the book's L + λg = {float(book):.6f}, SSE + 2σ²·penalty = "
      f"{float(compute_loss2(phi)):.6f}")

# %%
reg_mesh = np.asarray(jax.vmap(compute_loss2)(grid)).reshape(offsets.shape)
fig, ax = plt.subplots(figsize=(6, 6))
ax.contourf(offsets, freqs, reg_mesh, 256, cmap="YlOrBr_r")
ax.contour(offsets, freqs, reg_mesh, 20, colors=["#80808080"])
ax.set_xlabel(r"Offset $\phi_0$")
ax.set_ylabel(r"Frequency $\phi_1$")
ax.set_title(f"Regularized loss, λ = {lambda_} (Figure 9.1c)")
plt.show()

# %% [markdown]
# ## Gradient descent on the regularized loss

# %%
path_reg = descend(compute_loss2)
print(f"Initial parameters, Loss = {float(compute_loss2(path_reg[0])):f}")
for c_step in range(0, 41, 8):
    print(f"Iteration {c_step + 1}, loss = {float(compute_loss2(path_reg[c_step + 1])):f}")
print(f"without: φ = ({path[-1, 0]:.3f}, {path[-1, 1]:.3f}), data loss "
      f"{float(compute_loss(path[-1])):.3f}")
print(f"with λ = {lambda_}: φ = ({path_reg[-1, 0]:.3f}, {path_reg[-1, 1]:.3f}), data loss "
      f"{float(compute_loss(path_reg[-1])):.3f}")
draw({"gradient descent, regularized": path_reg}, f"λ = {lambda_}: the global minimum")

# %% [markdown]
# ## The strength λ (the book's exercise)
#
# Small λ: the prior is too weak to pull the start out of the local valley. Large λ: the
# solution is dragged towards (0, 12.5) and the fit to the data suffers — the bias the book
# warns of.

# %%
for lam in (0.01, 0.2, 1.0, 10.0):
    p = descend(lambda phi, lam=lam: compute_loss2(phi, lam), lr=0.1 if lam < 5 else 0.01,
                n_steps=41 if lam < 5 else 410)
    print(f"λ = {lam:5}: s = {float(br.prior_from_l2(lam, noise=1.0).scale):.3f}, "
          f"φ = ({p[-1, 0]:6.3f}, {p[-1, 1]:6.3f}), data loss {float(compute_loss(p[-1])):.3f}")
