r"""Transfer learning as a prior centred on part of a pretrained network (L2-SP).

A network pretrained on a source task (a pretext task on unlabelled data, a related data set)
is reused for a target task whose head differs: a different number of outputs, a different
likelihood. The body — the first layers — carries over; the head starts afresh. In Bayesian
terms the pretrained body is the prior's centre:

    p(φ) = Πₗ∈body N(φₗ | φ₀ₗ, s²) · Πₗ∉body N(φₗ | 0, r²),

whose penalty −log p(φ) = Σₗ∈body ‖φₗ − φ₀ₗ‖²/(2s²) + Σₗ∉body ‖φₗ‖²/(2r²) + const is L2-SP
(Li, Grandvalet & Davoli 2018, "Explicit inductive bias for transfer learning with
convolutional networks"): weight decay towards the starting point rather than towards zero.
s → ∞ is plain fine-tuning; s → 0 freezes the body at φ₀ (a linear probe on the pretrained
features, up to the head's prior).

Two functions, one per half of the recipe:

* :func:`transfer_prior` — the prior spec above (``{"weights": Gaussian, "biases": Gaussian}``
  with a per-layer ``loc`` and a per-layer ``scale``), for any method that takes a prior;
* :func:`warm_start` — an ``MLP`` whose initialisation copies the pretrained body and draws
  the head as usual, so that the fit starts where the prior is centred (MAP from a random
  start reaches a different mode of a non-convex posterior; L2-SP fine-tunes from φ₀).

Layers are numbered as in ``params["weights"]``: layer i maps the input of layer i to its
output with ``weights[i]`` and ``biases[i]``; ``layers=slice(0, -1)`` is every layer but the
last (the head). ``pretrained`` is a model's ``{"weights": [...], "biases": [...]}`` or a
:class:`~bayesreg.Posterior` with one draw (a MAP fit), whose parameters are taken as fitted
(a regression fit's target mean lives in the output bias, which the default ``layers``
leaves out).

Examples
--------
>>> import numpy as np, bayesreg as br
>>> rng = np.random.default_rng(0)
>>> X = rng.standard_normal((200, 5)); Y = np.tanh(X @ rng.standard_normal((5, 3)))
>>> source = br.fit(br.MLP((16,)), X, Y, method=br.MAP(steps=200),
...                 likelihood=br.GaussianLikelihood(0.1))        # a 3-output pretext task
>>> prior = br.transfer_prior(source, 0.1)                         # centred on the body
>>> model = br.warm_start(br.MLP((16,)), source)                   # starts from the body
>>> post = br.fit(model, X[:40], (Y[:40, 0] > 0).astype(int), prior=prior,
...               likelihood=br.Bernoulli(), method=br.MAP(steps=200))
>>> moved = post.params["weights"][0][0] - source.params["weights"][0][0]
>>> bool(np.abs(moved).max() < 0.5)
True
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp
import numpy as np

from bayesreg._pytree import check_positive
from bayesreg.models import MLP
from bayesreg.priors import PARAM_GROUPS, Gaussian


def pretrained_params(pretrained) -> dict[str, list[np.ndarray]]:
    """``{"weights": [...], "biases": [...]}`` of one network, as NumPy arrays.

    Parameters
    ----------
    pretrained : dict or Posterior
        A model's parameters ``{"weights": [W₀, W₁, ...], "biases": [b₀, b₁, ...]}`` (Wₗ of
        shape (inₗ, outₗ), bₗ of shape (outₗ,)), or a Posterior with one draw (its draw axis
        is dropped). A posterior of several draws is refused: the average of several
        networks' weights is not a network (their hidden units need not line up).

    Examples
    --------
    >>> import numpy as np
    >>> p = pretrained_params({"weights": [np.ones((2, 3))], "biases": [np.zeros(3)]})
    >>> [w.shape for w in p["weights"]]
    [(2, 3)]
    """
    params = getattr(pretrained, "params", None)
    if params is not None:  # a Posterior: drop the draw axis of its single draw
        draws = int(np.shape(params["weights"][0])[0])
        if draws != 1:
            raise ValueError(f"pretrained must be one network; this posterior holds {draws} "
                             f"draws. Pass one of them, e.g. {{g: [a[0] for a in "
                             f"post.params[g]] for g in ('weights', 'biases')}}")
        return {g: [np.asarray(a)[0] for a in params[g]] for g in PARAM_GROUPS}
    if not (isinstance(pretrained, dict) and set(PARAM_GROUPS) <= set(pretrained)):
        raise TypeError("pretrained must be a Posterior with one draw or a dict "
                        "{'weights': [...], 'biases': [...]} of a model's parameters; got "
                        f"{type(pretrained).__name__}")
    weights, biases = list(pretrained["weights"]), list(pretrained["biases"])
    if len(weights) != len(biases):
        raise ValueError(f"pretrained has {len(weights)} weight arrays and {len(biases)} "
                         f"bias arrays; an MLP has one of each per layer")
    return {"weights": [np.asarray(w) for w in weights], "biases": [np.asarray(b) for b in biases]}


def layer_indices(layers, n_layers: int) -> list[int]:
    """The layer numbers ``layers`` selects out of ``n_layers`` (a slice, an int, or ints).

    Examples
    --------
    >>> layer_indices(slice(0, -1), 3), layer_indices(-1, 3), layer_indices([0, 2], 3)
    ([0, 1], [2], [0, 2])
    """
    everything = range(n_layers)
    if isinstance(layers, slice):
        return list(everything[layers])
    chosen = [layers] if isinstance(layers, int | np.integer) else list(layers)
    out = []
    for i in chosen:
        if not isinstance(i, int | np.integer) or not -n_layers <= i < n_layers:
            raise ValueError(f"layers must be a slice, or layer numbers in [-{n_layers}, "
                             f"{n_layers}) of a network with {n_layers} layers; got {layers!r}")
        out.append(everything[i])
    if len(set(out)) != len(out):
        raise ValueError(f"layers names a layer twice: {layers!r}")
    return sorted(out)


def transfer_prior(pretrained, scale: float, *, layers=slice(0, -1), rest: float = 1.0,
                   n_layers: int | None = None) -> dict[str, Gaussian]:
    r"""A Gaussian prior centred on the pretrained values of some layers (L2-SP).

    Layer l in ``layers`` gets N(φ₀ₗ, ``scale``²) on each of its weights and biases, every
    other layer N(0, ``rest``²): the penalty is
    Σₗ∈layers ‖φₗ − φ₀ₗ‖²/(2 scale²) + Σₗ∉layers ‖φₗ‖²/(2 rest²).

    Parameters
    ----------
    pretrained : dict or Posterior
        The pretrained network (see :func:`pretrained_params`); layer l of the new network
        is centred on layer l of this one, so the two must have the same shapes on
        ``layers`` (``br.fit`` checks it and names the layer that differs).
    scale : float
        s > 0, how far the chosen layers may move from their pretrained values, in the
        parameters' units (λ = σ²/s² in the lecture's terms: :func:`bayesreg.l2_strength`).
    layers : slice, int or sequence of int
        The layers centred on φ₀; default every layer but the last (the body, not the head).
    rest : float
        Scale r > 0 of the zero-centred prior on the other layers (a new head).
    n_layers : int, optional
        Number of layers of the network to be fitted; default the pretrained network's.
        ``layers`` is resolved against it (a deeper target network, ``slice(0, 2)``).

    Returns
    -------
    dict
        ``{"weights": Gaussian(scale=[...], loc=[...]), "biases": Gaussian(...)}``: one
        scale per layer, and a loc per layer — the pretrained array, or 0.0 for the layers
        left out (broadcast to any shape, so the new head may have any number of outputs).

    Examples
    --------
    >>> import numpy as np, bayesreg as br
    >>> phi0 = {"weights": [np.ones((4, 8)), np.ones((8, 3))],
    ...         "biases": [np.zeros(8), np.zeros(3)]}
    >>> spec = br.transfer_prior(phi0, 0.1, rest=1.0)
    >>> spec["weights"].scale, [np.shape(m) for m in spec["weights"].loc]
    ([0.1, 1.0], [(4, 8), ()])
    >>> params = {"weights": [np.ones((4, 8)), np.full((8, 10), 2.0)],   # a 10-class head
    ...           "biases": [np.zeros(8), np.zeros(10)]}
    >>> float(spec["weights"].penalty(params["weights"]))                # 80 · 2² / 2
    160.0
    """
    check_positive("transfer_prior scale", scale)
    check_positive("transfer_prior rest", rest)
    phi0 = pretrained_params(pretrained)
    n = len(phi0["weights"]) if n_layers is None else int(n_layers)
    chosen = layer_indices(layers, n)
    missing = [i for i in chosen if i >= len(phi0["weights"])]
    if missing:
        raise ValueError(f"layers {missing} are not in the pretrained network, which has "
                         f"{len(phi0['weights'])} layers")
    scales = [float(scale) if i in chosen else float(rest) for i in range(n)]
    spec = {}
    for g in PARAM_GROUPS:
        loc = [phi0[g][i] if i in chosen else 0.0 for i in range(n)]
        spec[g] = Gaussian(scales, loc=loc)
    return spec


@dataclasses.dataclass(frozen=True, eq=False)
class WarmStart(MLP):
    """An :class:`~bayesreg.MLP` whose initialisation starts some layers at given values.

    Made by :func:`warm_start`. It *is* that MLP for everything but ``init``: the same
    forward pass, the same ``to_dict`` (a saved posterior loads back as the plain MLP, which
    predicts the same), equal to it in hash (a compiled training loop depends on the forward
    pass only, so fits from different starts share it).
    """

    start: tuple = dataclasses.field(default=(), repr=False)  # ((layer, W, b), ...)

    def init(self, key, n_features: int, n_outputs: int = 1, dtype=jnp.float32):
        params = super().init(key, n_features, n_outputs, dtype)
        for i, w, b in self.start:
            if i >= len(params["weights"]):
                raise ValueError(f"warm_start copies layer {i}, but this network has "
                                 f"{len(params['weights'])} layers")
            for g, value in (("weights", w), ("biases", b)):
                have = tuple(params[g][i].shape)
                if tuple(np.shape(value)) != have:
                    raise ValueError(
                        f"warm_start: the pretrained {g} of layer {i} have shape "
                        f"{tuple(np.shape(value))}, this network's {have} (with "
                        f"{n_features} input features and {n_outputs} outputs); copy only "
                        f"layers whose sizes agree, e.g. layers=slice(0, -1) for the body")
                params[g][i] = jnp.asarray(value, dtype)
        return params


def warm_start(model: MLP, pretrained, *, layers=slice(0, -1)) -> WarmStart:
    """``model`` initialised with the pretrained values of ``layers``, the others as usual.

    The fit then starts from the pretrained body, with a head drawn by the model's own
    initialisation (from the fit's seed, so a head like the one a fit from scratch starts
    with). Combine with :func:`transfer_prior` for L2-SP, or with a zero-centred prior for
    plain fine-tuning.

    Parameters
    ----------
    model : MLP
        The network to fit (its hidden sizes must match the pretrained ones on ``layers``).
    pretrained : dict or Posterior
        See :func:`pretrained_params`.
    layers : slice, int or sequence of int
        Layers copied; default every layer but the last.

    Returns
    -------
    WarmStart
        An MLP with the same ``hidden``, ``activation`` and ``dropout``.

    Examples
    --------
    >>> import jax, numpy as np, bayesreg as br
    >>> phi0 = {"weights": [np.ones((4, 8)), np.ones((8, 3))],
    ...         "biases": [np.zeros(8), np.zeros(3)]}
    >>> params = br.warm_start(br.MLP((8,)), phi0).init(jax.random.key(0), 4, n_outputs=10)
    >>> float(params["weights"][0].min()), params["weights"][1].shape   # body copied, new head
    (1.0, (8, 10))
    """
    if not isinstance(model, MLP):
        raise TypeError(f"warm_start needs a br.MLP; got {type(model).__name__} (a "
                        f"br.FunctionModel starts from the params it is given)")
    phi0 = pretrained_params(pretrained)
    chosen = layer_indices(layers, len(phi0["weights"]))
    start = tuple((i, phi0["weights"][i], phi0["biases"][i]) for i in chosen)
    base: dict[str, Any] = {f.name: getattr(model, f.name) for f in dataclasses.fields(MLP)}
    return WarmStart(**base, start=start)
