"""Shared command line for the examples: ``--quick`` (reduced sizes) and ``--out``.

Each example writes its figure to ``examples/output/`` by default (``--out DIR`` elsewhere).
That folder is ignored by git, so running an example never changes a tracked file.

The figures of the gallery (``docs/examples.md``) are the committed ones in ``docs/figures/``.
Regenerating them is an explicit step: ``make gallery`` (``examples/_gallery.py``) runs every
example at full size and writes ``docs/figures/NAME.png`` and ``NAME.txt`` (what it printed,
with its wall time); ``make gallery NAMES="bagging dropout"`` reruns a few. Then update the
numbers quoted next to the figures in ``docs/examples.md`` from the ``.txt`` files and commit.
"""

from __future__ import annotations

import argparse
import os

import matplotlib

matplotlib.use("Agg")

OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "output")


def cli(doc: str, main) -> None:
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes (smoke test)")
    parser.add_argument("--out", default=OUTPUT,
                        help="folder for the figure (default: examples/output, ignored by git)")
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
