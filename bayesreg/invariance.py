r"""Invariance chosen by the evidence: which augmentation suits the data, by the marginal
likelihood of the model averaged over it (Immer, van der Ouderaa, Rätsch, Fortuin & van der
Wilk 2022, "Invariance learning in deep neural networks with differentiable Laplace
approximations").

Training on augmented batches (:mod:`bayesreg.augment`) assumes that f is nearly invariant to
the transformations; how strong an augmentation to use is then usually chosen on held-out
rows. The Bayesian alternative builds the invariance into the model: the averaged network

    f̄(x) = (1/K) Σₖ f(Tₖ(x)),   Tₖ = augment(keyₖ, ·), K fixed draws shared by every row,

is (up to its K-draw Monte Carlo average) invariant to the augmentation's transformations, and
each candidate augmentation is a different model of the same data, so the marginal likelihood
p(y | X, augmentation) compares them with no rows held out. Its Laplace approximation,

    log p(y | X) ≈ log p(y | X, φ*) + log p(φ*) + (P/2) log 2π − ½ log |H|,

is what :class:`bayesreg.LaplaceApprox` reports as ``post.log_evidence``. Immer et al.
differentiate it in the augmentation's parameters and ascend; :func:`augmentation_evidence`
evaluates it on a grid of candidates (every candidate trains its own averaged network), which
needs no gradient through the Laplace approximation and shows the whole curve.

Examples
--------
>>> import jax, jax.numpy as jnp, numpy as np, bayesreg as br
>>> from bayesreg.invariance import augmentation_evidence
>>> rng = np.random.default_rng(0)
>>> X = rng.uniform(-2, 2, (40, 1)); y = np.cos(2 * X[:, 0]) + 0.1 * rng.standard_normal(40)
>>> sign_flip = [lambda X: X, lambda X: -X]  # the group {x, −x}: f̄ is even
>>> sel = augmentation_evidence(br.MLP((8,), activation="tanh"), X, y,
...                             {"none": None, "sign flip": sign_flip},
...                             method=br.LaplaceApprox(training=br.MAP(steps=500)))
>>> sel.best
'sign flip'
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from bayesreg._validation import check_int, check_X
from bayesreg.fit import fit
from bayesreg.function_model import FunctionModel
from bayesreg.likelihoods import GaussianLikelihood
from bayesreg.methods.laplace import LaplaceApprox


def averaged(model, augment: Callable | None, n_features: int, n_outputs: int = 1, *,
             draws: int = 8, seed: int = 0) -> FunctionModel:
    """``model`` averaged over ``draws`` fixed draws of ``augment``: a :class:`FunctionModel`
    with the model's own parameters and initialisation, whose output at the rows of X is
    f̄(x) = (1/K) Σₖ f(Tₖ(x)), the K transformations fixed (from ``seed``) and the same for
    every row, so that f̄ is one smooth deterministic function for the evidence (a draw per
    row would mix f(x) and f(T(x)) in proportions that jump from row to row, a rough
    function whose evidence is low whatever the invariance). ``augment=None``: the model
    itself (K = 1, no transformation), through the same code path so that the candidates'
    evidences compare like with like.

    Parameters
    ----------
    model : a built-in model such as ``br.MLP((32,))``
    augment : callable ``augment(key, X) -> X``, list of callables ``t(X) -> X``, or None
        A random augmentation, averaged over ``draws`` fixed draws; or the transformations
        of a finite group, listed (identity included), averaged exactly: f̄ is then
        invariant to them (``[lambda X: X, lambda X: -X]``: f̄ is even).
    n_features, n_outputs : int
        The input columns D and the outputs K of the network (classes for
        ``br.Categorical(K)``; 1 for regression).
    draws : int
        K, the transformations averaged over.
    seed : int
        Seeds the K transformations and the initial parameters.
    """
    draws = check_int("draws", draws, minimum=1)
    orbit = isinstance(augment, list | tuple)
    if not (augment is None or callable(augment)
            or (orbit and augment and all(callable(t) for t in augment))):
        raise TypeError(f"augment must be a transform augment(key, X) -> X, a list of "
                        f"transforms t(X) -> X, or None; got {augment!r}")
    keys = jax.random.split(jax.random.fold_in(jax.random.key(seed), 0xA06), draws)

    def init(key):
        return model.init(key, n_features, n_outputs)

    if augment is None:
        def apply(params, X):
            return model.apply(params, X)
    elif orbit:  # a finite group's orbit: the exact average, invariant to the group
        def apply(params, X):
            return sum(model.apply(params, t(X)) for t in augment) / len(augment)
    else:
        def transformed(key, X):  # one draw for every row: each row a batch of one, one key
            return jax.vmap(lambda x: augment(key, x[None])[0])(X)

        def apply(params, X):
            return jnp.mean(jax.vmap(lambda k: model.apply(params, transformed(k, X)))(keys),
                            axis=0)

    return FunctionModel(apply, init(jax.random.key(seed)), init=init)


@dataclasses.dataclass(frozen=True)
class AugmentationEvidence:
    """The candidates' Laplace log evidences and the one they choose.

    Attributes
    ----------
    names : tuple of str
        The candidates, in the order given.
    log_evidence : ndarray (C,)
        log p(y | X, candidate) by the Laplace approximation, nats.
    posteriors : dict
        Each candidate's posterior (``predict`` on new rows gives the averaged network's
        predictive).
    """

    names: tuple[str, ...]
    log_evidence: np.ndarray
    posteriors: dict

    @property
    def best(self) -> str:
        """The candidate of largest evidence."""
        return self.names[int(np.nanargmax(self.log_evidence))]

    def __repr__(self) -> str:
        width = max(len(n) for n in self.names)
        top = float(np.nanmax(self.log_evidence))
        lines = [f"{'augmentation':<{width}}  log evidence  vs best"]
        lines += [f"{n:<{width}}  {e:12.2f}  {e - top:7.2f}"
                  for n, e in zip(self.names, self.log_evidence, strict=True)]
        return "\n".join(lines) + f"\nchosen: {self.best}"


def augmentation_evidence(model, X, y, candidates: dict, *, method=None, prior=None,
                          likelihood=None, draws: int = 8, seed: int = 0
                          ) -> AugmentationEvidence:
    """Fit ``model`` averaged over each candidate augmentation (:func:`averaged`) and compare
    their Laplace evidences (the module docstring).

    Parameters
    ----------
    model : a built-in model (``br.MLP``, ``br.Linear``, ...)
    X, y : the training rows, as for :func:`bayesreg.fit`
    candidates : dict
        ``{name: augment}``, each as :func:`averaged` takes it (a random augmentation, a
        list of transformations, or None for the model without augmentation).
    method : default ``br.LaplaceApprox()``
        A method that reports ``log_evidence`` (LaplaceApprox on every parameter).
    prior, likelihood, seed :
        As for :func:`bayesreg.fit`, the same for every candidate.
    draws : int
        K transformations averaged over in each forward pass (the forward cost is K times
        the network's).

    Returns
    -------
    AugmentationEvidence
        ``.best`` is the chosen candidate; ``repr`` prints the table.
    """
    if not isinstance(candidates, dict) or not candidates:
        raise TypeError(f"candidates must be a non-empty dict {{name: augment or None}}; got "
                        f"{candidates!r}")
    method = LaplaceApprox() if method is None else method
    likelihood = GaussianLikelihood() if likelihood is None else likelihood
    X = check_X(X, "X")
    n_outputs = likelihood.n_outputs(np.asarray(y))
    names, evidence, posts = [], [], {}
    for name, aug in candidates.items():
        fm = averaged(model, aug, X.shape[1], n_outputs, draws=draws, seed=seed)
        post = fit(fm, X, y, method=method, prior=prior, likelihood=likelihood, seed=seed)
        if math.isnan(post.log_evidence):
            raise ValueError(f"{type(method).__name__} reports no log evidence; use "
                             "br.LaplaceApprox() (every parameter)")
        names.append(str(name))
        evidence.append(float(post.log_evidence))
        posts[str(name)] = post
    return AugmentationEvidence(tuple(names), np.asarray(evidence), posts)
