"""Seconds per training epoch of CNN32 on CIFAR-10-sized data: 5000 normal + 5000 OE images, batches of 128 + 128.

Compares with the official code's median of 21.2 s per epoch on the 2-core development machine (40 steps, data loading
included; model forward and backward alone about 15.5 s). Prints figures; asserts nothing.

    python benchmarks/train_epoch.py [--epochs 5] [--objective hsc] [--data-root DIR]

Uses the real CIFAR-10 (`cifar10[0-4]`, class 0, OE `cifar10[5-9]` with 5000 images) when present under the data root,
else random uint8 images of the same size.
"""
import argparse
import statistics
import time

import torch

from eoe_nb.core import DataMissingError, get_device, resolve_data_root, seed_everything
from eoe_nb.data import ImageSet
from eoe_nb.models import build_model, weight_reset
from eoe_nb.objectives import get_objective
from eoe_nb.train import build_optimizer
from eoe_nb.batches import BalancedBatches
from eoe_nb.transforms import get_transforms, normalization_stats


def data(data_root, n=5000):
    try:
        from eoe_nb.ad_data import make_ad_data
        ad = make_ad_data("cifar10[0-4]", 0, mode="ovr", oe="cifar10[5-9]", oe_size=n, seed=0, data_root=data_root)
        return ad.train, ad.oe, "real CIFAR-10 JPEG (class 0 vs OE cifar10[5-9], 5000 images)"
    except DataMissingError:
        g = torch.Generator().manual_seed(0)
        mk = lambda: torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
        return (ImageSet("rand", "train", ["x"], torch.zeros(n), images=mk()),
                ImageSet("rand_oe", "train", ["x"], torch.zeros(n), images=mk()), "random uint8 images")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--objective", default="hsc")
    p.add_argument("--data-root")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    device = get_device(args.device)
    normal, oe, source = data(resolve_data_root(args.data_root))
    seed_everything(0)
    objective = get_objective(args.objective)
    model = build_model("cnn32", clf=objective.clf_head)
    weight_reset(model)
    model.to(device)
    stats = normalization_stats(normal, "cifar10", None)
    train_tf, _ = get_transforms("cifar10", stats)
    batches = BalancedBatches(normal, oe, 128, train_tf, device, seed=0, workers=0)
    opt, sched = build_optimizer(model, "adam", 1e-3, 0.0, [])

    data_times, total_times = [], []
    for epoch in range(args.epochs):
        if hasattr(batches, "set_epoch"): batches.set_epoch(epoch)
        t0 = time.perf_counter(); t_data = 0.0; steps = 0
        it = iter(batches)
        while True:
            td = time.perf_counter()
            try: x, y = next(it)
            except StopIteration: break
            t_data += time.perf_counter() - td
            model.train()
            loss = objective.loss(model(x), y)
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step(); steps += 1
        sched.step()
        total_times.append(time.perf_counter() - t0); data_times.append(t_data)
        print(f"epoch {epoch}: {total_times[-1]:.2f} s ({steps} steps; data path {t_data:.2f} s)", flush=True)
    print(f"data: {source}; torch {torch.__version__}; threads {torch.get_num_threads()}; device {device}")
    print(f"median seconds per epoch: {statistics.median(total_times):.2f} (data path {statistics.median(data_times):.2f}); "
          f"official code on the 2-core development machine: 21.2")


if __name__ == "__main__":
    main()
