"""Regenerate the documentation gallery: ``make gallery``.

Runs every example in ``examples/`` at full size (not ``--quick``), one at a time, with progress
output silenced (``BAYESREG_PROGRESS=0``). Each example writes its figure to ``examples/output/``
(ignored by git); this script copies it to ``docs/figures/NAME.png`` and saves what the example
printed to ``docs/figures/NAME.txt``, headed by the command and its measured wall time, so the
numbers quoted in ``docs/examples.md`` are read from there rather than typed. Warnings go to the
terminal (stderr), not to the ``.txt``.

With names (``make gallery NAMES="bagging dropout"``) only those examples are rerun.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import time

EXAMPLES = pathlib.Path(__file__).resolve().parent
OUTPUT = EXAMPLES / "output"
FIGURES = EXAMPLES.parent / "docs" / "figures"
NAMES = sorted(p.stem for p in EXAMPLES.glob("*.py") if not p.stem.startswith("_"))


def run(name: str) -> float:
    env = dict(os.environ, BAYESREG_PROGRESS="0")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), "--out", str(OUTPUT)],
                          env=env, stdout=subprocess.PIPE, text=True, cwd=EXAMPLES.parent)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout)
        raise SystemExit(f"examples/{name}.py failed (exit {proc.returncode})")
    figure = OUTPUT / f"{name}.png"
    shutil.copyfile(figure, FIGURES / f"{name}.png")
    printed = [line for line in proc.stdout.splitlines() if not line.startswith("wrote ")]
    header = (f"# python examples/{name}.py (full size, BAYESREG_PROGRESS=0): "
              f"wall time {wall:.1f} s on {os.cpu_count()} CPU cores, "
              f"{time.strftime('%Y-%m-%d')}\n")
    (FIGURES / f"{name}.txt").write_text(header + "\n".join(printed) + "\n")
    return wall


def main(argv: list[str]) -> None:
    names = argv or NAMES
    unknown = sorted(set(names) - set(NAMES))
    if unknown:
        raise SystemExit(f"no such example: {', '.join(unknown)} (have {', '.join(NAMES)})")
    FIGURES.mkdir(parents=True, exist_ok=True)
    for name in names:
        print(f"{name} ...", end=" ", flush=True)
        wall = run(name)
        print(f"{wall:.1f} s -> docs/figures/{name}.png, {name}.txt", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
