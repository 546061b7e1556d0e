"""Small offline data sets, generated from a seed (nothing is downloaded).

Examples
--------
>>> import bayesreg as br
>>> X, y = br.datasets.book_example(seed=0)
>>> X.shape, y.shape
((15, 1), (15,))
"""

from __future__ import annotations

import numpy as np


def book_function(x) -> np.ndarray:
    """The book's 1-D regression target, exp(sin(2πx)), on x ∈ [0, 1]."""
    return np.exp(np.sin(2 * np.pi * np.asarray(x, dtype=np.float64)))


def book_example(n: int = 15, noise: float = 0.3, seed: int = 0):
    """The book's toy regression: x ~ U(0, 1) (sorted), y = exp(sin(2πx)) + N(0, noise²).

    Returns
    -------
    X : (n, 1) float64
    y : (n,) float64
    """
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0.0, 1.0, n))
    y = book_function(x) + noise * rng.standard_normal(n)
    return x[:, None], y


def gap_example(n: int = 40, noise: float = 0.1, seed: int = 0):
    """1-D data with a hole in the middle: x ∈ [−1, −0.3] ∪ [0.3, 1], y = sin(3x) + noise.

    Uncertainty should grow inside the gap; a standard check of epistemic uncertainty.
    """
    rng = np.random.default_rng(seed)
    half = n // 2
    x = np.concatenate([rng.uniform(-1.0, -0.3, half), rng.uniform(0.3, 1.0, n - half)])
    x = np.sort(x)
    y = np.sin(3 * x) + noise * rng.standard_normal(n)
    return x[:, None], y


def multitask_example(n: int = 300, n_test: int = 500, noise: float = 0.05, seed: int = 0):
    """Three regression tasks that read out the same two nonlinear features
    h(x) = (sin(2x₁ + x₂), cos(x₁ − 2x₂)) of x ∈ [−2, 2]², each with its own random linear
    head: Y = h(X) W + noise, W (2, 3) ~ N(0, 1). The multi-task docs' and example's data.

    Returns X (n, 2), Y (n, 3), X_test (n_test, 2), Y_test (n_test, 3).
    """
    rng = np.random.default_rng(seed)
    heads = rng.normal(size=(2, 3))

    def f(X):
        return np.c_[np.sin(2 * X[:, 0] + X[:, 1]), np.cos(X[:, 0] - 2 * X[:, 1])] @ heads

    X, Xt = rng.uniform(-2, 2, (n, 2)), rng.uniform(-2, 2, (n_test, 2))
    return (X, f(X) + noise * rng.standard_normal((n, 3)), Xt,
            f(Xt) + noise * rng.standard_normal((n_test, 3)))


def linear_example(n: int = 100, d: int = 5, noise: float = 0.5, seed: int = 0):
    """Linear data y = X w + b + noise with w ~ N(0, 1), b = 0.5, X ~ N(0, 1).

    Returns X (n, d), y (n,), and the true (w, b).
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    w = rng.standard_normal(d)
    y = X @ w + 0.5 + noise * rng.standard_normal(n)
    return X, y, (w, 0.5)


def mnist1d(n: int = 8000, test_fraction: float = 0.5, seed: int = 42):
    """MNIST-1D (Greydanus 2020), generated offline by the ``mnist1d`` package.

    40-point 1-D signals of the ten digit templates, shifted, scaled, sheared and noised;
    10 classes. ``n`` signals are made and split into train and test (the lecture's
    figure uses 4000 + 4000). Needs the optional dependency: ``pip install
    'bayesreg[examples]'``. Nothing is downloaded: the generator builds the data from the
    templates that ship in the package.

    Returns
    -------
    X (n_train, 40), y (n_train,), X_test (n_test, 40), y_test (n_test,)
    """
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise ImportError("MNIST-1D needs the mnist1d package: pip install 'bayesreg[examples]'"
                          ) from None
    args = get_dataset_args()
    args.num_samples, args.seed, args.train_split = int(n), int(seed), 1.0 - test_fraction
    data = make_dataset(args)
    return (np.asarray(data["x"], np.float32), np.asarray(data["y"]),
            np.asarray(data["x_test"], np.float32), np.asarray(data["y_test"]))
