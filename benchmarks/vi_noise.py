"""Mean-field VI's σ on a network, against NUTS and the Laplace approximation, on the
diabetes table with ``MLP((50,))`` under the prior ``bayesreg compare`` learns (the rows and
columns of ``benchmarks/sgld_start.py``), with ``diagnostics["mean_field_dof"]``,
``["posterior_dof"]`` and ``["sigma_inflation"]`` (bayesreg/variational.py): the default
(σ by the evidence at q's mean) and the ELBO's own σ (``noise="elbo"``). The table of
docs/methods/vi.md.

Run:  .venv/bin/python benchmarks/vi_noise.py
"""

from __future__ import annotations

import time
import warnings

from sgld_start import HEADER, diabetes, row

import bayesreg as br


def warm_seconds(method, data) -> float:
    """Seconds of a second fit of ``method`` on ``data`` (the first compiles)."""
    Xtr, z, _, _, _, _, prior = data
    for _ in range(2):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            br.fit(br.MLP((50,)), Xtr, z, method=method, prior=prior)
    return time.perf_counter() - start


def main() -> None:
    data = diabetes()
    print(f"{HEADER} mean_field_dof | posterior_dof | sigma_inflation |\n"
          "|---|---|---|---|---|---|---|---|---|---|")
    row("VI() (σ by the evidence at q's mean)", br.VI(), data,
        ("mean_field_dof", "posterior_dof", "sigma_inflation"))
    for steps in (5_000, 20_000, 60_000):
        row(f"VI(noise=\"elbo\", steps={steps})", br.VI(noise="elbo", steps=steps), data,
            ("mean_field_dof", "posterior_dof", "sigma_inflation"))
    default = warm_seconds(br.VI(progress_bar=False), data)
    elbo = warm_seconds(br.VI(noise="elbo", progress_bar=False), data)
    print(f"warm fit: VI() {default:.2f} s, VI(noise=\"elbo\") {elbo:.2f} s")
    print(f"{HEADER}\n|---|---|---|---|---|---|---|")
    row("LaplaceApprox()", br.LaplaceApprox(), data)
    row("NUTS (2 x 500 draws)", br.NUTS(num_warmup=500, num_samples=500, num_chains=2), data)


if __name__ == "__main__":
    main()
