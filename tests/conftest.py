"""Tests run on the CPU with fixed seeds; figures use the Agg backend."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")
# the command line keeps compiled programs on disk (bayesreg.cache); the suite writes none
os.environ.setdefault("BAYESREG_COMPILATION_CACHE", "off")

import jax
import pytest

import bayesreg as br
from bayesreg.training import chains


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Free every compiled program after each test module. Each XLA CPU executable keeps its
    own memory mappings; the whole suite compiles thousands of programs, which reached the
    kernel's limit of 65 530 mappings per process (an abort or a segfault inside XLA's
    compiler three quarters of the way through) and several GB of resident memory."""
    yield
    chains.chain_program.cache_clear()
    jax.clear_caches()


@pytest.fixture(scope="session")
def linear_data():
    """100 × 5 standard-normal design, y = Xw + 0.5 + N(0, 0.5²)."""
    X, y, truth = br.datasets.linear_example(n=100, d=5, noise=0.5, seed=0)
    return X, y, truth


@pytest.fixture(scope="session")
def book_data():
    return br.datasets.book_example(n=15, noise=0.3, seed=0)
