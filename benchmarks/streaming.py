"""Mini-batch MAP on a memory-mapped X (streamed by chunks) against the same fit in memory.

Data: N rows × 10 float32 features (N = 10⁷: 400 MB) written to an ``.npy`` file, y a
linear function plus noise. Fit: ``br.Linear()``, ``br.MAP(batch_size=4096, epochs=1)``,
library defaults otherwise (σ and the prior scales by the evidence; with one epoch there is
no evidence update, only the burn-in round). Each path runs in its own subprocess (so the
resident sets do not mix), fits once to compile and once more timed, on the same machine:

* ``streamed``: ``np.load(path, mmap_mode="r")`` passed to ``br.fit``;
* ``in memory``: ``np.load(path)`` (read whole first, not timed) passed to ``br.fit``.

Rows/s = N / (seconds of the timed fit), validation pass included. The peak resident set
(VmRSS sampled every 2 ms) is reported above what the process held before the first fit,
the data loaded (in memory: 440 MB of X and y already counted), for the first fit (its
compilation included), and for the second above where it started. In a fresh process the
first fit also pays for setting up JAX's runtime and XLA's compiler (their code pages and
working memory, whatever N is); ``streamed, JAX warmed`` runs one small unrelated fit
before measuring, which leaves that one-time cost out.

Run:  .venv/bin/python benchmarks/streaming.py [--rows 10000000] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

WORKER = r"""
import json, sys, threading, time
import numpy as np
import bayesreg as br
path, mode = sys.argv[1], sys.argv[2]
load = (lambda p: np.load(p, mmap_mode="r")) if mode.startswith("streamed") else np.load
X, y = load(path + "/X.npy"), load(path + "/y.npy")
if mode.endswith("JAX warmed"):  # JAX's runtime and XLA's compiler set up by another fit
    rng = np.random.default_rng(1)
    Xs = rng.normal(size=(3000, 3))
    br.fit(br.MLP((8,)), Xs, Xs[:, 0], method=br.MAP(batch_size=256, epochs=2))

def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024

before, top, done = rss(), [0.0], threading.Event()

def sample():  # the resident set's peak, every 2 ms
    while not done.is_set():
        top[0] = max(top[0], rss())
        time.sleep(0.002)

threading.Thread(target=sample, daemon=True).start()
method = br.MAP(batch_size=4096, epochs=1)
t = time.perf_counter()
br.fit(br.Linear(), X, y, method=method)
first = time.perf_counter() - t
first_peak, mid = top[0], rss()
top[0] = mid
t = time.perf_counter()
post = br.fit(br.Linear(), X, y, method=method, seed=1)
warm = time.perf_counter() - t
done.set()
w = np.asarray(post.params["weights"][0]).ravel()
print(json.dumps({"first_s": first, "warm_s": warm, "rows_per_s": len(y) / warm,
                  "peak_growth_mb": max(first_peak, top[0]) - before,
                  "first_fit_peak_growth_mb": first_peak - before,
                  "second_fit_peak_growth_mb": top[0] - mid, "weights": w.tolist()}))
"""


def write(path: str, n: int, d: int = 10) -> np.ndarray:
    rng = np.random.default_rng(0)
    w = rng.normal(size=d).astype(np.float32)
    X = np.lib.format.open_memmap(f"{path}/X.npy", "w+", np.float32, (n, d))
    y = np.lib.format.open_memmap(f"{path}/y.npy", "w+", np.float32, (n,))
    for a in range(0, n, 1_000_000):
        x = rng.normal(size=(min(1_000_000, n - a), d)).astype(np.float32)
        X[a:a + len(x)] = x
        y[a:a + len(x)] = x @ w + 0.1 * rng.normal(size=len(x))
    X.flush()
    y.flush()
    return w


def run(path: str, mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", WORKER, path, mode], capture_output=True,
                         text=True, check=False)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        w = write(tmp, args.rows)
        print(f"wrote {args.rows} × 10 float32 in {time.perf_counter() - t:.1f} s")
        rows = {mode: run(tmp, mode)
                for mode in ("streamed", "in memory", "streamed, JAX warmed")}
    for mode, r in rows.items():
        err = float(np.max(np.abs(np.asarray(r.pop("weights")) - w)))
        r["max_weight_error"] = err
        print(f"{mode:10s} {r['rows_per_s']:12,.0f} rows/s  warm {r['warm_s']:.2f} s  "
              f"first {r['first_s']:.2f} s  peak +{r['first_fit_peak_growth_mb']:.0f} MB "
              f"(first fit), +{r['second_fit_peak_growth_mb']:.0f} MB (second)  "
              f"|w - w_true| {err:.4f}")
    ratio = rows["streamed"]["rows_per_s"] / rows["in memory"]["rows_per_s"]
    print(f"streamed / in memory rows/s: {ratio:.2f}")
    result = {"rows": args.rows, "features": 10, "batch_size": 4096, "epochs": 1,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores", **rows,
              "ratio_streamed_over_in_memory": ratio}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "streaming.json"), "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
