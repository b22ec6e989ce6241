"""Speed of the training data path alone (no model): CIFAR-10-sized RAM sets, 5000 normal + 5000 OE images,
batches of 128 normal + 128 OE, `cifar10` pipeline (ColorJitter, flip, crop with padding, noise, normalisation), CPU.

Usage: python benchmarks/data_path.py [--epochs 5] [--threads N]
Uses the real CIFAR-10 from the data root ($EOE_DATA) if present (normal = class 0, OE = class 1 training images),
else random uint8 tensors of the same size. Prints median seconds per epoch of
  1. the batched on-device path used for sets in RAM (eoe_nb.batches.BalancedBatches), and
  2. for comparison, the official-style per-image torchvision pipeline run in this process (what the official code's
     two DataLoader workers do on the CPU, in parallel with the model).
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from eoe_nb.core import EOEError
import eoe_nb.datasets  # noqa: F401  (registers CIFAR-10)
from eoe_nb.data import ImageSet, load_split
from eoe_nb.batches import BalancedBatches, TestBatches
from eoe_nb.transforms import compute_normalization_stats, get_transforms


def cifar_like_sets() -> tuple[ImageSet, ImageSet, str]:
    try:
        train = load_split("cifar10", "train")
        normal, oe = train.subset(np.flatnonzero(train.targets.numpy() == 0)), train.subset(np.flatnonzero(train.targets.numpy() == 1))
        return normal, oe, f"real CIFAR-10 ({train.source})"
    except EOEError:
        g = torch.Generator().manual_seed(0)
        mk = lambda name: ImageSet(name, "train", ["c"], targets=torch.zeros(5000, dtype=torch.long),
                                   images=torch.randint(0, 256, (5000, 3, 32, 32), generator=g, dtype=torch.uint8))
        return mk("normal"), mk("oe"), "random uint8 tensors (CIFAR-10 not found under the data root)"


def time_epochs(batches, epochs: int) -> list[float]:
    out = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        for x, y in batches: pass
        out.append(time.perf_counter() - t0)
    return out


def official_style_epoch(normal: ImageSet, oe: ImageSet, transform, batch_size: int = 128) -> float:
    "One epoch of the per-image torchvision pipeline (PIL jitter, flip, crop, ToTensor) + noise and normalisation."
    pipe = transform.pil_pipeline()
    g = torch.Generator().manual_seed(0)
    order, oe_order = torch.randperm(len(normal), generator=g), torch.randperm(len(oe), generator=g)
    t0 = time.perf_counter()
    for s in range(0, len(normal), batch_size):
        xs = [pipe(normal.pil(int(i))) for i in order[s:s + batch_size]] + [pipe(oe.pil(int(i))) for i in oe_order[s:s + batch_size]]
        transform.finish(torch.stack(xs), g)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads: torch.set_num_threads(args.threads)
    normal, oe, source = cifar_like_sets()
    print(f"data: {source}; normal {len(normal)}, OE {len(oe)}, batch 128 + 128, preset cifar10, CPU, torch threads {torch.get_num_threads()}")
    stats = compute_normalization_stats(normal, "cifar10")
    train_t, test_t = get_transforms("cifar10", stats)

    t0 = time.perf_counter()
    bb = BalancedBatches(normal, oe, 128, train_t, "cpu", seed=0, workers=0)
    next(iter(bb))                                    # first batch builds the hue lookup tables (once per process)
    print(f"warm-up (lookup tables for the hue jitter, first batch): {time.perf_counter() - t0:.2f} s")
    times = time_epochs(bb, args.epochs)
    med = statistics.median(times)
    print(f"batched path, {len(bb)} steps/epoch: median {med:.3f} s/epoch ({1000 * med / len(bb):.1f} ms/step); "
          f"all epochs: {', '.join(f'{t:.3f}' for t in times)}")

    test = ImageSet("test", "test", ["c"], targets=torch.zeros(10000, dtype=torch.long),
                    images=torch.cat([normal.images, oe.images])[:10000])
    t0 = time.perf_counter()
    for x, i in TestBatches(test, test_t, 128, "cpu", workers=0): pass
    print(f"test path, 10,000 images: {time.perf_counter() - t0:.3f} s")

    small = normal.subset(np.arange(1280)), oe.subset(np.arange(1280))
    t = official_style_epoch(*small, train_t)
    print(f"official-style per-image torchvision pipeline (1280 + 1280 images, one process): {t:.2f} s "
          f"-> {t * len(normal) / 1280:.2f} s of CPU per 5000 + 5000 epoch")


if __name__ == "__main__":
    main()
