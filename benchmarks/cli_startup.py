"""Start-up time of the command line: how long `eoe train --help` and `eoe --help` take next to
`python -c "import torch"` (eoe_nb.core imports torch, so that is the floor).
The target (issue 18): `eoe train --help` within 1.3x of `import torch`.

Usage: python benchmarks/cli_startup.py [--repeats 5]
Prints the machine, the median of the wall times of each command (run as subprocesses, one after another, after one
warm-up run each so that the file cache is warm) and the ratios to `import torch`. Imports nothing heavy itself.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET = 1.3


def wall(cmd: list[str], repeats: int) -> float:
    "The median wall time in seconds of `cmd` (after one warm-up run); a failing command stops the benchmark."
    times = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
        if r.returncode != 0:
            sys.exit(f"error: {' '.join(cmd)} failed with status {r.returncode}: {r.stderr.strip()[-500:]}")
        if i: times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5, help="timed runs per command (default: 5)")
    args = p.parse_args()
    eoe = Path(sys.executable).parent / "eoe"
    if not eoe.exists(): sys.exit(f"error: {eoe} not found; install the package first (make install)")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPU(s), "
          f"python {platform.python_version()}" + (f", load average (1 min) {load:.2f}" if load is not None else ""))
    cases = {"python -c 'import torch'": [sys.executable, "-c", "import torch"],
             "eoe train --help": [str(eoe), "train", "--help"], "eoe --help": [str(eoe), "--help"]}
    times = {name: wall(cmd, args.repeats) for name, cmd in cases.items()}
    base = times["python -c 'import torch'"]
    for name, t in times.items():
        print(f"{name:<26} median of {args.repeats}: {t:6.3f} s   {t / base:5.2f}x import torch")
    ratio = times["eoe train --help"] / base
    verdict = "met" if ratio <= TARGET else "NOT met"
    print(f"eoe train --help / import torch = {ratio:.2f} (target <= {TARGET}): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
