"""`make bench`: every benchmark in one run, written to benchmarks/results.md and JSON.

Run:  .venv/bin/python benchmarks/run_all.py [--quick]
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import defaults_cost  # noqa: E402
import ensemble_vs_baselines  # noqa: E402
import nuts_vs_blackjax  # noqa: E402
import nuts_vs_numpyro  # noqa: E402

from bayesreg import bench  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    out = os.path.join(HERE, "results")
    core = bench.run(quick=args.quick, out=out)
    nuts = nuts_vs_numpyro.run(args.quick, out)
    ens = ensemble_vs_baselines.run(args.quick, out)
    costs = defaults_cost.run(2 if args.quick else 5, out)
    bj = nuts_vs_blackjax.run(2 if args.quick else 5, out)
    lines = [
        "# Benchmark results", "",
        f"Measured {datetime.date.today()} with `make bench` "
        f"({'quick' if args.quick else 'full'} sizes) on {core['device']}, {core['machine']}.",
        "Medians of warm runs; compile time separate; ratio = bayesreg / baseline "
        "(lower is better).", "",
        "## bayesreg against hand-written JAX and scikit-learn", "", bench.to_markdown(core), "",
        "## NUTS against NumPyro written by hand", "",
        f"{nuts['settings']['model']}, N={nuts['settings']['n']}, "
        f"{nuts['settings']['num_warmup']} warmup + {nuts['settings']['num_samples']} draws, "
        f"{nuts['settings']['repeats']} repeats.", "",
        "| | NumPyro | bayesreg |", "|---|---|---|",
        f"| cold fit s (with compile) | {nuts['numpyro']['cold_seconds']:.2f} | "
        f"{nuts['bayesreg']['cold_seconds']:.2f} |",
        f"| warm fit s (median) | {nuts['numpyro']['median_seconds']:.2f} | "
        f"{nuts['bayesreg']['median_seconds']:.2f} |",
        f"| min ESS of f at 5 points | {nuts['numpyro']['median_min_ess_f']:.0f} | "
        f"{nuts['bayesreg']['median_min_ess_f']:.0f} |",
        f"| ESS per second | {nuts['numpyro']['ess_per_second']:.1f} | "
        f"{nuts['bayesreg']['ess_per_second']:.1f} |",
        f"| ESS per gradient evaluation | {nuts['numpyro']['ess_per_gradient']:.5f} | "
        f"{nuts['bayesreg']['ess_per_gradient']:.5f} |", "",
        f"Ratio bayesreg / NumPyro: warm {nuts['ratio_median_time']:.3f}, cold "
        f"{nuts['ratio_cold_time']:.3f} (goal ≤ 1.1).", "",
        "## Ensemble(10) against a hand-written vmap loop and scikit-learn", "",
        f"{ens['settings']['members']} × MLP({ens['settings']['hidden']}), "
        f"N={ens['settings']['n']}, {ens['settings']['steps']} full-batch Adam updates.", "",
        "| | median s | first call s |", "|---|---|---|",
    ]
    for k in ("hand_written_vmap", "bayesreg", "sklearn_10_fits"):
        lines.append(f"| {k} | {ens[k]['median_seconds']:.2f} | {ens[k]['first_seconds']:.2f} |")
    lines += ["", f"bayesreg / hand-written: {ens['ratio_vs_hand_written']:.3f} (goal ≤ 1.2); "
              f"scikit-learn / bayesreg: {ens['speedup_vs_sklearn']:.1f}× (goal ≥ 5).", ""]
    lines += ["## What the defaults cost (benchmarks/defaults_cost.py)", "",
              "| pair | default s | given s | ratio | goal |", "|---|---|---|---|---|"]
    for name in ("ensemble", "dropout", "laplace"):
        r, first = costs[name], "default" if name != "laplace" else "new_size"
        lines.append(f"| {name} | {r[first]['median_seconds']:.2f} | "
                     f"{r['given']['median_seconds']:.2f} | {r['ratio']:.2f} | "
                     f"≤ {defaults_cost.GOALS[name]} |")
    lines += ["", "## NUTS against blackjax (benchmarks/nuts_vs_blackjax.py)", "",
              "| | median s | min ESS of f | s per ESS | divergences |", "|---|---|---|---|---|"]
    for side in ("bayesreg", "blackjax"):
        r = bj[side]
        lines.append(f"| {side} | {r['median_seconds']:.2f} | {r['median_min_ess']:.0f} | "
                     f"{r['median_seconds_per_ess']:.5f} | {sum(r['divergences'])} |")
    lines += ["", f"bayesreg / blackjax seconds per ESS: {bj['ratio_seconds_per_ess']:.2f} "
              "(goal ≤ 1.0).", ""]
    uci = os.path.join(out, "uci.md")
    if os.path.exists(uci):  # written by benchmarks/uci.py (20 splits: run on its own)
        with open(uci) as fh:
            lines += ["## UCI regression protocol", "",
                      "`benchmarks/uci.py` (its own run: `.venv/bin/python benchmarks/uci.py`); "
                      "published numbers beside, bold where ours are at least as good.", "",
                      fh.read().strip(), ""]
    extra = os.path.join(out, "uci_dropout_validation.md")
    if os.path.exists(extra):  # the alternative noise choice for MC dropout, run on its own
        with open(extra) as fh:
            lines += [fh.read().strip(), ""]
    with open(os.path.join(HERE, "results.md"), "w") as fh:
        fh.write("\n".join(lines))
    print(f"wrote {os.path.join(HERE, 'results.md')}")


if __name__ == "__main__":
    main()
