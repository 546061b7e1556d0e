"""What a training loop's trace says: :func:`check_trace` (NumPy diagnostics; a diverged loss
is an error naming its likely causes) and :func:`learned_hyperparameters` (the σ, prior scales
and λ = σ²/s² the evidence hook learned, and the prior the fit therefore used).

Examples
--------
>>> import numpy as np
>>> check_trace({"losses": np.array([2.0, 1.0, 0.5])}, lr=0.01)["final_loss"]
0.5
"""

from __future__ import annotations

import warnings

import jax
import numpy as np

from bayesreg._scales import divergence_causes
from bayesreg.data import stream as _stream
from bayesreg.likelihoods import GaussianLikelihood
from bayesreg.priors import PARAM_GROUPS, Gaussian
from bayesreg.problem import Problem
from bayesreg.training.evidence import NOISE_FLOOR, concrete_prior


def learned_hyperparameters(problem: Problem, trace: dict, state) -> tuple[dict, dict]:
    """(the prior the fit used, diagnostics with σ, the prior scales and λ = σ²/s²).

    ``trace`` may hold a leading member axis (ensembles): the prior is then the one of the
    first member and the diagnostics keep every member's values."""
    trace = dict(trace)
    hyper = trace.pop("hyper", None)
    history = trace.pop("hyper_history", None)
    prior = problem.prior
    lik = problem.likelihood
    if isinstance(lik, GaussianLikelihood) and not lik.heteroscedastic:
        noise = (np.exp(np.asarray(state["theta"]["log_noise"])) if lik.learned_noise
                 else np.asarray(lik.noise, float))
        trace["noise_std"] = noise
    if hyper is None:
        return prior, trace
    trace["hyperparameters"] = "evidence"
    refused = np.asarray(trace.get("evidence_refused", 0))
    if np.any(refused > 0):
        warnings.warn(
            f"{int(np.max(refused))} evidence update(s) were refused: the Gauss–Newton "
            "matrix βG + diag(α) could not be factored in the working precision, so σ and the "
            "prior scales stayed at their last values (see diagnostics['prior_scales']). A prior "
            "given explicitly (prior=br.Gaussian(...)) or standardised inputs avoid it",
            UserWarning, stacklevel=4)
    if "log_noise" in hyper:
        floor = NOISE_FLOOR * (_stream.std(problem.y) or 1.0)  # as in the training loop
        if np.any(np.asarray(trace["noise_std"]) <= 1.01 * floor):
            warnings.warn(
                f"the evidence put the noise at its floor σ = {floor:.3g} ({NOISE_FLOOR:g} × "
                "std(y)): the model fits these targets exactly (noiseless data?). Intervals "
                "then carry no noise; if the noise level is known, pass "
                "likelihood=br.GaussianLikelihood(noise=...)", UserWarning, stacklevel=4)
    if history is not None and "log_noise" in history:
        trace["noise_std_history"] = np.exp(np.asarray(history["log_noise"]))
    if "log_scale" in hyper:
        scales = {g: np.stack([np.exp(np.asarray(v)) for v in hyper["log_scale"][g]], -1)
                  for g in PARAM_GROUPS}
        trace["prior_scales"] = scales
        first = {g: [v[0] if v.ndim else v for v in (
            np.asarray(x) for x in hyper["log_scale"][g])] for g in PARAM_GROUPS}
        prior = concrete_prior(first)
        if "noise_std" in trace:
            noise = np.asarray(trace["noise_std"])
            tasks = problem.n_tasks > 1  # σ (…, T): λ per task and layer, (…, T, L)
            trace["l2_strength"] = {g: (noise[..., None] ** 2) / (
                np.expand_dims(scales[g], -2) if tasks else scales[g]) ** 2
                for g in PARAM_GROUPS}
    elif "noise_std" in trace and all(isinstance(p, Gaussian) and np.ndim(p.scale) == 0
                                      for p in prior.values()):
        trace["l2_strength"] = {g: np.asarray(trace["noise_std"]) ** 2 / float(p.scale) ** 2
                                for g, p in prior.items()}
    return prior, trace


def check_trace(trace, lr, problem: Problem | None = None) -> dict:
    """NumPy diagnostics from a training trace; a non-finite loss is an error, not a NaN fit
    (with the likely causes for ``problem``)."""
    out = {k: jax.tree_util.tree_map(np.asarray, v) for k, v in trace.items()}
    losses = out["losses"]
    bad = ~np.isfinite(losses)
    if np.any(bad):
        first = np.argmax(bad.reshape(-1, losses.shape[-1]).any(0))
        causes = (divergence_causes(problem, lr) if problem is not None
                  else f"a step too large (lower lr, now {lr})")
        raise FloatingPointError(
            f"MAP diverged: the loss became {losses[bad][0]} after {int(first)} updates. "
            f"Likely: {causes}")
    out["final_loss"] = float(np.mean(losses[..., -1]))
    out["num_updates"] = int(losses.shape[-1])
    for k in ("best_update", "stopped_update"):
        if k in out and out[k].ndim == 0:
            out[k] = int(out[k])
    if "val_losses" not in out or out["val_losses"].shape[-1] == 0:
        out.pop("val_losses", None)
        out.pop("best_update", None)
        out.pop("stopped_update", None)
    return out
