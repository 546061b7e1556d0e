r"""M networks trained together: an ensemble's members, MultiSWAG's pretrainings.

:func:`train_many` trains ``count`` networks under one
:class:`~bayesreg.training.trainer.Trainer`, each from its own initialisation and key, as one
program (:func:`bayesreg.training.run.run_members`: in memory the compiled loop
``vmap``\ ped over members, the member axis spread over the devices when there are several;
for rows read by chunks every member on one shared stream). :func:`why_not_streamed` says
when the stream cannot be used. A caller that gives each member its own rows or prior
(bagging, anchoring) passes its own ``inputs``.
:func:`train_values` trains one network per value of a model setting (MC dropout's
candidate rates), the value a traced input of the one compiled program.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import numpy as np

from bayesreg.cache import traced_call
from bayesreg.data import stream as _stream
from bayesreg.data.buckets import to_device
from bayesreg.problem import Problem
from bayesreg.training.loop import bucketed, train_loop
from bayesreg.training.results import check_trace, learned_hyperparameters
from bayesreg.training.run import run_members
from bayesreg.training.trainer import Trained, Trainer


def member_starts(problem: Problem, count: int):
    """(initial states, training keys) of ``count`` members, each with a leading member
    axis: the first two of five keys split from the problem's (an ensemble draws its bags,
    anchors and jitter from the other three).

    Examples
    --------
    >>> import jax, numpy as np, bayesreg as br
    >>> from bayesreg.problem import Problem
    >>> p = Problem(br.MLP((4,)), br.GaussianLikelihood(1.0), {}, np.zeros((5, 2)),
    ...             np.zeros(5), jax.random.key(0))
    >>> state0, keys = member_starts(p, 3)
    >>> state0["params"]["weights"][0].shape, keys.shape
    ((3, 2, 4), (3,))
    """
    init_key, train_key = jax.random.split(problem.key, 5)[:2]
    state0 = jax.vmap(problem.init_state)(jax.random.split(init_key, count))
    return state0, jax.random.split(train_key, count)


def member_inputs(problem: Problem, count: int):
    """Per-member (initial states, keys, X, y, prior) and their vmap axes (data axis, prior
    axis) when every member sees the same rows under the same prior.

    Examples
    --------
    >>> import jax, numpy as np, bayesreg as br
    >>> from bayesreg.problem import Problem
    >>> p = Problem(br.Linear(), br.GaussianLikelihood(1.0), {}, np.zeros((5, 2)),
    ...             np.zeros(5), jax.random.key(0))
    >>> *_, X, y, prior, axes = member_inputs(p, 3)
    >>> X.shape, axes  # every member sees the same rows
    ((5, 2), (None, None))
    """
    state0, keys = member_starts(problem, count)
    return state0, keys, to_device(problem.X), to_device(problem.y), problem.prior, (None, None)


def why_not_streamed(training: Trainer, n: int, likelihood, count: int = 1) -> str | None:
    """None when ``count`` networks trained by ``training`` on ``n`` rows stream an X read
    by chunks; else why they cannot (the trainer's reasons, and several devices for several
    members).

    Examples
    --------
    >>> import bayesreg as br
    >>> why_not_streamed(br.MAP(batch_size=10), 100, br.GaussianLikelihood()) is None
    True
    >>> why_not_streamed(br.MAP(), 100, br.GaussianLikelihood())[:15]
    'full-batch MAP '
    """
    why = training.why_not_streamed(n, likelihood)
    if why is None and count > 1 and jax.device_count() > 1:
        why = ("members spread over several devices do not share a stream yet (one "
               "device streams)")
    return why


def check_streams(problem: Problem, why_not: Callable[[int, object], str | None]) -> None:
    """``ValueError`` when ``problem``'s X is read by chunks and ``why_not(n, likelihood)``
    says the method cannot stream it (``br.fit`` reads such an X into memory first; a
    method called directly gets the reason).

    Examples
    --------
    >>> import jax, numpy as np, bayesreg as br
    >>> from bayesreg.problem import Problem
    >>> p = Problem(br.Linear(), br.GaussianLikelihood(1.0), {}, np.zeros((5, 2)),
    ...             np.zeros(5), jax.random.key(0))
    >>> check_streams(p, lambda n, lik: "never")  # in memory: nothing to check
    """
    if _stream.is_lazy(problem.X):
        why = why_not(problem.n, problem.likelihood)
        if why is not None:
            raise ValueError(why)


def train_many(training: Trainer, problem: Problem, count: int,
               inputs: Callable = member_inputs, *, learn_prior: bool = True) -> Trained:
    """``count`` networks trained by ``training`` on ``problem``, as one program.

    Parameters
    ----------
    training : Trainer
        The loop's settings, shared by every member.
    problem : Problem
        Its X in memory, or read by chunks (then streamed: ``why_not_streamed`` must be None
        and every member sees every row under the same prior).
    count : int
        M, the number of members.
    inputs : callable
        ``inputs(rows, M) -> (states, keys, X, y, prior, (data axis, prior axis))`` for the
        training rows (after validation rows are held out); default :func:`member_inputs`.
        Unused for a stream.
    learn_prior : bool
        False keeps the prior as given even when ``problem`` would learn its scales
        (anchored members are draws from the given prior).

    Returns
    -------
    Trained
        The members' states and the prior they were trained under (learned scales of the
        first member written in), the diagnostics of their trace (a leading member axis on
        every array, as the states have) and the rows trained on.

    Examples
    --------
    >>> import jax, numpy as np, bayesreg as br
    >>> from bayesreg.priors import as_prior_spec
    >>> from bayesreg.problem import Problem
    >>> X = np.linspace(-1, 1, 8, dtype=np.float32)[:, None]
    >>> problem = Problem(br.Linear(), br.GaussianLikelihood(0.1), as_prior_spec(br.Gaussian(1.0)),
    ...                   X, 2 * X[:, 0], jax.random.key(0))
    >>> net = train_many(br.MAP(steps=50), problem, 3)
    >>> net.state["params"]["weights"][0].shape, net.diagnostics["losses"].shape
    ((3, 1, 1), (3, 50))
    """
    method = training.resolved(problem.model, problem.likelihood, problem.prior)
    objective = method.objective(problem.model)
    if _stream.is_lazy(problem.X):  # every member on one shared stream
        check_streams(problem, lambda n, lik: why_not_streamed(training, n, lik, count))
        state0, keys = member_starts(problem, count)
        state, trace = run_members(objective, method, method.plan(problem.n), (None, None),
                                   problem.likelihood, problem.prior, state0, problem.X,
                                   problem.y, keys, problem.X[:0], problem.y[:0],
                                   hook=training.evidence_hook(problem))
        return _trained(problem, problem, method, state, trace)
    train, X_val, y_val = training.split(problem)
    state0, keys, X, y, prior, axes = inputs(train, count)
    hook = training.evidence_hook(
        dataclasses.replace(train, learn_prior=train.learn_prior and learn_prior))
    state, trace = run_members(objective, method, method.plan(train.n), axes, train.likelihood,
                               prior, state0, X, y, keys, X_val, y_val, hook=hook)
    return _trained(problem, train, method, state, trace)


def _trained(problem: Problem, rows: Problem, method: Trainer, state, trace) -> Trained:
    """The members' :class:`Trained`: the trace checked (a diverged member is an error) and
    the hyperparameters the evidence learned read out."""
    trace = check_trace(trace, method.rate(problem.model), problem)
    prior, trace = learned_hyperparameters(problem, trace, state)
    return Trained(state, prior, trace, rows)


@dataclasses.dataclass(frozen=True)
class ModelAt:
    """``objective`` with its model's ``field`` set to a member's value: ``ModelAt(obj,
    "rate")(0.1)`` is ``obj`` on the model with ``rate=0.1``. Hashable (a static argument of
    the compiled program); called inside it with the traced value, so the values share one
    program where a value fixed in the model would compile one program each.

    Examples
    --------
    >>> import bayesreg as br
    >>> from bayesreg.masks import DropoutNetwork
    >>> from bayesreg.training.objective import NegLogJoint
    >>> ModelAt(NegLogJoint(DropoutNetwork(br.MLP((4,)), 0.05)), "rate")(0.1).model.rate
    0.1
    """

    objective: Any
    field: str

    def __call__(self, value):
        model = dataclasses.replace(self.objective.model, **{self.field: value})
        return dataclasses.replace(self.objective, model=model)


@partial(jax.jit, static_argnums=(0, 1, 2, 3, 4, 5), static_argnames=("hook",))
def _train_values(objective_at, method, epochs, per_epoch, batch, prior_axis, values,
                  likelihood, prior, state0, X, y, key, X_val, y_val, *, hook=None, mask=None,
                  val_mask=None):
    """``vmap`` of the training loop over the values (and the priors when ``prior_axis`` is
    0); every other input is shared."""
    def one(value, prior):
        return train_loop(objective_at(value), method, epochs, per_epoch, batch, likelihood,
                          prior, state0, X, y, key, X_val, y_val, hook=hook, mask=mask,
                          val_mask=val_mask)

    return jax.vmap(one, in_axes=(0, prior_axis))(values, prior)


def train_values(training: Trainer, problem: Problem, field: str, values, prior, *,
                 prior_axis: int | None = None, hook=None):
    """One network per value of the model's ``field`` (MC dropout's candidate rates), trained
    by ``training`` on ``problem``'s rows in memory as one compiled program.

    Every network starts from the same initialisation and trains with the same key, those a
    single fit of ``problem`` would use (the first and second keys split from
    ``problem.key``): the fits one value at a time, in one program, with common random
    numbers, so that a comparison of the values is not one of seeds.

    Parameters
    ----------
    training : Trainer
        The loop's settings (its validation rows, when asked for, are held out as one fit
        holds them out).
    problem : Problem
        The rows, likelihood and model (whose ``field`` the values replace).
    field : str
        The model's setting that differs between the networks, a number used in the
        objective (not in its shapes).
    values : sequence of float
        M values of ``field``.
    prior : prior spec
        The prior trained under; with ``prior_axis=0`` every leaf has a leading axis of M
        (one prior per value, e.g. MC dropout's prior tempered by 1 − rate).
    hook : EvidenceHook, optional
        The evidence update (σ and prior scales learned per network).

    Returns
    -------
    (states, trace, rows)
        The networks' states and the trace of their loop as NumPy arrays, a leading axis of
        M on every array, and the rows trained on (a Problem).

    Examples
    --------
    >>> import jax, numpy as np, bayesreg as br
    >>> from bayesreg.masks import DropoutNetwork
    >>> from bayesreg.priors import as_prior_spec
    >>> from bayesreg.problem import Problem
    >>> X = np.linspace(-1, 1, 8, dtype=np.float32)[:, None]
    >>> net = DropoutNetwork(br.MLP((4,)), 0.0)
    >>> problem = Problem(net, br.GaussianLikelihood(0.1), as_prior_spec(br.Gaussian(1.0)),
    ...                   X, 2 * X[:, 0], jax.random.key(0))
    >>> states, trace, rows = train_values(br.MAP(steps=20), problem, "rate", [0.0, 0.1],
    ...                                    problem.prior)
    >>> states["params"]["weights"][0].shape, trace["losses"].shape, rows.n
    ((2, 1, 4), (2, 20), 8)
    """
    # resolved as a single fit resolves it (Trainer.optimize): under a heteroscedastic
    # likelihood or a non-smooth prior the default rate is 0.01, not 0.05
    method = training.resolved(problem.model, problem.likelihood, problem.prior)
    train, X_val, y_val = training.split(problem)
    init_key, train_key = jax.random.split(problem.key)
    epochs, per_epoch, batch = method.plan(train.n)
    X, y, mask, X_val, y_val, val_mask, batch = bucketed(train.X, train.y, X_val, y_val,
                                                         per_epoch, batch)
    # the values in the data's precision, as a number fixed in the model would be used
    values = np.asarray(values, train.dtype)
    # the model's own value left out of the program's static key: every value shares it
    static = dataclasses.replace(problem.model, **{field: 0.0})
    states, trace = traced_call(
        _train_values, 6, ("hook",), ModelAt(method.objective(static), field), method, epochs,
        per_epoch, batch, prior_axis, values, train.likelihood, prior,
        train.init_state(init_key), to_device(X), to_device(y), train_key, to_device(X_val),
        to_device(y_val), hook=hook, mask=mask, val_mask=val_mask)
    # fetched whole before anything else runs: a JAX op of the caller's (slicing a member)
    # queued behind the running program deadlocked with the progress report's call back,
    # which runs a JAX op of its own inside the program (seen on the CPU, 2 of 3 runs)
    states, trace = jax.device_get((states, trace))
    return states, trace, train
