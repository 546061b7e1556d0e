"""``post.summary()``: a fit in a few lines — method, noise σ, prior scales, λ, draws and the
diagnostics that say whether to trust it — never whole arrays.

``post.diagnostics`` keeps everything a method recorded (loss curves, per-draw sampler
statistics, ...); :class:`Summary` keeps the numbers a person reads first.

Examples
--------
>>> import numpy as np, bayesreg as br
>>> X = np.linspace(0, 1, 20); y = 2 * X + 0.1 * np.sin(9 * X)
>>> post = br.fit(br.Linear(), X, y, method=br.Exact(), prior=br.Gaussian(2.0),
...               likelihood=br.GaussianLikelihood(0.1))
>>> s = post.summary()
>>> s.noise, s.noise_source, s.l2_strength["weights"]
(0.1, 'given', (0.0025,))
>>> print(s)  # doctest: +ELLIPSIS
method        Exact (Linear, GaussianLikelihood)
draws         1000 (1 chain × 1000)
noise σ       0.1 (given)
prior         weights Gaussian(s=2); biases Gaussian(s=2)
λ = σ²/s²     weights 0.0025; biases 0.0025
log evidence  ...
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from bayesreg.priors import Gaussian

# (diagnostics key, label, reduce) of the scalar diagnostics a summary shows, in this order;
# reduce says how to read an array-valued entry (e.g. one final loss per ensemble member).
DIAGNOSTICS = (
    ("r_hat", "R-hat (max)", np.max),
    ("ess_bulk", "ESS bulk (min)", np.min),
    ("ess_tail", "ESS tail (min)", np.min),
    ("divergences", "divergences", np.sum),
    ("final_loss", "final loss", np.mean),
    ("final_elbo", "final ELBO", np.mean),
    ("mode_loss", "loss at the mode", np.mean),
    ("rate", "dropout rate", np.mean),
    ("sampling_seconds", "sampling seconds", np.sum),
)


def _fmt(x) -> str:
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return f"{float(x):.4g}"


def _values(xs) -> str:
    return ", ".join(_fmt(v) for v in xs)


def _per_group(d: dict) -> str:
    return "; ".join(f"{g} {_values(v)}" for g, v in d.items())


@dataclasses.dataclass(frozen=True, repr=False)
class Summary:
    """What a fit says, in a few numbers (``print`` it, or show it in a notebook).

    Attributes
    ----------
    method, model, likelihood : str
        Names, e.g. "NUTS", "MLP", "GaussianLikelihood".
    num_draws, num_chains : int
    draws_kind : str
        What the draws are ("posterior samples", or e.g. "independently trained ensemble
        members, not posterior samples").
    noise : float or None
        The likelihood's σ: as given, or as learned (the mean over draws); None for a
        classifier or a noise that depends on x.
    noise_source : str
        "given", "learned", "depends on x" or "none" (classification).
    prior : dict
        Group ("weights", "biases") → the prior, e.g. "Gaussian(s=0.5, 1.2)" (one scale per
        layer where the scales are layer-wise).
    prior_scales : dict
        Group → its prior scales s, one per layer (or one for all layers).
    l2_strength : dict
        Group → λ = σ²/s² (the ``loss="sse"`` convention, :func:`bayesreg.l2_strength`),
        for Gaussian priors and a noise σ that is one number.
    hyperparameters : str or None
        How prior scales were chosen when the prior was left out ("evidence", ...).
    log_evidence : float
        ``nan`` where there is none.
    diagnostics : dict
        Label → number, for the scalar diagnostics present (R-hat max, ESS min, divergences,
        final loss, final ELBO, ...).
    """

    method: str
    model: str
    likelihood: str
    num_draws: int
    num_chains: int
    draws_kind: str
    noise: float | None
    noise_source: str
    prior: dict
    prior_scales: dict
    l2_strength: dict
    hyperparameters: str | None
    log_evidence: float
    diagnostics: dict

    def rows(self) -> list[tuple[str, str]]:
        """(label, text) of every line of the table."""
        per_chain = self.num_draws // max(self.num_chains, 1)
        chains = "chain" if self.num_chains == 1 else "chains"
        rows = [("method", f"{self.method} ({self.model}, {self.likelihood})"),
                ("draws", f"{self.num_draws} ({self.num_chains} {chains} × {per_chain})")]
        if self.draws_kind != "posterior samples":
            rows.append(("draws are", self.draws_kind))
        if self.noise is not None:
            rows.append(("noise σ", f"{_fmt(self.noise)} ({self.noise_source})"))
        elif self.noise_source == "depends on x":
            rows.append(("noise σ", "depends on x (the network's second output)"))
        prior = "; ".join(f"{g} {p}" for g, p in self.prior.items())
        if self.hyperparameters:
            prior += f" (scales learned by {self.hyperparameters})"
        rows.append(("prior", prior))
        if self.l2_strength:
            rows.append(("λ = σ²/s²", _per_group(self.l2_strength)))
        if not math.isnan(self.log_evidence):
            rows.append(("log evidence", _fmt(self.log_evidence)))
        rows += [(label, _fmt(v)) for label, v in self.diagnostics.items()]
        return rows

    def __str__(self) -> str:
        rows = self.rows()
        width = max(len(label) for label, _ in rows)
        return "\n".join(f"{label:<{width}}  {text}" for label, text in rows)

    __repr__ = __str__

    def _repr_markdown_(self) -> str:
        lines = ["| | |", "|---|---|"]
        return "\n".join(lines + [f"| {label} | {text} |" for label, text in self.rows()])


def _scales(prior) -> tuple[float, ...] | None:
    scale = getattr(prior, "scale", None)
    if scale is None or not np.all(np.isfinite(np.asarray(scale, dtype=float))):
        return None
    return tuple(float(s) for s in np.ravel(np.asarray(scale, dtype=float)))


def _describe(prior) -> str:
    name = type(prior).__name__
    scales = _scales(prior)
    if scales is None:
        return name
    df = getattr(prior, "df", None)
    return f"{name}({'' if df is None else f'df={_fmt(df)}, '}s={_values(scales)})"


def summarize(post) -> Summary:
    """The :class:`Summary` of a :class:`~bayesreg.Posterior` (``post.summary()``)."""
    lik = post.likelihood
    if lik.kind != "regression":
        noise, source = None, "none"
    elif lik.heteroscedastic:
        noise, source = None, "depends on x"
    elif lik.learned_noise:
        noise, source = float(np.mean(post.noise_std())), "learned"
    else:
        noise, source = float(lik.noise), "given"
    scales = {g: s for g, p in post.prior.items() if (s := _scales(p)) is not None}
    lam = {}
    if noise is not None:
        lam = {g: tuple(noise**2 / v**2 for v in s) for g, s in scales.items()
               if isinstance(post.prior[g], Gaussian)}
    diag = {}
    for key, label, reduce in DIAGNOSTICS:
        value = post.diagnostics.get(key)
        if value is not None and np.size(value) > 0 and np.issubdtype(
                np.asarray(value).dtype, np.number):
            diag[label] = reduce(np.asarray(value)).item()
    return Summary(
        method=post.method, model=type(post.model).__name__, likelihood=type(lik).__name__,
        num_draws=post.num_draws, num_chains=post.num_chains, draws_kind=post.draws_kind,
        noise=noise, noise_source=source,
        prior={g: _describe(p) for g, p in post.prior.items()}, prior_scales=scales,
        l2_strength=lam, hyperparameters=post.diagnostics.get("hyperparameters"),
        log_evidence=float(post.log_evidence), diagnostics=diag)
