r"""The target in standard units: a regression target is fitted as (y − ȳ)/s and every result
turned back into the units of y.

A network's initialisation, its optimiser's step sizes (Adam moves a weight by about the
learning rate per update, whatever the gradient's scale) and the evidence's clips are set
for targets of order one. On a raw target far from that scale the defaults fail silently:
MLP((50,)) on sin(2x) + 0.2·noise times 100 — or divided by 100 — trains to a constant, its
learned prior scales at their 10⁻⁴ clip and σ at std(y). Dividing y by s = std(y) fixes
that and changes nothing else, because every prior the library scales is a scale family
whose scale moves with the output layer's: with f(x; W₁…W_L, b_L) linear in the output
layer, y/s is fitted by W_L/s and b_L/s, so

    p(y | X, φ, σ, prior on W_L with scale τ)  ⇔  p(y/s | X, φ', σ/s, scale τ/s)

(φ' the weights with the output layer divided by s), and the posterior of one is the
posterior of the other, mapped. ``br.fit(..., standardize=True)`` asks for it (optimiser
step sizes are then those of the standardised problem: off by default, so that a tuned
``lr`` or SGLD ``step_size`` keeps its meaning). :func:`target_scale` says when the map
exists: a
homoscedastic Gaussian likelihood (σ given or learned), a built-in model whose last weight
and bias arrays are the output layer, and a prior of zero location that is Gaussian (one
scale or one per layer) or Flat on each group — the prior left out (Gaussian scales
learned by the evidence) among them. Anything else is fitted in the units of y.
:class:`bayesreg.Posterior` keeps the parameters as fitted (``post.scale``, like
``post.offset``) and answers in the units of y: outputs s·f + ȳ, σ and the learned scales
times s, the log density and the evidence with the Jacobian −log s per observed label.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from bayesreg.likelihoods import GaussianLikelihood
from bayesreg.priors import PARAM_GROUPS, Flat, Gaussian, Tempered


def target_scale(y, model, likelihood, spec: dict, layers: int,
                 center: bool) -> tuple[float, str | None]:
    """(s, None) with s the standard deviation of the centred target (one value over every
    observed label of Y (N, T)), or (1.0, why) where the fit cannot be only a change of
    units (the module docstring). ``layers``: the model's number of weight arrays."""
    if not center:
        return 1.0, "it needs center=True"
    if not isinstance(likelihood, GaussianLikelihood) or likelihood.heteroscedastic:
        return 1.0, f"it needs a homoscedastic br.GaussianLikelihood; got {likelihood!r}"
    if not (getattr(model, "output_bias_last", True) and layers >= 1):
        return 1.0, (f"{type(model).__name__}'s output layer is not known (a built-in model's "
                     "is its last weight and bias arrays)")
    for g in PARAM_GROUPS:
        if not _scalable(spec[g]):
            return 1.0, (f"the {g} prior {spec[g]!r} is not a zero-centred br.Gaussian or "
                         "br.Flat, whose scale moves with the target's")
    s = float(np.sqrt(np.nanmean(np.asarray(y, np.float64) ** 2)))  # y is centred: its RMS
    if not (math.isfinite(s) and s > 0):
        return 1.0, "the target is constant"
    return s, None


def _scalable(prior) -> bool:
    if isinstance(prior, Flat):
        return True
    return (type(prior) is Gaussian and np.ndim(prior.loc) == 0 and float(prior.loc) == 0.0
            and not hasattr(prior.scale, "log_density"))


def scaled_group(prior, factor: float, layers: int):
    """One group's prior for outputs multiplied by ``factor``: a zero-centred Gaussian's
    output-layer scale (the last of ``layers`` arrays) times ``factor``, written one scale
    per layer (one scale stays one for a single layer); a Tempered prior's base likewise;
    Flat, and any prior whose scale does not move with the outputs', as it is."""
    if isinstance(prior, Tempered):
        return dataclasses.replace(prior, prior=scaled_group(prior.prior, factor, layers))
    if factor == 1.0 or isinstance(prior, Flat) or not _scalable(prior):
        return prior
    if not isinstance(prior.scale, list | tuple) and layers == 1:
        return Gaussian(float(np.asarray(prior.scale)) * factor)
    scales = list(prior.scale) if isinstance(prior.scale, list | tuple) else [prior.scale] * layers
    scales[-1] = scales[-1] * factor
    return Gaussian([float(np.asarray(v)) for v in scales])


def scaled_prior(spec: dict, factor: float, layers: int) -> dict:
    """The prior spec for outputs multiplied by ``factor`` (:func:`scaled_group` of each
    group)."""
    return {g: scaled_group(spec[g], factor, layers) for g in PARAM_GROUPS}


def scaled_diagnostics(diagnostics: dict, factor: float) -> dict:
    """The diagnostics a method reports in fitted units, in the units of y: σ (and its
    history) and the output layer's learned prior scales times ``factor``. The training
    losses stay those of the fitted (standardised) problem."""
    if factor == 1.0:
        return diagnostics
    out = dict(diagnostics)
    for key in ("noise_std", "noise_std_history"):
        if key in out:
            out[key] = np.asarray(out[key]) * np.asarray(factor, np.asarray(out[key]).dtype)
    if "heads_prior_variances" in out:  # variances of the output layer's weights
        out["heads_prior_variances"] = np.asarray(out["heads_prior_variances"]) * factor**2
    scales = out.get("prior_scales")
    if isinstance(scales, dict):
        out["prior_scales"] = {g: _last_times(v, factor) for g, v in scales.items()}
    strength = out.get("l2_strength")
    if isinstance(strength, dict):  # λ = σ²/τ²: the output layer's is unit-free
        out["l2_strength"] = {g: _last_times(np.asarray(v, np.float64) * factor**2,
                                             1.0 / factor**2) for g, v in strength.items()}
    return out


def _last_times(values, factor: float):
    """The output layer's entry (the last, for every member or draw) times ``factor``, in
    float64 (so that it equals the learned prior's scale times ``factor`` exactly)."""
    a = np.array(values, np.float64)
    if a.ndim == 0:
        return a * factor
    a[..., -1] = a[..., -1] * factor
    return a


def scaled_evidence(log_evidence: float, factor: float, observed: int) -> float:
    """log p(y) = log p(y/s) − (observed labels) · log s."""
    return log_evidence - observed * math.log(factor) if factor != 1.0 else log_evidence
