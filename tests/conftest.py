"""Tests run on the CPU with fixed seeds; figures use the Agg backend."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest

import bayesreg as br


@pytest.fixture(scope="session")
def linear_data():
    """100 × 5 standard-normal design, y = Xw + 0.5 + N(0, 0.5²)."""
    X, y, truth = br.datasets.linear_example(n=100, d=5, noise=0.5, seed=0)
    return X, y, truth


@pytest.fixture(scope="session")
def book_data():
    return br.datasets.book_example(n=15, noise=0.3, seed=0)
