r"""Prior ⇔ regularizer conversions.

MAP with a Gaussian likelihood of noise σ minimises

    J(φ) = (1/2σ²) Σᵢ (yᵢ − f(xᵢ))² − log p(φ) + const.

Rescaling J does not move its minimum, so each loss convention has its own λ:

=============  ===============================  ===============  ================
``loss``       objective                        Gaussian N(0,s²)  Laplace(b)
=============  ===============================  ===============  ================
``"sse"``      Σ(y − f)² + λ·g(φ)   (×2σ²)      λ = σ²/s²        λ = 2σ²/b
``"mse"``      (1/n)Σ(y − f)² + λ·g(φ)          λ = σ²/(n s²)    λ = 2σ²/(n b)
``"half_mse"`` (1/2n)Σ(y − f)² + λ·g(φ)         λ = σ²/(2n s²)   λ = σ²/(n b)
=============  ===============================  ===============  ================

with g(φ) = ‖φ‖² for L2 and ‖φ‖₁ for L1. ``"sse"`` L2 is scikit-learn's
``Ridge(alpha=λ)``; ``"half_mse"`` L1 is scikit-learn's ``Lasso(alpha=λ)``.
Plain SGD weight decay on the mean squared error, φ ← φ − α(∇MSE + wd·φ), is
wd = 2λ of the ``"mse"`` form: see :func:`weight_decay`.

Examples
--------
>>> import bayesreg as br
>>> br.l2_strength(br.Gaussian(2.0), noise=1.0)          # σ²/s²
0.25
>>> br.prior_from_l2(0.25, noise=1.0).scale
2.0
"""

from __future__ import annotations

import math

from bayesreg._deprecated import renamed
from bayesreg._pytree import check_positive
from bayesreg.priors import Gaussian, Laplace

LOSSES = ("sse", "mse", "half_mse")


def _divisor(loss: str, n) -> float:
    """Factor by which the sse-form λ shrinks in the given loss convention."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}; got {loss!r}")
    if loss == "sse":
        return 1.0
    if n is None:
        raise ValueError(f"loss={loss!r} needs n, the number of training points; got n=None")
    check_positive("n", n)
    return float(n) if loss == "mse" else 2.0 * float(n)


def _noise(fn_name: str, noise, noise_scale) -> float:
    """σ from ``noise`` (its one name across the API) or ``noise_scale`` (its old name here,
    kept for one release with a DeprecationWarning); checked positive."""
    noise = renamed(fn_name, "noise_scale", noise_scale, "noise", noise, stacklevel=4)
    if noise is None:
        raise TypeError(f"{fn_name} needs the likelihood's noise σ: {fn_name}(..., noise=σ)")
    check_positive("noise", noise)
    return float(noise)


def _check(prior, cls, fn_name: str) -> None:
    if not isinstance(prior, cls):
        raise TypeError(f"{fn_name} takes a br.{cls.__name__} prior; got {type(prior).__name__}")


def l2_strength(prior: Gaussian, noise: float | None = None, n: int | None = None,
                loss: str = "sse", *, noise_scale: float | None = None):
    """L2 strength λ equivalent to a Gaussian prior N(loc, s²) under Gaussian noise σ.

    Parameters
    ----------
    prior : Gaussian
        The prior; its ``loc`` becomes the centre of the penalty ‖φ − loc‖².
    noise : float
        Likelihood noise standard deviation σ (same units as y).
    n : int, optional
        Number of training points; needed by ``loss="mse"`` and ``"half_mse"``.
    loss : {"sse", "mse", "half_mse"}
        Convention of the data term (module docstring). ``"sse"``: λ = σ²/s².

    Returns
    -------
    float

    Examples
    --------
    >>> import bayesreg as br
    >>> br.l2_strength(br.Gaussian(1.0), noise=0.5, n=10, loss="mse")
    0.025
    """
    _check(prior, Gaussian, "l2_strength")
    noise = _noise("l2_strength", noise, noise_scale)
    return noise ** 2 / float(prior.scale) ** 2 / _divisor(loss, n)


def prior_from_l2(lam: float, noise: float | None = None, n: int | None = None,
                  loss: str = "sse", *, noise_scale: float | None = None):
    """Gaussian prior N(0, s²) equivalent to L2 strength λ: the inverse of :func:`l2_strength`.

    Examples
    --------
    >>> import bayesreg as br
    >>> br.prior_from_l2(4.0, noise=1.0).scale        # s = σ/√λ
    0.5
    """
    check_positive("lam", lam)
    noise = _noise("prior_from_l2", noise, noise_scale)
    return Gaussian(noise / math.sqrt(float(lam) * _divisor(loss, n)))


def l1_strength(prior: Laplace, noise: float | None = None, n: int | None = None,
                loss: str = "sse", *, noise_scale: float | None = None):
    """L1 strength λ equivalent to a Laplace prior of scale b under Gaussian noise σ.

    ``"sse"``: λ = 2σ²/b;  ``"half_mse"``: λ = σ²/(n b), scikit-learn ``Lasso``'s alpha.

    Examples
    --------
    >>> import bayesreg as br
    >>> br.l1_strength(br.Laplace(0.5), noise=1.0, n=4, loss="half_mse")
    0.5
    """
    _check(prior, Laplace, "l1_strength")
    noise = _noise("l1_strength", noise, noise_scale)
    return 2.0 * noise ** 2 / float(prior.scale) / _divisor(loss, n)


def prior_from_l1(lam: float, noise: float | None = None, n: int | None = None,
                  loss: str = "sse", *, noise_scale: float | None = None):
    """Laplace prior equivalent to L1 strength λ: the inverse of :func:`l1_strength`.

    Examples
    --------
    >>> import bayesreg as br
    >>> br.prior_from_l1(2.0, noise=1.0).scale        # b = 2σ²/λ
    1.0
    """
    check_positive("lam", lam)
    noise = _noise("prior_from_l1", noise, noise_scale)
    return Laplace(2.0 * noise ** 2 / (float(lam) * _divisor(loss, n)))


def weight_decay(prior: Gaussian, noise: float | None = None, n: int | None = None, *,
                 noise_scale: float | None = None) -> float:
    """SGD weight decay wd on the mean squared error equivalent to a Gaussian prior.

    The update φ ← φ − α(∇MSE(φ) + wd·φ) has the fixed points of MSE + (wd/2)‖φ‖², so
    wd = 2λ_mse = 2σ²/(n s²).

    Examples
    --------
    >>> import bayesreg as br
    >>> br.weight_decay(br.Gaussian(1.0), noise=1.0, n=100)
    0.02
    """
    noise = _noise("weight_decay", noise, noise_scale)
    return 2.0 * l2_strength(prior, noise, n=n, loss="mse")
