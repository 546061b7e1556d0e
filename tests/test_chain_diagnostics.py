"""bayesreg.chain_diagnostics against ArviZ, whose rank-normalised R-hat and bulk / tail ESS
it computes over every coordinate at once: equal to rounding (1e-9 relative) on chains that
are independent, autocorrelated (φ = 0.95), anti-correlated (φ = −0.9, ESS above C·S), tied
(rounded draws), offset (one chain elsewhere), of odd and shortest length, single, stuck
and with a NaN draw."""

import logging

import arviz as az
import numpy as np
import pytest

from bayesreg import chain_diagnostics as cd
from bayesreg import mcmc


def ar1(rng, chains, draws, coords, phi):
    e = rng.standard_normal((chains, draws, coords))
    a = np.empty_like(e)
    a[:, 0] = e[:, 0]
    for t in range(1, draws):
        a[:, t] = phi * a[:, t - 1] + e[:, t]
    return a


def arviz(x, fn):
    """ArviZ on one coordinate's (chains, draws); its 'not valid' log lines silenced."""
    logging.disable(logging.WARNING)
    try:
        with np.errstate(divide="ignore", invalid="ignore"):  # a stuck chain: W = 0
            return float(fn(x))
    finally:
        logging.disable(logging.NOTSET)


@pytest.mark.parametrize("chains", [1, 2, 4])
@pytest.mark.parametrize("draws", [4, 7, 200, 1001])
@pytest.mark.parametrize("phi", [-0.9, 0.0, 0.95])
def test_equal_to_arviz(chains, draws, phi):
    rng = np.random.default_rng(chains * 1000 + draws)
    a = ar1(rng, chains, draws, 3, phi)
    a[..., 2] = np.round(a[..., 2])  # ties
    if chains > 1:
        a[1, :, 1] += 3.0  # one chain elsewhere: R-hat far above 1
    got = {"rhat": cd.rhat(a) if chains > 1 else None,
           "bulk": cd.ess_bulk(a), "tail": cd.ess_tail(a)}
    for j in range(3):
        x = a[:, :, j]
        want = {"bulk": arviz(x, lambda v: az.ess(v, method="bulk")),
                "tail": arviz(x, lambda v: az.ess(v, method="tail"))}
        if chains > 1:
            want["rhat"] = arviz(x, az.rhat)
        for name, value in want.items():
            np.testing.assert_allclose(got[name][j], value, rtol=1e-9, err_msg=name)


def test_stuck_constant_and_nan_coordinates_as_arviz():
    stuck = np.zeros((2, 50, 2))
    stuck[1, :, 1] = 1.0  # two chains that never move, apart
    for j in range(2):
        x = stuck[:, :, j]
        np.testing.assert_equal(cd.rhat(stuck)[j], arviz(x, az.rhat))
        np.testing.assert_allclose(cd.ess_bulk(stuck)[j], arviz(x, az.ess))
        np.testing.assert_allclose(
            cd.ess_tail(stuck)[j], arviz(x, lambda v: az.ess(v, method="tail")))
    with_nan = np.random.default_rng(0).standard_normal((2, 50, 2))
    with_nan[0, 3, 0] = np.nan
    assert np.isnan(arviz(with_nan[:, :, 0], az.rhat))
    assert np.isnan(cd.rhat(with_nan)[0]) and np.isfinite(cd.rhat(with_nan)[1])
    assert np.isnan(cd.ess_bulk(with_nan)[0]) and np.isfinite(cd.ess_tail(with_nan)[1])


EDGES = {  # each once differed from ArviZ (an independent review); (draws, diagnostic)
    # float32: ArviZ folds |a − median a| in float32, whose rounding moves ties and ranks
    "float32 tails": (np.array([[1, 1 + 2.0**-23, 5, -3], [2, 0, 4, -1]], np.float32), "rhat"),
    # the median is inf, so |inf − inf| is NaN: the tails' R-hat is NaN and the bulk's stands
    "inf majority": (np.array([[np.inf, np.inf, np.inf, 0.0, 1.0, 2.0],
                               [np.inf, np.inf, np.inf, 5.0, 3.0, 4.0]]), "rhat"),
    # a pair of autocorrelations summing to 0 up to the FFT's rounding ends Geyer's sequence
    "binary bulk": (np.array([[0, 1, 1, 0, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0.]]),
                    "bulk"),
    "binary tail": (np.array([[1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1.],
                              [0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 0.]]), "tail"),
    # float32 integers: the 95% quantile computed in float32 rounds below the largest value
    "float32 quantile": (np.array([[2, 0, 2, 3, 3, 1, 0, 2, 1, 2, 0, 1, 3, 1, 3, 2, 0, 2, 0]],
                                  np.float32), "tail"),
}


@pytest.mark.parametrize("case", list(EDGES))
def test_rounding_edges_as_arviz(case):
    x, which = EDGES[case]
    ours = {"rhat": cd.rhat, "bulk": cd.ess_bulk, "tail": cd.ess_tail}[which]
    theirs = {"rhat": az.rhat, "bulk": lambda v: az.ess(v, method="bulk"),
              "tail": lambda v: az.ess(v, method="tail")}[which]
    with np.errstate(invalid="ignore"):
        got = ours(x[..., None])[0]
    np.testing.assert_allclose(got, arviz(x, theirs), rtol=1e-9)


def test_chain_summary_is_the_extreme_over_every_leaf():
    rng = np.random.default_rng(3)
    z = {"w": ar1(rng, 2, 300, 4, 0.5).reshape(2, 300, 2, 2), "s": ar1(rng, 2, 300, 1, 0.9)[..., 0]}
    s = mcmc.chain_summary(z)
    columns = [z["w"][:, :, i, k] for i in range(2) for k in range(2)] + [z["s"]]
    assert s["r_hat"] == pytest.approx(max(arviz(c, az.rhat) for c in columns), rel=1e-9)
    assert s["ess_bulk"] == pytest.approx(min(arviz(c, az.ess) for c in columns), rel=1e-9)
    assert s["ess_tail"] == pytest.approx(
        min(arviz(c, lambda v: az.ess(v, method="tail")) for c in columns), rel=1e-9)
    # one chain: R-hat of its two halves, as ArviZ gives for the halves as two chains
    one = {"w": z["w"][:1]}
    halves = [c[:1, :300].reshape(2, 150) for c in columns[:4]]
    assert mcmc.chain_summary(one)["r_hat"] == pytest.approx(
        max(arviz(h, az.rhat) for h in halves), rel=1e-9)


def test_no_arviz_import_on_the_samplers_path():
    """The point of the module: a NUTS or SGLD fit does not pay ArviZ's import."""
    import subprocess
    import sys
    code = ("import sys, numpy as np; from bayesreg import mcmc; "
            "mcmc.chain_summary({'w': np.ones((2, 10, 1)) + np.arange(10)[:, None]}); "
            "print('arviz' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
