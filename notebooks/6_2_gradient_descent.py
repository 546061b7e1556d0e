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
# # Notebook 6.2: Gradient descent
#
# Prince, *Understanding Deep Learning* (MIT Press 2023), chapter 6 "Fitting models",
# §6.1 gradient descent and §6.1.1 the linear regression example, **Figure 6.1**; the
# book's companion notebook `Notebooks/Chap06/6_2_Gradient_Descent.ipynb`.
#
# A straight line y = φ₀ + φ₁x fitted to 12 points by gradient descent on the sum of
# squares: the gradient by `jax.grad` (checked against finite differences as the book
# does), each step's length by the line search of notebook 6.1, then the lecture's fixed-step
# rule `br.optim.gd` and `br.fit` with that rule. The loss is a quadratic: the convexity test
# passes. `BAYESREG_QUICK=1` changes nothing here (every cell is fast).

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

data = np.array([[0.03, 0.19, 0.34, 0.46, 0.78, 0.81, 1.08, 1.18, 1.39, 1.60, 1.65, 1.90],
                 [0.67, 0.85, 1.05, 1.00, 1.40, 1.50, 1.30, 1.54, 1.55, 1.68, 1.73, 1.60]])
x, y = jnp.asarray(data[0]), jnp.asarray(data[1])


def model(phi, x):
    return phi[0] + phi[1] * x


def compute_loss(phi):
    """Sum of squares over the 12 points (the book's L[φ])."""
    return jnp.sum((model(phi, x) - y) ** 2)


loss = compute_loss(jnp.array([0.6, -0.2]))
print(f"Your loss = {float(loss):3.3f}, Correct loss = {12.367:3.3f}")

# %% [markdown]
# ## The gradient, and the finite-difference check

# %%
grad = jax.jit(jax.grad(compute_loss))
phi = jnp.array([0.6, -0.2])
gradient = grad(phi)
print("Your gradients: ({:3.3f},{:3.3f})".format(*map(float, gradient)))
delta = 0.0001
fd = [(compute_loss(phi + delta * e) - compute_loss(phi)) / delta for e in jnp.eye(2)]
print("Approx gradients: ({:3.3f},{:3.3f})".format(*map(float, fd)))


# %% [markdown]
# ## Gradient descent with a line search (Figure 6.1)
#
# Each step searches along −∂L/∂φ with the four-point line search of notebook 6.1
# (maximum distance 0.1 along the raw gradient, as the book's notebook).

# %%
def line_search(phi, direction, thresh=0.00001, max_dist=0.1, max_iter=15):
    def loss_1d(dist):
        return float(compute_loss(phi - direction * dist))

    a, b, c, d = 0.0, 0.33 * max_dist, 0.66 * max_dist, max_dist
    n_iter = 0
    while abs(b - c) > thresh and n_iter < max_iter:
        n_iter += 1
        la, lb, lc, ld = loss_1d(a), loss_1d(b), loss_1d(c), loss_1d(d)
        if np.argmin((la, lb, lc, ld)) == 0:
            b, c, d = a + (b - a) / 2, a + (c - a) / 2, a + (d - a) / 2
            continue
        if lb < lc:
            d = c
        else:
            a = b
        b, c = a + (d - a) / 3, a + 2 * (d - a) / 3
    return (b + c) / 2


def gradient_descent_step(phi):
    g = grad(phi)
    return phi - line_search(phi, g) * g


n_steps = 10
phi_all = [jnp.array([1.6, -0.5])]
print(f"Initial parameters, Loss = {float(compute_loss(phi_all[0])):f}")
for c_step in range(n_steps):
    phi_all.append(gradient_descent_step(phi_all[-1]))
    print(f"Iteration {c_step + 1}, loss = {float(compute_loss(phi_all[-1])):f}")
phi_all = np.stack(phi_all, axis=1)

# %%
intercepts, slopes = np.meshgrid(np.arange(0.0, 2.0, 0.02), np.arange(-1.0, 1.0, 0.002))
loss_mesh = jax.vmap(compute_loss)(jnp.stack([intercepts.ravel(), slopes.ravel()], 1))
fig, ax = plt.subplots(figsize=(6, 6))
ax.contourf(intercepts, slopes, np.asarray(loss_mesh).reshape(intercepts.shape), 256,
            cmap="YlOrBr_r")
ax.contour(intercepts, slopes, np.asarray(loss_mesh).reshape(intercepts.shape), 40,
           colors=["#80808080"])
ax.plot(phi_all[0], phi_all[1], "go-")
ax.set_ylim([1, -1])
ax.set_xlabel(r"Intercept $\phi_0$")
ax.set_ylabel(r"Slope $\phi_1$")
plt.show()

# %% [markdown]
# ## The convexity test
#
# The Hessian of a sum of squares of a linear model is 2 [[N, Σx], [Σx, Σx²]] whatever φ
# is; both its eigenvalues are positive, so the second derivative is positive in every
# direction everywhere: the loss is convex and any minimum gradient descent finds is the
# global one. `jax.hessian` confirms it on the plotted grid.

# %%
pts = jnp.stack([intercepts.ravel()[::97], slopes.ravel()[::97]], 1)
eig = jax.vmap(lambda p: jnp.linalg.eigvalsh(jax.hessian(compute_loss)(p)))(pts)
print(f"smallest Hessian eigenvalue over {len(pts)} grid points: {float(eig.min()):.4f} "
      f"(largest {float(eig.max()):.2f}); convex: {bool(jnp.all(eig > 0))}")

# %% [markdown]
# ## The lecture's fixed-step rule, and `br.fit` with it
#
# `br.optim.gd(α)` is φ ← φ − α ∂L/∂φ as an optax transform. The same rule can drive
# `br.fit`: `br.MAP(optimizer=br.optim.gd(α))` minimises the negative log posterior per data
# point; a flat prior and a fixed noise make that the sum of squares divided by 2Nσ², so its
# minimum is the least-squares line whatever the scale.

# %%
tx = br.optim.gd(0.02)
phi, state = jnp.array([1.6, -0.5]), tx.init(jnp.zeros(2))
for _ in range(200):
    updates, state = tx.update(grad(phi), state)
    phi = optax.apply_updates(phi, updates)
print(f"fixed step α = 0.02, 200 steps: φ = ({float(phi[0]):.4f}, {float(phi[1]):.4f}), "
      f"loss {float(compute_loss(phi)):.4f}")

post = br.fit(br.Linear(), data[0], data[1],
              method=br.MAP(optimizer=br.optim.gd(0.1), steps=2000),
              prior=br.Flat(), likelihood=br.GaussianLikelihood(1.0))
p = post.mean_params()
fit = np.array([p["biases"][0][0], p["weights"][0][0, 0]])
lstsq = np.polyfit(data[0], data[1], 1)[::-1]
print(f"br.fit with br.optim.gd: φ = ({fit[0]:.4f}, {fit[1]:.4f}); "
      f"least squares: ({lstsq[0]:.4f}, {lstsq[1]:.4f})")
