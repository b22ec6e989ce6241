"""Runs per hour, sequential against packed: K runs of CNN32 / HSC trained one after another (K = 1: eoe_nb.run.train_run)
or as one stacked model (eoe_nb.packed.train_packed), for K = 1, 4, 16 (`--ks`).

    python benchmarks/runs_per_hour.py [--ks 1 4 16] [--steps 40] [--device cpu]

Each K trains 2 epochs of `--steps` steps (B = 128 + 128) per run and times the second; runs per hour are for the
paper's 200 epochs of 40 steps (scaled from the measured steps). Real CIFAR-10 (cifar10[0-4], OE cifar10[5-9]) from the
data root when present, else random uint8 images. Prints the machine. Asserts nothing.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SYNTHETIC, SYNTHETIC_OE, machine, print_machine, register_synthetic  # noqa: E402

from eoe_nb.core import RunConfig, resolve_data_root  # noqa: E402
from eoe_nb.data import dataset_info  # noqa: E402
from eoe_nb.packed import train_packed  # noqa: E402
from eoe_nb.run import build_run, train_run  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ks", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--data-root")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore", message="milestones")
    m = machine(); print_machine(m)
    n = args.steps * args.batch
    if dataset_info("cifar10").present(resolve_data_root(args.data_root)):
        spec, source = dict(dataset="cifar10[0-4]", oe="cifar10[5-9]", data_root=args.data_root), "real CIFAR-10"
    else:
        register_synthetic(50000, 10000, 50000); spec, source = dict(dataset=SYNTHETIC, oe=SYNTHETIC_OE), "random uint8 images"
    cfg = RunConfig(**spec, oe_size=n, objective="hsc", model="cnn32", epochs=2, milestones=[], batch_size=args.batch, seeds=[0],
                    train_limit=n, workers=0, device=args.device, precision=args.precision)
    print(f"data: {source}; {n} normal + {n} OE images per run, {args.steps} steps of {args.batch} + {args.batch}; "
          f"{args.precision}; the second of 2 epochs timed", flush=True)
    scale = 200 * 40 / args.steps
    base = None
    for k in args.ks:
        runs = [build_run(cfg, i % 5, i // 5) for i in range(k)]
        if k == 1: train_run(runs[0], progress=False); epoch = runs[0].epoch_seconds[-1]
        else: train_packed(runs, progress=False); epoch = runs[0].epoch_seconds[-1] * k     # packed runs record their share
        per_run = epoch / k
        base = base or per_run
        print(f"K={k:>3}: {epoch:.2f} s per packed epoch, {per_run:.2f} s per run-epoch, "
              f"{3600 / (scale * per_run):.2f} runs/h at 200 epochs ({base / per_run:.2f}x the per-run speed of K=1)", flush=True)
    print_machine(m)


if __name__ == "__main__":
    main()
