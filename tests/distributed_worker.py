"""One process of a local multi-process JAX cluster (run by tests/test_distributed.py and
benchmarks/distributed.py; not a test module).

    python tests/distributed_worker.py CASES PROCESS_ID NUM_PROCESSES PORT OUT.npz

Every process joins the cluster on 127.0.0.1:PORT over CPU (gloo) collectives, runs each of
the comma-separated CASES (see :data:`CASES`) with the same seed and writes each posterior's
parameters, and the wall-clock time of its fit, to OUT.npz ("CASE/leafI", "CASE/seconds").
With NUM_PROCESSES = 1 it runs without a cluster: the single-process reference.
:func:`launch` starts such a cluster and returns what every process wrote.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path


def ensemble(br, members=4, steps=100, n=40, hidden=8, noise=0.1, **options):
    X, y = br.datasets.gap_example(n=n)
    likelihood = br.GaussianLikelihood(noise)  # noise=None: learned (with the prior scales)
    return br.fit(br.MLP((hidden,)), X, y, likelihood=likelihood, seed=0,
                  method=br.Ensemble(members=members, training=br.MAP(steps=steps), **options))


def nuts(br, chains=2):
    X, y = br.datasets.gap_example(n=40)
    return br.fit(br.Linear(), X, y, likelihood=br.GaussianLikelihood(0.1), seed=0,
                  method=br.NUTS(num_warmup=50, num_samples=50, num_chains=chains,
                                 chain_method="parallel", progress_bar=False))


def minibatch_map(br, batch_size=16):
    X, y = br.datasets.gap_example(n=40)
    return br.fit(br.MLP((8,)), X, y, likelihood=br.GaussianLikelihood(0.1), seed=0,
                  method=br.MAP(batch_size=batch_size, steps=200))


def minibatch_sgld(br):
    X, y = br.datasets.gap_example(n=40)
    return br.fit(br.MLP((8,)), X, y, likelihood=br.GaussianLikelihood(0.1), seed=0,
                  method=br.SGLD(num_samples=50, batch_size=16, num_warmup=50, num_chains=2))


CASES = {
    "ensemble": lambda br: ensemble(br),
    "ensemble-odd": lambda br: ensemble(br, members=3, bagging=True),
    "ensemble-learned": lambda br: ensemble(br, noise=None, anchored=False),
    "ensemble-anchored": lambda br: ensemble(br, members=2, anchored=True),
    "nuts": nuts,
    "nuts-odd": lambda br: nuts(br, chains=3),
    # data parallel: each process's device evaluates half of every batch (odd: 7 and 8 rows)
    "map-minibatch": minibatch_map,
    "map-minibatch-odd": lambda br: minibatch_map(br, batch_size=15),
    "sgld-minibatch": lambda br: minibatch_sgld(br),
    # benchmarks/distributed.py: enough work per member / chain for the split to matter;
    # "-again" repeats the fit with the same shapes (no compilation)
    "bench": lambda br: ensemble(br, members=8, steps=2000, n=400, hidden=64),
    "bench-again": lambda br: ensemble(br, members=8, steps=2000, n=400, hidden=64),
    "bench-nuts": lambda br: bench_nuts(br),
    "bench-dp": lambda br: bench_minibatch(br),
    "bench-dp-again": lambda br: bench_minibatch(br),
}


def bench_minibatch(br):
    """Data-parallel mini-batch MAP: MLP(256, 256), batches of 2048 of 8192 rows."""
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.standard_normal((8192, 8))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] + 0.1 * rng.standard_normal(8192)
    return br.fit(br.MLP((256, 256)), X, y, likelihood=br.GaussianLikelihood(0.1),
                  prior=br.Gaussian(1.0), seed=0, method=br.MAP(batch_size=2048, steps=300))


def bench_nuts(br):
    X, y = br.datasets.gap_example(n=100)
    return br.fit(br.MLP((16,)), X, y, likelihood=br.GaussianLikelihood(0.1), seed=0,
                  method=br.NUTS(num_warmup=300, num_samples=300, num_chains=4,
                                 chain_method="parallel", progress_bar=False))


def main(cases: str, process_id: int, num_processes: int, port: int, out: str) -> None:
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    import numpy as np

    if num_processes > 1:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}",
                                   num_processes=num_processes, process_id=process_id)
    import bayesreg as br

    warnings.simplefilter("ignore")
    results = {"processes": jax.process_count(), "devices": jax.device_count()}
    for case in cases.split(","):
        start = time.perf_counter()
        steps = case.partition("@")[2]  # "bench@300": the bench case with 300 updates
        post = (CASES[case](br) if not steps else
                ensemble(br, members=8, steps=int(steps), n=400, hidden=64))
        results[f"{case}/seconds"] = time.perf_counter() - start
        results[f"{case}/num_draws"] = post.num_draws
        for i, a in enumerate(jax.tree_util.tree_leaves(post.params)):
            results[f"{case}/leaf{i}"] = np.asarray(a)
    np.savez(out, **results)
    if num_processes > 1:
        jax.distributed.shutdown()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(cases: str, num_processes: int, timeout: float = 300) -> list[dict]:
    """Run CASES in ``num_processes`` local CPU processes joined into one JAX cluster (one
    device each); return what each process wrote, in process order."""
    import numpy as np

    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    env.pop("XLA_FLAGS", None)  # one device per process
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        outs = [Path(tmp) / f"{i}.npz" for i in range(num_processes)]
        logs = [open(Path(tmp) / f"{i}.log", "w+") for i in range(num_processes)]
        procs = [subprocess.Popen(
            [sys.executable, __file__, cases, str(i), str(num_processes), str(port), str(out)],
            env=env, stdout=log, stderr=subprocess.STDOUT)
            for i, (out, log) in enumerate(zip(outs, logs, strict=True))]
        try:
            for p in procs:
                p.wait(timeout=timeout)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        for p, log in zip(procs, logs, strict=True):
            log.seek(0)
            text = log.read()
            log.close()
            if p.returncode != 0:
                raise RuntimeError(f"a worker exited with {p.returncode}:\n{text[-3000:]}")
        return [dict(np.load(out)) for out in outs]


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
