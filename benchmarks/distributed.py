"""Speed-up of a multi-process JAX cluster: the same fits on 1 process and on P local CPU
processes joined by ``jax.distributed.initialize`` (gloo collectives; one CPU device each).

Cases (tests/distributed_worker.py): ``Ensemble(members=8)`` of MLP(64) members, 2000
full-batch Adam updates on 400 rows — timed once with compilation ("bench") and once again
with the same shapes ("bench-again": training and the all-gather only) — and NUTS with 4
chains (``chain_method="parallel"``) of 300 + 300 iterations on an MLP(16) ("bench-nuts"), and
data-parallel mini-batch MAP, 300 Adam updates of an MLP(256, 256) on batches of 2048 of
8192 rows, each batch split over the processes ("bench-dp", then "bench-dp-again"). Each
process's wall-clock time of ``br.fit``, the slowest process reported; the posterior of every
process is checked against the single-process one.

On a machine with C cores, P processes can at best be min(P, C) times faster; each process
also runs its own copy of XLA's thread pool, so with P = C the processes compete with each
other's intra-op threads, and anything else running on the machine takes its share.

Run:  .venv/bin/python benchmarks/distributed.py [--processes 2] [--cases bench,bench-again]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests import distributed_worker as worker


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--cases", default="bench,bench-again,bench-nuts")
    args = ap.parse_args()
    cases = args.cases.split(",")
    print(f"machine: {os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f}")
    one = worker.launch(args.cases, 1, timeout=1800)[0]
    many = worker.launch(args.cases, args.processes, timeout=1800)
    print(f"{'case':<12} {'1 process':>10} {f'{args.processes} processes':>12} {'speed-up':>9}"
          f"  max |Δ| to 1 process")
    for case in cases:
        t1 = float(one[f"{case}/seconds"])
        tp = max(float(out[f"{case}/seconds"]) for out in many)
        leaves = [k for k in one if k.startswith(f"{case}/leaf")]
        diff = max(float(np.max(np.abs(out[k] - one[k]))) for out in many for k in leaves)
        print(f"{case:<12} {t1:>9.2f}s {tp:>11.2f}s {t1 / tp:>8.2f}x  {diff:.1e}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
