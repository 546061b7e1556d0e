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
# # Notebook 9.2: Implicit regularization
#
# Prince, *Understanding Deep Learning* (MIT Press 2023), chapter 9 "Regularization",
# §9.2 implicit regularization (§9.2.1 in gradient descent), equation 9.8 and
# **Figure 9.3**; the book's companion notebook
# `Notebooks/Chap09/9_2_Implicit_Regularization.ipynb`.
#
# Gradient descent with a finite step α does not follow the continuous gradient flow of L;
# to second order in α it follows the flow of the modified loss
# L̃(φ) = L(φ) + (α/4)‖∂L/∂φ‖² (`br.implicit.gd_modified_loss`). The book simulates the flow
# with a tiny step (0.001, 10 000 steps): on L it ends elsewhere than GD with α = 0.05; on L̃
# it ends where GD does. `BAYESREG_QUICK=1` changes nothing here (each run is one compiled
# `jax.lax.scan`).

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
    phi1_std = jnp.exp(-0.5 * phi[0] ** 2 * 4.0)
    return 1.0 - jnp.exp(-0.5 * phi[1] ** 2 / phi1_std**2)


grid_values = np.arange(-0.8, 0.5, 0.01)
phi0mesh, phi1mesh = np.meshgrid(grid_values, grid_values)
pts = jnp.stack([phi0mesh.ravel(), phi1mesh.ravel()], 1)


def mesh(f):
    return np.asarray(jax.vmap(f)(pts)).reshape(phi0mesh.shape)


def draw(values, tiny=None, typical=None, title=""):
    _, ax = plt.subplots(figsize=(6, 6))
    ax.contourf(phi0mesh, phi1mesh, values, 256, cmap="YlOrBr_r")
    ax.contour(phi0mesh, phi1mesh, values, 20, colors=["#80808080"])
    if typical is not None:
        ax.plot(typical[:, 0], typical[:, 1], "ro-", markersize=3, label="GD, α = 0.05")
    if tiny is not None:
        ax.plot(tiny[:, 0], tiny[:, 1], "b-", label="gradient flow (α = 0.001)")
    ax.set_xlabel(r"$\phi_0$")
    ax.set_ylabel(r"$\phi_1$")
    ax.set_title(title)
    if tiny is not None or typical is not None:
        ax.legend()
    plt.show()


def grad_descent(objective, n_steps, step_size, start=(-0.7, -0.75)):
    """The lecture's rule ``br.optim.gd`` for n_steps, as one compiled scan; the path."""
    tx, grad = br.optim.gd(step_size), jax.grad(objective)

    def step(carry, _):
        phi, state = carry
        updates, state = tx.update(grad(phi), state)
        phi = optax.apply_updates(phi, updates)
        return (phi, state), phi

    phi0 = jnp.asarray(start)
    _, path = jax.lax.scan(step, (phi0, tx.init(phi0)), None, length=n_steps)
    return np.concatenate([np.asarray(phi0)[None], np.asarray(path)])


# %% [markdown]
# ## Gradient descent and the gradient flow on L part ways

# %%
path_tiny = grad_descent(loss, 10000, 0.001)
path_typical = grad_descent(loss, 100, 0.05)
draw(mesh(loss), path_tiny, path_typical, "On L: the two end in different places")
print(f"GD α = 0.05, 100 steps, ends at ({path_typical[-1, 0]:.4f}, {path_typical[-1, 1]:.4f})")
print(f"flow of L (α = 0.001, 10 000 steps) ends at ({path_tiny[-1, 0]:.4f}, "
      f"{path_tiny[-1, 1]:.4f}); distance {np.linalg.norm(path_tiny[-1] - path_typical[-1]):.4f}")

# %% [markdown]
# ## The implicit regularizer (α/4)‖∂L/∂φ‖² (equation 9.8)
#
# Largest where L is steepest.

# %%
alpha = 0.1
modified = br.implicit.gd_modified_loss(loss, alpha)
draw(mesh(lambda p: modified(p) - loss(p)), title=f"(α/4)‖∂L/∂φ‖², α = {alpha}")
draw(mesh(modified), title=f"L + (α/4)‖∂L/∂φ‖², α = {alpha}")

# %% [markdown]
# ## The flow of the modified loss follows finite-step gradient descent
#
# The book's exercise: the flow (step 0.001, 10 000 steps) on L̃ with α_reg = 0.05 against
# GD with α = 0.05 on L.

# %%
path_tiny_reg = grad_descent(br.implicit.gd_modified_loss(loss, 0.05), 10000, 0.001)
draw(mesh(br.implicit.gd_modified_loss(loss, 0.05)), path_tiny_reg, path_typical,
     "On L̃: the two trajectories align")
print(f"flow of L̃ ends at ({path_tiny_reg[-1, 0]:.4f}, {path_tiny_reg[-1, 1]:.4f}); distance "
      f"to GD's end {np.linalg.norm(path_tiny_reg[-1] - path_typical[-1]):.4f}")


# the whole trajectories, point by point at equal time t = (GD step) × 0.05
def gap(flow):
    return np.max(np.linalg.norm(flow[::50][: len(path_typical)] - path_typical, axis=1))


print(f"largest distance along the way at equal times: flow of L {gap(path_tiny):.4f}, "
      f"flow of L̃ {gap(path_tiny_reg):.4f}")
