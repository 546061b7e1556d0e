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
# # Notebook 6.5: Adam
#
# Prince, *Understanding Deep Learning* (MIT Press 2023), chapter 6 "Fitting models",
# §6.4 Adam, **Figure 6.9**; the book's companion notebook `Notebooks/Chap06/6_5_Adam.ipynb`.
#
# A loss that changes much faster along φ₁ than along φ₀: no fixed step suits both. The
# lecture's normalised gradients φ ← φ − α m/(√v + ε) (`br.optim.normalized`) move a fixed
# distance along each axis but never settle; Adam (`br.optim.adam`, the lecture's β = 0.9,
# γ = 0.99 and bias correction m/(1 − βᵗ⁺¹), v/(1 − γᵗ⁺¹)) adds momentum to both moments
# and converges. `BAYESREG_QUICK=1` changes nothing here.

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


def loss(phi):
    height = jnp.exp(-0.5 * phi[1] ** 2 * 4.0) * jnp.exp(-0.5 * (phi[0] - 0.7) ** 2 / 4.0)
    return 1.0 - height


grad = jax.grad(loss)
grid_values = np.arange(-1.0, 1.0, 0.01)
phi0mesh, phi1mesh = np.meshgrid(grid_values, grid_values)
pts = jnp.stack([phi0mesh.ravel(), phi1mesh.ravel()], 1)
loss_mesh = np.asarray(jax.vmap(loss)(pts)).reshape(phi0mesh.shape)


def draw(path, title):
    _, ax = plt.subplots(figsize=(6, 6))
    ax.contourf(phi0mesh, phi1mesh, loss_mesh, 256, cmap="YlOrBr_r")
    ax.contour(phi0mesh, phi1mesh, loss_mesh, 20, colors=["#80808080"])
    ax.plot(path[:, 0], path[:, 1], "-", color="#a0d9d3ff")
    ax.plot(path[:, 0], path[:, 1], ".", color="#a0d9d3ff", markersize=10)
    ax.set_xlabel(r"$\phi_0$")
    ax.set_ylabel(r"$\phi_1$")
    ax.set_title(title)
    plt.show()


def run(tx, n_steps, start=(-0.7, -0.9)):
    """n_steps of an optax transform from ``start``; the path, (n_steps + 1, 2)."""
    def step(carry, _):
        phi, state = carry
        updates, state = tx.update(grad(phi), state)
        phi = optax.apply_updates(phi, updates)
        return (phi, state), phi

    phi0 = jnp.asarray(start)
    _, path = jax.lax.scan(step, (phi0, tx.init(phi0)), None, length=n_steps)
    return np.concatenate([np.asarray(phi0)[None], np.asarray(path)])


def report(name, path):
    print(f"{name}: {len(path) - 1} steps, final φ = ({path[-1, 0]:.3f}, {path[-1, 1]:.3f}), "
          f"loss {float(loss(jnp.asarray(path[-1]))):.4f}")


# %% [markdown]
# ## The convexity test
#
# 1 minus a Gaussian bump: convex near the minimum at (0.7, 0), concave far from it, so the
# second derivative is not positive everywhere.

# %%
eig = jax.vmap(lambda p: jnp.linalg.eigvalsh(jax.hessian(loss)(p)))(pts[::11])
print(f"smallest Hessian eigenvalue on [-1, 1)²: {float(eig.min()):.3f}; positive definite "
      f"at {float(jnp.mean(eig[:, 0] > 0)):.0%} of the grid; convex: {bool(jnp.all(eig > 0))}")

# %% [markdown]
# ## Fixed-step gradient descent: too slow, or oscillating

# %%
for n_steps, alpha in ((200, 0.08), (40, 1.0)):
    path = run(br.optim.gd(alpha), n_steps)
    report(f"gradient descent α = {alpha}", path)
    draw(path, f"gradient descent, α = {alpha}")

# %% [markdown]
# ## Normalised gradients (the lecture's m / (√v + ε) without averaging)
#
# Every coordinate moves ±α per step: sensible speed, but it ends bouncing between two
# points around the minimum.

# %%
path = run(br.optim.normalized(0.08, eps=1e-20), 40)
report("normalised gradients α = 0.08", path)
print(f"last two steps: {np.round(path[-2], 3).tolist()} ↔ {np.round(path[-1], 3).tolist()}")
draw(path, "normalised gradients, α = 0.08")

# %% [markdown]
# ## Adam, with and without the bias correction

# %%
path = run(br.optim.adam(0.05, beta=0.9, gamma=0.99, eps=1e-20), 60)
report("Adam α = 0.05", path)
draw(path, "Adam, α = 0.05")
path_nb = run(br.optim.adam(0.05, beta=0.9, gamma=0.99, eps=1e-20, bias_correction=False), 60)
report("Adam without bias correction", path_nb)
steps = [1, 5, 10, 20]
t = np.asarray(steps)
print("step length at steps", steps, "with correction:",
      np.round(np.linalg.norm(np.diff(path, axis=0), axis=1)[t - 1], 4).tolist(),
      "without:", np.round(np.linalg.norm(np.diff(path_nb, axis=0), axis=1)[t - 1], 4).tolist())
print("corrected / uncorrected step for a constant gradient, √(1 − γᵗ)/(1 − βᵗ):",
      np.round(np.sqrt(1 - 0.99**t) / (1 - 0.9**t), 3).tolist())

# %% [markdown]
# With bias correction the lecture's Adam is optax's Adam with b1 = β, b2 = γ:

# %%
same = run(optax.adam(0.05, b1=0.9, b2=0.99, eps=1e-20), 60)
print(f"largest gap between br.optim.adam and optax.adam(b1=0.9, b2=0.99): "
      f"{np.max(np.abs(same - path)):.2e}")
