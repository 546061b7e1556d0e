"""Shared command line for the examples: ``--quick`` (reduced sizes) and ``--out``."""

from __future__ import annotations

import argparse
import os

import matplotlib

matplotlib.use("Agg")


def cli(doc: str, main) -> None:
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes (smoke test)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "figures"))
    args = parser.parse_args()
    main(quick=args.quick, out=args.out)


def save(fig, out: str, name: str) -> str:
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, name)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)
    print(f"wrote {path}")
    return path
