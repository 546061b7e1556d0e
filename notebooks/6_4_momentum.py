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
# # Notebook 6.4: Momentum
#
# Prince, *Understanding Deep Learning* (MIT Press 2023), chapter 6 "Fitting models",
# §6.3 momentum and §6.3.1 Nesterov accelerated momentum, **Figure 6.7**; the book's
# companion notebook `Notebooks/Chap06/6_4_Momentum.ipynb`.
#
# SGD on the Gabor model of notebook 6.3, then the lecture's momentum
# m ← βm + (1 − β)g, φ ← φ − αm (`br.optim.momentum`) and Nesterov's version with the
# gradient at the look-ahead point φ − αβm (`br.optim.nesterov`), all three fed the same
# mini-batches of 5. `BAYESREG_QUICK=1` changes nothing here.

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
print(f"Your loss = {float(compute_loss(jnp.array([0.6, -0.2]))):3.3f}, "
      f"Correct loss = {16.419:3.3f}")
phi = jnp.array([-5.0, 25.0])
g = grad(phi)
fd = [(compute_loss(phi + 1e-4 * e) - compute_loss(phi)) / 1e-4 for e in jnp.eye(2)]
print("Your gradients: ({:3.3f},{:3.3f})".format(*map(float, g)))
print("Approx gradients: ({:3.3f},{:3.3f})".format(*map(float, fd)))

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
# ## The convexity test
#
# As in notebook 6.3: the Hessian of this loss is not positive definite everywhere, so the
# loss is not convex — the reason the start and the optimiser matter.

# %%
eig = jax.vmap(lambda p: jnp.linalg.eigvalsh(jax.hessian(compute_loss)(p)))(grid[::7])
print(f"smallest Hessian eigenvalue on the grid: {float(eig.min()):.2f}; convex: "
      f"{bool(jnp.all(eig > 0))}")


# %% [markdown]
# ## SGD, momentum and Nesterov momentum (α = 0.6, β = 0.6, batches of 5, 81 steps)
#
# `br.optim.nesterov` hands optax the look-ahead point ψ = φ − αβm as the parameters (optax
# evaluates the gradient where the parameters are), and `br.optim.nesterov_params` turns ψ
# back into the lecture's φ; the sequence of φ is exactly the lecture's.

# %%
def run(tx, phi0, batches, nesterov=False, lr=0.6, beta=0.6):
    phi, state, path = jnp.asarray(phi0), tx.init(jnp.asarray(phi0)), [jnp.asarray(phi0)]
    for idx in batches:
        updates, state = tx.update(grad(phi, data[0][idx], data[1][idx]), state)
        phi = optax.apply_updates(phi, updates)
        path.append(br.optim.nesterov_params(phi, state, lr, beta) if nesterov else phi)
    return np.stack(path)


np.random.seed(1)  # noqa: NPY002 (the book's generator)
n_steps, alpha, beta = 81, 0.6, 0.6
batches = [np.random.permutation(data.shape[1])[:5] for _ in range(n_steps)]  # noqa: NPY002 (the book's generator)
start = [-1.5, 6.5]
print(f"Initial parameters, Loss = {float(compute_loss(jnp.asarray(start))):f}")
paths = {
    "SGD": run(br.optim.sgd(alpha), start, batches),
    "momentum": run(br.optim.momentum(alpha, beta=beta), start, batches),
    "Nesterov": run(br.optim.nesterov(alpha, beta=beta), start, batches, nesterov=True),
}
for name, path in paths.items():
    print(f"{name}: Iteration {n_steps}, loss = {float(compute_loss(path[-1])):f}, "
          f"final φ = ({path[-1, 0]:.2f}, {path[-1, 1]:.2f})")
for name, path in paths.items():
    draw({name: path}, f"{name}, from (-1.5, 6.5)")

# %% [markdown]
# Momentum smooths the noisy mini-batch directions. As the book's notebook remarks, on
# this problem Nesterov momentum does not improve the result over plain momentum.
#
# Relation to optax: the lecture's momentum(α, β) is `optax.sgd(α(1 − β), momentum=β)`
# (optax's heavy ball has no (1 − β)); the two trajectories coincide.

# %%
same = run(optax.sgd(alpha * (1 - beta), momentum=beta), start, batches)
print(f"largest gap between br.optim.momentum and optax.sgd(α(1−β), momentum=β): "
      f"{np.max(np.abs(same - paths['momentum'])):.2e}")
