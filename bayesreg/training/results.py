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

import contextlib
import warnings

import jax
import numpy as np

from bayesreg._scales import divergence_causes
from bayesreg.data import stream as _stream
from bayesreg.likelihoods import GaussianLikelihood
from bayesreg.models import param_shapes
from bayesreg.priors import PARAM_GROUPS, Flat, Gaussian
from bayesreg.problem import Problem
from bayesreg.training import convergence
from bayesreg.training.evidence import ALPHA_RANGE, NOISE_FLOOR, concrete_prior


def _flat_parameters(problem: Problem) -> int:
    """How many of the model's parameters have a Flat prior (0 when none do)."""
    flat = [g for g in PARAM_GROUPS if isinstance(problem.prior.get(g), Flat)]
    if not flat:
        return 0
    shapes = param_shapes(problem.model, problem.n_features, problem.n_outputs, problem.dtype)
    return sum(int(np.prod(a.shape)) for g in flat for a in shapes[g])


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
    # counted only when an update was refused: the parameter shapes of a user's model are
    # traced for it
    improper = _flat_parameters(problem) if np.any(refused > 0) else 0
    if improper and improper > problem.n:
        warnings.warn(
            f"{int(np.max(refused))} evidence update(s) were refused: under the Flat prior the "
            f"evidence does not exist for {improper} parameters on {problem.n} rows (the "
            f"Gauss–Newton matrix has rank at most {problem.n} and a flat prior adds no "
            "curvature), so σ stayed at its start, std(y). Give those parameters a proper "
            "prior (prior=br.Gaussian(...), or leave prior out to learn its scales) or the "
            "noise (likelihood=br.GaussianLikelihood(noise=...))", UserWarning, stacklevel=4)
    elif np.any(refused > 0):
        warnings.warn(
            f"{int(np.max(refused))} evidence update(s) were refused: the Gauss–Newton "
            "matrix βG + diag(α) could not be factored in the working precision, so σ and the "
            "prior scales stayed at their last values (see diagnostics['prior_scales']). A prior "
            "given explicitly (prior=br.Gaussian(...)) or standardised inputs avoid it; for a "
            f"target far from unit scale (here std {_stream.std(problem.y):.3g}), "
            "br.fit(..., standardize=True)",
            UserWarning, stacklevel=4)
    convergence.check(trace, "standardise the inputs (br.fit(..., standardize=True)) or fit "
                      "in float64 (dtype='float64')")
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
        clip = ALPHA_RANGE[1] ** -0.5  # the smallest scale the evidence may set
        if problem.scale == 1.0 and np.any(scales["weights"] <= 1.01 * clip):
            y_sd = _stream.std(problem.y)
            warnings.warn(
                f"the evidence put a layer's prior scale at its floor {clip:.3g}: the network "
                f"trained to (nearly) a constant. On a target far from unit scale (here std "
                f"{y_sd:.3g}) the optimiser cannot reach the mode in y's units; "
                "br.fit(..., standardize=True) fits it in standard units and maps every result "
                "back", UserWarning, stacklevel=4)
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


