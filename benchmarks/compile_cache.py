"""The command line's persistent compilation cache: the same ``bayesreg compare`` run twice in
fresh processes, with an empty cache and then with the programs the first run wrote.

    .venv/bin/python benchmarks/compile_cache.py [--methods map,ensemble] [--model mlp:50]
        [--progress]

Prints, for each run, the wall time of the process, JAX's backend compile time and the
number of programs compiled and read from the cache. Needs scikit-learn (the diabetes table).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time

CHILD = textwrap.dedent("""
    import json, sys, time
    start = time.perf_counter()
    from jax import monitoring
    seen = {"compile_s": 0.0, "compiled": 0, "cache_hits": 0}
    def duration(event, secs, **kw):
        if event == "/jax/core/compile/backend_compile_duration":
            seen["compile_s"] += secs; seen["compiled"] += 1
    def event(name, **kw):
        if "cache_hits" in name:
            seen["cache_hits"] += 1
    monitoring.register_event_duration_secs_listener(duration)
    monitoring.register_event_listener(event)
    from bayesreg import cli
    cli.main(sys.argv[1:])
    seen["wall_s"] = time.perf_counter() - start
    print(json.dumps(seen))
""")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--methods", default="map,ensemble")
    parser.add_argument("--model", default="mlp:50")
    parser.add_argument("--progress", action="store_true",
                        help="without --quiet, as a user types it (the training loops report by "
                             "their 'fitting' line; samplers by host callbacks)")
    args = parser.parse_args()
    from sklearn.datasets import load_diabetes

    tmp = tempfile.mkdtemp()
    data = os.path.join(tmp, "diabetes.csv")
    load_diabetes(as_frame=True).frame.to_csv(data, index=False)
    env = {**os.environ, "BAYESREG_COMPILATION_CACHE": os.path.join(tmp, "jax"),
           "JAX_PLATFORMS": "cpu"}
    argv = ["compare", data, "--target", "target", "--methods", args.methods, "--model",
            args.model, "--out", os.path.join(tmp, "out"), *([] if args.progress else ["--quiet"])]
    runs = []
    for label in ("first (empty cache)", "second (cache filled)"):
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", CHILD, *argv], env=env, capture_output=True,
                             text=True, check=True)
        seen = json.loads(out.stdout.strip().splitlines()[-1])
        seen["process_s"] = time.perf_counter() - start
        runs.append(seen)
        print(f"{label}: process {seen['process_s']:.1f} s, backend compile "
              f"{seen['compile_s']:.1f} s for {seen['compiled']} programs, "
              f"{seen['cache_hits']} read from the cache")
    print(f"second / first: {runs[1]['process_s'] / runs[0]['process_s']:.2f}")


if __name__ == "__main__":
    main()
