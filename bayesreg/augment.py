r"""Data augmentation as a regularizer: a fresh random transformation of every mini-batch,
drawn inside the compiled training loop.

Training on transformed copies of the inputs maximises the likelihood averaged over the
transformations, E_t[log p(y | f(t(x)))] — the Bayesian reading is an assumption that f is
(nearly) invariant to them, written into the likelihood rather than the prior (Prince,
*Understanding Deep Learning*, §9.3.6; notebook 9.5 shifts MNIST-1D signals). For small
additive noise it is an explicit L2 penalty: a linear model trained on x + ε, ε ~ N(0, v I),
minimises E‖y − (x + ε)ᵀw‖² = ‖y − xᵀw‖² + n v ‖w‖² over n rows — ridge with strength n v
(Bishop 1995), which ``tests/test_augment.py`` checks.

Every transform is a small frozen object ``aug(key, X) -> X`` with X (B, D) a batch of rows
(for a 1-D signal, D samples of it); any callable of that shape works too. Give one to the
training: ``br.MAP(augment=br.augment.compose(br.augment.shift(), br.augment.scale(0.8,
1.2)))``; ensemble members, MC dropout and SWAG's pretraining take it through
``training=``. Each update draws its own key, so every batch sees new transformations; the
loss on held-out rows and the predictions use the rows as they are.

Examples
--------
>>> import jax, jax.numpy as jnp
>>> X = jnp.arange(8.0).reshape(2, 4)
>>> shift(max_shift=1)(jax.random.key(0), X).shape
(2, 4)
>>> compose(noise(0.0), scale(2.0, 2.0))(jax.random.key(1), X)[0].tolist()
[0.0, 2.0, 4.0, 6.0]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp

from bayesreg._pytree import check_positive


@dataclasses.dataclass(frozen=True)
class shift:
    """Circular shift of each row by its own random integer in [−max_shift, max_shift]
    (every shift of the D samples when ``max_shift`` is None): notebook 9.5's augmentation
    of a 1-D signal."""

    max_shift: int | None = None

    def __post_init__(self):
        if self.max_shift is not None and (not isinstance(self.max_shift, int)
                                           or self.max_shift < 0):
            raise ValueError(f"max_shift must be an integer >= 0 or None; got {self.max_shift!r}")

    def __call__(self, key, X):
        d = X.shape[-1]
        if self.max_shift is None or 2 * self.max_shift >= d - 1:  # every shift, uniformly
            s = jax.random.randint(key, (*X.shape[:-1], 1), 0, d)
        else:
            s = jax.random.randint(key, (*X.shape[:-1], 1), -self.max_shift,
                                   self.max_shift + 1)
        idx = (jnp.arange(d) - s) % d
        return jnp.take_along_axis(X, idx, axis=-1)


@dataclasses.dataclass(frozen=True)
class scale:
    """Multiply each row by its own factor drawn from U(low, high) (the signal's amplitude)."""

    low: float = 0.8
    high: float = 1.2

    def __post_init__(self):
        _check_range(self.low, self.high)

    def __call__(self, key, X):
        c = jax.random.uniform(key, (*X.shape[:-1], 1), X.dtype, self.low, self.high)
        return X * c


@dataclasses.dataclass(frozen=True)
class noise:
    """Add N(0, std²) to every input: for a linear model, ridge with strength n·std²."""

    std: float = 0.1

    def __post_init__(self):
        check_positive("std", self.std, allow_zero=True)

    def __call__(self, key, X):
        return X + self.std * jax.random.normal(key, X.shape, X.dtype)


@dataclasses.dataclass(frozen=True)
class stretch:
    """Stretch each row along its samples by a factor from U(low, high) about its centre,
    read back at the same D positions by linear interpolation (the ends repeat)."""

    low: float = 0.9
    high: float = 1.1

    def __post_init__(self):
        _check_range(self.low, self.high)

    def __call__(self, key, X):
        d = X.shape[-1]
        c = jax.random.uniform(key, (*X.shape[:-1], 1), X.dtype, self.low, self.high)
        centre = (d - 1) / 2
        pos = jnp.clip(centre + (jnp.arange(d, dtype=X.dtype) - centre) / c, 0, d - 1)
        lo = jnp.floor(pos).astype(jnp.int32)
        hi = jnp.minimum(lo + 1, d - 1)
        w = pos - lo
        return ((1 - w) * jnp.take_along_axis(X, lo, axis=-1)
                + w * jnp.take_along_axis(X, hi, axis=-1))


@dataclasses.dataclass(frozen=True)
class flip:
    """Reverse each row's samples with probability ``p`` (a signal read backwards; for
    tabular rows it permutes the columns, which only makes sense for symmetric features)."""

    p: float = 0.5

    def __post_init__(self):
        if not 0.0 <= float(self.p) <= 1.0:
            raise ValueError(f"p must be in [0, 1]; got {self.p!r}")

    def __call__(self, key, X):
        flipped = jax.random.bernoulli(key, self.p, (*X.shape[:-1], 1))
        return jnp.where(flipped, X[..., ::-1], X)


@dataclasses.dataclass(frozen=True)
class compose:
    """Apply ``augs`` in order, each with its own key."""

    augs: tuple[Callable, ...]

    def __init__(self, *augs):
        if not augs or not all(callable(a) for a in augs):
            raise TypeError(f"compose takes transforms aug(key, X) -> X; got {augs!r}")
        object.__setattr__(self, "augs", tuple(augs))

    def __call__(self, key, X):
        for aug, k in zip(self.augs, jax.random.split(key, len(self.augs)), strict=True):
            X = aug(k, X)
        return X


def _check_range(low, high) -> None:
    check_positive("low", low)
    check_positive("high", high)
    if not float(high) >= float(low):
        raise ValueError(f"high must be >= low; got low={low}, high={high}")


def check_augment(augment) -> None:
    """``TypeError`` unless ``augment`` is None or a callable ``aug(key, X) -> X``."""
    if augment is not None and (isinstance(augment, type) or not callable(augment)):
        raise TypeError(f"augment must be a transform aug(key, X_batch) -> X_batch such as "
                        f"br.augment.shift() (an instance); got {augment!r}")
