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
# # Notebook 6.1: Line search
#
# Prince, *Understanding Deep Learning* (MIT Press 2023), chapter 6 "Fitting models",
# §6.1 gradient descent and the chapter's notes on line search, **Figure 6.10**; the book's
# companion notebook `Notebooks/Chap06/6_1_Line_Search.ipynb` (udlbook/udlbook).
#
# The four-point bracketing search finds the minimum of a 1-D function on [0, 1] from
# function values alone. The function is two Gaussian dips added together: the lecture's
# convexity test (second derivative positive everywhere) fails, although the sum happens to
# keep a single minimum.
# Set `BAYESREG_QUICK=1` for the reduced sizes `make notebooks` uses (here nothing changes:
# every cell is already fast).

# %%
import os

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

import bayesreg as br

jax.config.update("jax_enable_x64", True)  # the book works in float64 NumPy
QUICK = os.environ.get("BAYESREG_QUICK") == "1"


# %%
def loss_function(phi):
    """The book's 1-D loss: two Gaussian dips, at 0.35 (deep, narrow) and 0.65 (wide)."""
    return (1 - 0.5 * jnp.exp(-(phi - 0.65) ** 2 / 0.1)
            - 0.45 * jnp.exp(-(phi - 0.35) ** 2 / 0.02))


phi_plot = jnp.arange(0, 1, 0.01)
fig, ax = plt.subplots()
ax.plot(phi_plot, loss_function(phi_plot), "r-")
ax.set_xlim(0, 1)
ax.set_ylim(0, 1)
ax.set_xlabel(r"$\phi$")
ax.set_ylabel(r"$L[\phi]$")
plt.show()


# %% [markdown]
# ## The line search (the book's three rules)
#
# Four points a < b < c < d. Rule 1: if a is lowest, pull b, c, d halfway towards a.
# Rule 2: if b is lower than c, d becomes c. Rule 3: otherwise a becomes b. The answer is
# the midpoint of b and c.

# %%
def line_search(loss_function, thresh=0.0001, max_iter=10, verbose=True):
    a, b, c, d = 0.0, 0.33, 0.66, 1.0
    n_iter = 0
    while abs(b - c) > thresh and n_iter < max_iter:
        n_iter += 1
        lossa, lossb, lossc, lossd = (float(loss_function(p)) for p in (a, b, c, d))
        if verbose:
            print(f"Iter {n_iter}, a={a:3.3f}, b={b:3.3f}, c={c:3.3f}, d={d:3.3f}")
        if np.argmin((lossa, lossb, lossc, lossd)) == 0:          # rule 1
            b, c, d = a + (b - a) / 2, a + (c - a) / 2, a + (d - a) / 2
            continue
        if lossb < lossc:                                           # rule 2
            d = c
        else:                                                       # rule 3
            a = b
        b, c = a + (d - a) / 3, a + 2 * (d - a) / 3
    return (b + c) / 2


soln = line_search(loss_function)
print(f"Soln = {soln:3.3f}, loss = {float(loss_function(soln)):3.3f}")

# %% [markdown]
# ## The convexity test
#
# The lecture's test: a function is convex if its second derivative is positive everywhere.
# `jax.grad` twice gives L''(φ) exactly (no finite differences); here it is negative on much
# of [0, 1] (the flanks of each dip), so the loss is not convex.

# %%
d2 = jax.vmap(jax.grad(jax.grad(loss_function)))(phi_plot)
print(f"min L'' on [0, 1) = {float(d2.min()):.3f}, max = {float(d2.max()):.3f}")
print(f"second derivative positive everywhere (convex): {bool(jnp.all(d2 > 0))}; "
      f"negative on {float(jnp.mean(d2 < 0)):.0%} of the grid")

fig, ax = plt.subplots()
ax.plot(phi_plot, d2, "b-")
ax.axhline(0, color="k", lw=0.5)
ax.fill_between(phi_plot, d2, 0, where=d2 < 0, color="r", alpha=0.3, label="L'' < 0")
ax.set_xlabel(r"$\phi$")
ax.set_ylabel(r"$\partial^2 L / \partial \phi^2$")
ax.legend()
plt.show()

# %% [markdown]
# ## Gradient descent on the same function
#
# `br.optim.gd(α)` is the lecture's rule φ ← φ − α ∂L/∂φ as an optax transform. Not convex
# is not the same as several minima: the wide dip at 0.65 sits on the slope of the narrow one
# at 0.35, so the sum has one minimum, and gradient descent reaches it from every start.
# The line search stopped at 10 iterations, 0.003 away from it.

# %%
def descend(phi0, lr=0.01, steps=2000):
    tx = br.optim.gd(lr)
    grad = jax.grad(loss_function)

    def step(carry, _):
        phi, state = carry
        updates, state = tx.update(grad(phi), state)
        return (optax.apply_updates(phi, updates), state), None

    (phi, _), _ = jax.lax.scan(step, (jnp.asarray(phi0), tx.init(jnp.asarray(phi0))),
                               None, length=steps)
    return float(phi)


for start in (0.1, 0.45, 0.9):
    end = descend(start)
    print(f"gradient descent from {start:.2f} ends at {end:.3f}, "
          f"loss {float(loss_function(end)):.3f}")
