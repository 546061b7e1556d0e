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
# # Notebook 6.3: Stochastic gradient descent
#
# Prince, *Understanding Deep Learning* (MIT Press 2023), chapter 6 "Fitting models",
# §6.1.2 the Gabor model example and §6.2 stochastic gradient descent, **Figure 6.5**; the
# book's companion notebook `Notebooks/Chap06/6_3_Stochastic_Gradient_Descent.ipynb`.
#
# The Gabor model f(x) = sin(φ₀ + 0.06φ₁x)·exp(−(φ₀ + 0.06φ₁x)²/32) has a loss with many
# valleys: the convexity test fails, gradient descent with a line search and with a fixed
# step ends in the valley it starts in, and SGD — the lecture's rule `br.optim.sgd` fed
# mini-batches of 5 — can hop out. `BAYESREG_QUICK=1` changes nothing here.

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
# The lecture's test, in two dimensions: the Hessian positive definite everywhere. On the
# plotted region it is not, so the loss is not convex and has local minima.

# %%
eig = jax.vmap(lambda p: jnp.linalg.eigvalsh(jax.hessian(compute_loss)(p)))(grid[::7])
print(f"smallest Hessian eigenvalue on the grid: {float(eig.min()):.2f}; "
      f"not positive definite at {float(jnp.mean(eig[:, 0] <= 0)):.0%} of the grid points; "
      f"convex: {bool(jnp.all(eig > 0))}")


# %% [markdown]
# ## Gradient descent with a line search, then with a fixed step
#
# The fixed step is the lecture's rule `br.optim.gd(α)` (φ ← φ − α ∂L/∂φ) as an optax
# transform.

# %%
def line_search(phi, direction, thresh=0.00001, max_dist=2.0, max_iter=15):
    def f(dist):
        return float(compute_loss(phi + direction * dist))

    a, b, c, d = 0.0, 0.33 * max_dist, 0.66 * max_dist, max_dist
    n_iter = 0
    while abs(b - c) > thresh and n_iter < max_iter:
        n_iter += 1
        la, lb, lc, ld = f(a), f(b), f(c), f(d)
        if np.argmin((la, lb, lc, ld)) == 0:
            b, c, d = a + (b - a) / 2, a + (c - a) / 2, a + (d - a) / 2
            continue
        if lb < lc:
            d = c
        else:
            a = b
        b, c = a + (d - a) / 3, a + 2 * (d - a) / 3
    return (b + c) / 2


def run(tx, phi0, n_steps, batches=None):
    """n_steps updates of the optax transform ``tx``; ``batches`` (n_steps index arrays)
    makes each gradient that of one mini-batch."""
    phi, state, path = jnp.asarray(phi0), tx.init(jnp.asarray(phi0)), [jnp.asarray(phi0)]
    for t in range(n_steps):
        idx = slice(None) if batches is None else batches[t]
        updates, state = tx.update(grad(phi, data[0][idx], data[1][idx]), state)
        phi = optax.apply_updates(phi, updates)
        path.append(phi)
    return np.stack(path)


phi, path_ls = jnp.array([-1.5, 8.5]), [jnp.array([-1.5, 8.5])]
print(f"Initial parameters, Loss = {float(compute_loss(phi)):f}")
for c_step in range(21):
    g = grad(phi)
    phi = phi - line_search(phi, -g) * g
    path_ls.append(phi)
    if c_step % 4 == 0:
        print(f"Iteration {c_step + 1}, loss = {float(compute_loss(phi)):f}")
path_ls = np.stack(path_ls)
path_fixed = run(br.optim.gd(0.2), [-1.5, 8.5], 21)
print(f"fixed step α = 0.2, 21 steps: loss = {float(compute_loss(path_fixed[-1])):f}")
draw({"line search": path_ls, "fixed step 0.2": path_fixed},
     "Gradient descent from (-1.5, 8.5)")

# %% [markdown]
# ## Stochastic gradient descent (Figure 6.5)
#
# The book's sampling: each step draws a random batch of 5 of the 30 points
# (`np.random.seed(1)`, a permutation per step). The rule is `br.optim.sgd(α)` — the same
# update as `gd`; what makes it stochastic is the batch its gradient comes from (in
# `br.MAP`, `batch_size=`). Plain GD with the same expected step from the same start settles
# in the local minimum it starts near; SGD's noise carries it over the ridge into the valley
# of the global minimum (the grid's lowest point is printed for reference).

# %%
np.random.seed(1)  # noqa: NPY002 (the book's generator)
n_steps = 41
batches = [np.random.permutation(data.shape[1])[:5] for _ in range(n_steps)]  # noqa: NPY002 (the book's generator)
path_sgd = run(br.optim.sgd(0.8), [3.5, 6.5], n_steps, batches)
path_gd = run(br.optim.gd(0.8 * 5 / 30), [3.5, 6.5], n_steps)  # same expected step
for c_step in range(0, n_steps, 8):
    print(f"Iteration {c_step + 1}, loss = {float(compute_loss(path_sgd[c_step + 1])):f}")
print(f"SGD (α = 0.8, batches of 5): final φ = ({path_sgd[-1, 0]:.2f}, {path_sgd[-1, 1]:.2f}),"
      f" loss {float(compute_loss(path_sgd[-1])):.3f}")
print(f"full-batch GD (α = 0.8·5/30): final φ = ({path_gd[-1, 0]:.2f}, {path_gd[-1, 1]:.2f}),"
      f" loss {float(compute_loss(path_gd[-1])):.3f}")
best = int(np.argmin(loss_mesh))
print(f"lowest loss on the grid: {loss_mesh.ravel()[best]:.3f} at "
      f"({offsets.ravel()[best]:.1f}, {freqs.ravel()[best]:.1f})")
draw({"SGD, batches of 5": path_sgd, "full-batch GD": path_gd}, "From (3.5, 6.5)")

# %% [markdown]
# ## A learning-rate schedule
#
# The book's last exercise: reduce the rate by a factor every M steps. Chaining the lecture's
# rule at α = 1 with `optax.scale_by_schedule` multiplies each update by the schedule;
# `br.MAP(schedule=...)` does the same inside `br.fit`.

# %%
schedule = optax.exponential_decay(0.8, transition_steps=10, decay_rate=0.5, staircase=True)
tx = optax.chain(br.optim.sgd(1.0), optax.scale_by_schedule(schedule))
path_sched = run(tx, [3.5, 6.5], n_steps, batches)
print(f"SGD with α halved every 10 steps: final φ = ({path_sched[-1, 0]:.2f}, "
      f"{path_sched[-1, 1]:.2f}), loss {float(compute_loss(path_sched[-1])):.3f}")
