"""A multi-process JAX cluster: two local CPU processes joined by ``jax.distributed``
(gloo collectives, coordinator on 127.0.0.1) train an ensemble's members, or run NUTS
chains, between them, and each ends up with the same posterior as one process alone
(tests/distributed_worker.py)."""

import jax
import numpy as np
import pytest

import bayesreg as br
from tests import distributed_worker as worker

# 4 members (2 per process); 3 bagged members (padded to 4); 3 NUTS chains (2 per process);
# mini-batch MAP, data parallel: each batch's 16 (15) rows split 8 + 8 (8 + 7); SGLD's
# chains, one per process (the members of the training loop)
CASES = ("ensemble", "ensemble-odd", "nuts-odd", "map-minibatch", "map-minibatch-odd",
         "sgld-minibatch")


@pytest.fixture(scope="module")
def two_processes():
    return worker.launch(",".join(CASES), num_processes=2, timeout=240)


@pytest.mark.filterwarnings("ignore::UserWarning")  # R-hat of short chains
# two JAX processes start, compile and train (~20-45 s on 2 cores): in the slow set, which
# CI runs after the default suite
@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_two_processes_equal_one(two_processes, case):
    ref = worker.CASES[case](br)
    leaves = [np.asarray(a) for a in jax.tree_util.tree_leaves(ref.params)]
    for out in two_processes:  # every process holds every member
        assert int(out["processes"]) == 2 and int(out["devices"]) == 2
        assert int(out[f"{case}/num_draws"]) == ref.num_draws
        for i, a in enumerate(leaves):
            np.testing.assert_allclose(out[f"{case}/leaf{i}"], a, rtol=1e-4, atol=1e-5)


def test_gather_leaves_a_single_process_tree_as_numpy():
    import jax

    from bayesreg.data import devices as _distributed

    key = jax.random.split(jax.random.key(0), 3)
    tree = {"a": jax.numpy.arange(3.0), "k": key}
    out = _distributed.gather(tree)
    assert isinstance(out["a"], np.ndarray)
    np.testing.assert_array_equal(jax.random.key_data(out["k"]), jax.random.key_data(key))
    padded = _distributed.pad_leading(tree, 4)
    assert padded["a"].tolist() == [0.0, 1.0, 2.0, 2.0] and padded["k"].shape == (4,)
