"""Mean-field VI's σ on a network, against NUTS and the Laplace approximation, on the
diabetes table with ``MLP((50,))`` under the prior ``bayesreg compare`` learns (the rows and
columns of ``benchmarks/sgld_start.py``), with ``diagnostics["mean_field_dof"]``,
``["posterior_dof"]`` and ``["sigma_inflation"]`` (bayesreg/variational.py). The table
of docs/methods/vi.md.

Run:  .venv/bin/python benchmarks/vi_noise.py
"""

from __future__ import annotations

from sgld_start import HEADER, diabetes, row

import bayesreg as br


def main() -> None:
    data = diabetes()
    print(f"{HEADER} mean_field_dof | posterior_dof | sigma_inflation |\n"
          "|---|---|---|---|---|---|---|---|---|---|")
    for steps in (5_000, 20_000, 60_000):
        row(f"VI(steps={steps})", br.VI(steps=steps), data,
            ("mean_field_dof", "posterior_dof", "sigma_inflation"))
    print(f"{HEADER}\n|---|---|---|---|---|---|---|")
    row("LaplaceApprox()", br.LaplaceApprox(), data)
    row("NUTS (2 x 500 draws)", br.NUTS(num_warmup=500, num_samples=500, num_chains=2), data)


if __name__ == "__main__":
    main()