def check_progress(losses, what: str, lr, problem: Problem | None = None, *,
                   scale: float = 1.0, fix: str | None = None, rounds=None) -> None:
    """The one divergence check run after every optimisation (MAP and every method that trains
    with it, VI, SWAG's SGD phase): ``FloatingPointError`` when the loss (last axis: updates;
    leading axes: members) became NaN or ±inf, or when it ended above where it started.

    "Above" is final > start + max(``scale``, |start|), with final the median of the last 5%
    of updates (mini-batch and Monte Carlo losses are noisy) and start the first loss. With
    evidence updates during training (``rounds``: the update at which each round starts) σ
    and the prior scales change the objective between rounds, so a good fit whose σ shrank
    from std y to the noise can end far above its very first loss: such a rise is a
    divergence only when some round, under one objective, also ended above its own start by
    the same margin. An
    optimiser that converges, or merely wanders near the optimum, ends below its starting
    point; one whose step is too large climbs by orders of magnitude (Adam at lr=1e6 on a
    target of std 1: 1.5 → 960 nats a row, training RMSE 3e6), so the margin — a doubling of
    the starting loss and at least ``scale`` nats (1 nat a row for a per-row loss) — separates
    the two with room on both sides. ``fix`` is the advice; by default the likely causes
    (:func:`bayesreg._scales.divergence_causes`) for ``problem``.

    Examples
    --------
    >>> import numpy as np
    >>> check_progress(np.array([2.0, 1.0, 0.5]), "MAP", lr=0.01)
    >>> check_progress(np.array([1.5, 40.0, 960.0]), "MAP", lr=1e6)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FloatingPointError: MAP diverged: the loss rose from 1.5 to 960 over 3 updates ...
    """
    losses = np.asarray(losses, dtype=float)
    if losses.size == 0:
        return
    flat = losses.reshape(-1, losses.shape[-1])
    def likely():  # the causes are looked for only when there is a divergence to explain
        if fix is not None:
            return fix
        return (divergence_causes(problem, lr) if problem is not None
                else f"a step too large (lower lr, now {lr})" if lr is not None
                else "a step too large (lower the rate of the optax transformation given)")

    bad = ~np.isfinite(flat)
    if np.any(bad):
        first = int(np.argmax(bad.any(0)))
        cause = likely()
        if first == 0:  # the first loss is taken before any update: no step size is to blame
            cause = ("a starting point where the log density is not finite (the data, the "
                   "noise or the prior on a scale the working precision cannot represent: "
                   "rescale y or X, or fit with dtype='float64')")
        raise FloatingPointError(
            f"{what} diverged: the loss became {flat[bad][0]} after {first} updates. "
            f"Likely: {cause}")
    def rises(part):  # the members whose loss ended above where this stretch started
        window = max(1, part.shape[-1] // 20)
        start, final = part[:, 0], np.median(part[:, -window:], axis=-1)
        return final > start + np.maximum(scale, np.abs(start)), start, final

    rose, start, final = rises(flat)
    if np.any(rose) and rounds is not None:
        # evidence updates changed the objective between rounds: the rise is a divergence
        # only if some round, under one objective, also ended above where it started
        size = flat.shape[-1]
        starts = sorted({min(int(r), size - 1) for r in rounds} | {0})
        within = np.zeros_like(rose)
        for begin, end in zip(starts, [*starts[1:], size], strict=True):
            within |= rises(flat[:, begin:end])[0]
        rose = rose & within
    if np.any(rose):
        m = int(np.argmax(rose))
        member = f" (member {m})" if flat.shape[0] > 1 else ""
        raise FloatingPointError(
            f"{what} diverged{member}: the loss rose from {start[m]:.3g} to {final[m]:.3g} over "
            f"{flat.shape[-1]} updates (a fit that converges ends below where it started). "
            f"Likely: {likely()}")


def check_trace(trace, lr, problem: Problem | None = None) -> dict:
    """NumPy diagnostics from a training trace; a loss that became non-finite or ended above
    where it started is an error (:func:`check_progress`), not a silently bad fit."""
    out = {k: jax.tree_util.tree_map(np.asarray, v) for k, v in trace.items()}
    losses = out["losses"]
    rounds = out.pop("round_starts", None)  # each round's objective is fixed
    rounds = None if rounds is None else np.asarray(rounds).reshape(-1, np.shape(rounds)[-1])[0]
    check_progress(losses, "MAP", lr, problem, rounds=rounds)
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


@contextlib.contextmanager
def no_valid_start(problem: Problem):
    """"Cannot find valid initial parameters" (a RuntimeError naming no cause, raised by
    NUTS when the log density or its gradient is not finite at a chain's start, as NumPyro
    raised it) inside this block, as a ValueError with the likely causes for these data."""
    try:
        yield
    except RuntimeError as err:
        if "valid initial parameters" not in str(err):
            raise
        y = np.asarray(problem.y, float)
        raise ValueError(
            f"NUTS could not start: the log density or its gradient is not finite at the "
            f"starting points (N = {problem.n} rows, y from {y.min():.3g} to {y.max():.3g}). "
            "Likely: targets on a scale the working precision cannot square (rescale y), a "
            "noise or prior scale far from the data's, or a lower init_jitter") from None
