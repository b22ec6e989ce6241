"""Seconds per training epoch of CNN32 on CIFAR-10-sized data: 5000 normal + 5000 OE images, batches of 128 + 128.

Runs the project's own training layer (eoe_nb.run.build_run, then eoe_nb.train.train_epochs, as eoe-train does) and
prints each epoch's time, the data path's share, and the machine. Compares with the official code's median of 21.2 s
per epoch on the 2-core development machine (40 steps, data loading included). Prints figures; asserts nothing.

    python benchmarks/train_epoch.py [--epochs 5] [--objective hsc] [--data-root DIR] [--device cpu] [--precision bf16]

Uses the real CIFAR-10 (`cifar10[0-4]`, class 0, OE `cifar10[5-9]` with 5000 images) when present under the data root,
else random uint8 images of the same size (registered as the data set `benchmark-random`).
"""
import argparse
import platform
import statistics
import time

import torch

from eoe_nb.core import RunConfig, resolve_data_root
from eoe_nb.data import DatasetInfo, ImageSet, dataset_info, register_dataset
from eoe_nb.objectives import objective_class
from eoe_nb.run import build_run, prepare_objective
from eoe_nb.train import PRECISIONS, train_epochs


def _random_set(split, data_root=None, download=False, n=10000):
    g = torch.Generator().manual_seed(0 if split == "train" else 1)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    return ImageSet("benchmark-random", split, ["a", "b"], torch.arange(n) % 2, images=images, source="random uint8")


def benchmark_config(args) -> tuple[RunConfig, str]:
    no_oe = objective_class(args.objective).oe_use == "forbidden"          # Deep SVDD trains without OE
    base = dict(objective=args.objective, epochs=args.epochs, milestones=[], seeds=[0], classes=[0], workers=0,
                device=args.device, precision=args.precision, data_root=args.data_root,
                oe_size=None if no_oe else 5000)
    if dataset_info("cifar10").present(resolve_data_root(args.data_root)):
        return RunConfig(dataset="cifar10[0-4]", oe="none" if no_oe else "cifar10[5-9]", **base), "real CIFAR-10 (class 0 of cifar10[0-4])"
    register_dataset(DatasetInfo("benchmark-random", ("a", "b"), 3, 32, True, lambda root, split, dl: _random_set(split),
                                 lambda root: True, "generated", preset="cifar10"))
    return RunConfig(dataset="benchmark-random[0]", oe="none" if no_oe else "benchmark-random[1]", **base), "random uint8 images"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--objective", default="hsc")
    p.add_argument("--data-root")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32", choices=PRECISIONS, help="bf16: autocast (not the official numerics)")
    args = p.parse_args()
    cfg, source = benchmark_config(args)
    run = build_run(cfg, 0, 0)
    prepare_objective(run)                        # e.g. the Deep SVDD centre, as train_run does
    batches, times, data = run.setup.batches, [], []

    class Timed:                                  # the same batches, with the time spent waiting for each one
        def set_epoch(self, e): batches.set_epoch(e)
        def __iter__(self):
            it = iter(batches)
            while True:
                t = time.perf_counter()
                try: x = next(it)
                except StopIteration: return
                data[-1] += time.perf_counter() - t
                yield x

    run.setup.batches = Timed()
    t0 = [time.perf_counter()]
    data.append(0.0)
    def on_epoch_end(epoch, loss):
        times.append(time.perf_counter() - t0[0])
        print(f"epoch {epoch}: {times[-1]:.2f} s (loss {loss:.4f}; data path {data[-1]:.2f} s)", flush=True)
        data.append(0.0); t0[0] = time.perf_counter()
    train_epochs(run.setup, on_epoch_end=on_epoch_end, progress=False)
    print(f"data: {source}; {len(run.ad.train)} normal + {0 if run.ad.oe is None else len(run.ad.oe)} OE images, batch {run.cfg.batch_size}" + ("" if run.ad.oe is None else f" + {run.cfg.batch_size} OE"))
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"device {run.device}, precision {run.cfg.precision}")
    print(f"median seconds per epoch: {statistics.median(times):.2f} (data path {statistics.median(data[:-1]):.2f}); "
          f"official code on the 2-core development machine: 21.2")


if __name__ == "__main__":
    main()
