"""The one update body of the training loops: padding, the collector's rounds and early
stopping, checked against the same updates stepped one by one."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

import bayesreg as br
from bayesreg.training.objective import NegLogJoint
from bayesreg.training.update import Carry, EarlyStopping, Updates, Validation, step

MODEL = br.Linear()
PRIOR = {"weights": br.Flat(), "biases": br.Flat()}
LIK = br.GaussianLikelihood(1.0)
X = jnp.linspace(-1, 1, 8)[:, None]
Y = 2 * X[:, 0]
TX = optax.sgd(0.1)
STATE0 = {"params": MODEL.init(jax.random.key(0), 1), "theta": {}}
INDEX = jax.random.permutation(jax.random.key(1), 8).reshape(4, 2)  # 4 batches of 2 rows
KEYS = jax.random.split(jax.random.key(2), 4)


def _updates(**kw):
    return Updates(NegLogJoint(MODEL), TX, LIK, PRIOR, 8, **kw)


def _by_hand(batches):
    """The states after each of the first ``batches`` updates, one :func:`step` at a time."""
    carry, states = (STATE0, TX.init(STATE0)), []
    for j in range(batches):
        carry, _ = step(NegLogJoint(MODEL), TX, LIK, PRIOR, 8, carry,
                        (X[INDEX[j]], Y[INDEX[j]], KEYS[j]))
        states.append(carry[0])
    return states


def _weight(state):
    return float(state["params"]["weights"][0][0, 0])


def test_a_scan_over_a_chunk_is_the_steps_one_by_one():
    carry, (losses, vals) = _updates().over_batches(Carry(STATE0, TX.init(STATE0)), X, Y, KEYS,
                                                    INDEX)
    assert losses.shape == (4,) and not np.any(vals)
    np.testing.assert_allclose(_weight(carry.state), _weight(_by_hand(4)[-1]), rtol=1e-6)


def test_padded_batches_leave_the_carry_as_it_was():
    # a chunk of 4 batches of which 2 are real (a stream's last chunk): the state after it
    # is the state after 2 updates, and the optimiser's count stopped there too
    tx = optax.adam(0.1)
    updates = Updates(NegLogJoint(MODEL), tx, LIK, PRIOR, 8)
    padded, _ = updates.over_batches(Carry(STATE0, tx.init(STATE0)), X, Y, KEYS, INDEX,
                                     count=jnp.asarray(2))
    two, _ = updates.over_batches(Carry(STATE0, tx.init(STATE0)), X, Y, KEYS[:2], INDEX[:2])
    jax.tree_util.tree_map(np.testing.assert_array_equal, padded, two)


@dataclasses.dataclass(frozen=True)
class _Sum:
    """Collects the sum of the weight at its iterates and how many it saw."""

    every: int = 1

    def init(self, params):
        return jnp.zeros(2)

    def update(self, acc, params, i):
        return acc + jnp.array([params["weights"][0][0, 0], 1.0])


def test_the_collector_is_fed_at_the_end_of_every_round_of_period_updates():
    # updates 5…8 of a run (first = 4) with a period of 3: the run's updates 6 (j = 1) ends a
    # round, update 9 would end the next; so exactly one state is folded in, the second one
    updates = _updates(collect=_Sum(), period=3)
    carry, _ = updates.over_batches(Carry(STATE0, TX.init(STATE0), acc=jnp.zeros(2)), X, Y,
                                    KEYS, INDEX, first=4)
    total, seen = np.asarray(carry.acc)
    assert seen == 1
    np.testing.assert_allclose(total, _weight(_by_hand(2)[1]), rtol=1e-6)


def test_early_stopping_freezes_the_state_once_the_patience_runs_out():
    # held-out targets of the opposite sign: every update makes their loss worse, so the
    # best state is the first update's, and after two updates without a better one the
    # state stays where the third update left it
    val = Validation(X, -Y, jnp.ones(8), 2)
    carry0 = Carry(STATE0, TX.init(STATE0), track=EarlyStopping.init(STATE0, X.dtype))
    carry, (_, vals) = _updates(validation=val).over_batches(carry0, X, Y, KEYS, INDEX)
    by_hand = _by_hand(4)
    assert np.all(np.diff(np.asarray(vals)[:3]) > 0)
    np.testing.assert_allclose(_weight(carry.state), _weight(by_hand[2]), rtol=1e-6)
    assert _weight(carry.state) != _weight(by_hand[3])
    np.testing.assert_allclose(_weight(carry.track.best_state), _weight(by_hand[0]), rtol=1e-6)
    assert int(carry.track.stopped_at) == 3
