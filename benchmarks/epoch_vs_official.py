"""Seconds per training epoch: eoe_nb (fp32, channels_last, bf16, bf16 + channels_last) against a re-creation of the
official data path and loop (liznerski/eoe `train_cifar.py`: a torchvision-style Dataset of uint8 images in RAM, PIL
transforms ColorJitter(0.01 x 4) -> RandomHorizontalFlip -> RandomCrop(32, pad 4) -> ToTensor -> +0.001 N(0,1) ->
Normalize, one DataLoader for the normal and one for the OE images (2 workers each, persistent), and ADTrainer.train_cls's
step: concatenate, forward, HSC loss, backward, Adam step, anomaly scores and loss fetched to the CPU every step, the
training AUROC at the end of the epoch). Same machine, same process, same images, CNN32, HSC, batch B + B.

    python benchmarks/epoch_vs_official.py [--steps 40] [--epochs 2] [--variants official fp32 channels_last bf16 bf16+channels_last]

Real CIFAR-10 (class 0 of cifar10[0-4], OE cifar10[5-9]) from the data root when present, else random uint8 images.
Each variant trains `--epochs` epochs of `--steps` steps; the last epoch is timed (the first warms up). Prints each
time, its ratio to the official loop, and the machine. Asserts nothing.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SYNTHETIC, SYNTHETIC_OE, machine, print_machine, register_synthetic  # noqa: E402

from eoe_nb.core import RunConfig, resolve_data_root  # noqa: E402
from eoe_nb.data import dataset_info  # noqa: E402
from eoe_nb.models import CNN32  # noqa: E402
from eoe_nb.objectives import HSC  # noqa: E402
from eoe_nb.run import build_run, prepare_objective  # noqa: E402
from eoe_nb.train import train_epochs  # noqa: E402

VARIANTS = {"fp32": {}, "channels_last": dict(channels_last=True), "bf16": dict(precision="bf16"),
            "bf16+channels_last": dict(precision="bf16", channels_last=True)}


class OfficialStyleSet(torch.utils.data.Dataset):
    "uint8 HWC images in RAM, each turned into a PIL image and transformed per item (torchvision's CIFAR10 + the official transform)."
    def __init__(self, images: torch.Tensor, label: int, transform):
        self.images, self.label, self.transform = images.permute(0, 2, 3, 1).numpy(), label, transform
    def __len__(self): return len(self.images)
    def __getitem__(self, i):
        from PIL import Image
        return self.transform(Image.fromarray(self.images[i])), self.label, i


def official_transform(mean, std):
    from torchvision import transforms as T
    return T.Compose([T.ColorJitter(0.01, 0.01, 0.01, 0.01), T.RandomHorizontalFlip(), T.RandomCrop(32, padding=4), T.ToTensor(),
                      T.Lambda(lambda x: x + 0.001 * torch.randn_like(x)), T.Normalize(mean, std)])


def official_epochs(normal: torch.Tensor, oe: torch.Tensor, stats: dict, batch: int, epochs: int) -> list[float]:
    "The official-style loop: two DataLoaders (2 workers each), per-step host syncs, training AUROC per epoch."
    from sklearn.metrics import roc_auc_score
    tf = official_transform(stats["mean"], stats["std"])
    loaders = [torch.utils.data.DataLoader(OfficialStyleSet(x, lbl, tf), batch_size=batch, shuffle=True, num_workers=2,
                                           persistent_workers=True, drop_last=False) for x, lbl in ((normal, 0), (oe, 1))]
    torch.manual_seed(0)
    model, hsc = CNN32(), HSC()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=0, amsgrad=False)
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        labels, scores = [], []
        for (xn, yn, _), (xo, yo, _) in zip(*loaders):
            imgs, lbls = torch.cat([xn, xo]), torch.cat([yn, yo])
            opt.zero_grad()
            feats = model(imgs)
            loss = hsc.loss(feats, lbls)
            loss.backward()
            opt.step()
            opt.zero_grad()
            scores.append(hsc.score(feats).detach().cpu()); labels.append(lbls.cpu()); loss.item()
        labels, scores = torch.cat(labels), torch.cat(scores)
        if scores.isnan().any(): raise RuntimeError("NaN")
        roc_auc_score(labels.numpy(), scores.numpy())
        times.append(time.perf_counter() - t0)
    return times


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=40, help="steps per epoch (40 = CIFAR-10's 5000 normal images at B=128)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--variants", nargs="+", default=["official", *VARIANTS])
    p.add_argument("--data-root")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore", message="milestones")
    m = machine(); print_machine(m)
    n = args.steps * args.batch
    real = dataset_info("cifar10").present(resolve_data_root(args.data_root))
    if real: spec = dict(dataset="cifar10[0-4]", oe="cifar10[5-9]", data_root=args.data_root)
    else:
        register_synthetic(50000, 10000, 50000); spec = dict(dataset=SYNTHETIC, oe=SYNTHETIC_OE)
    cfg = RunConfig(**spec, oe_size=n, objective="hsc", model="cnn32", epochs=args.epochs, milestones=[], batch_size=args.batch,
                    seeds=[0], classes=[0], train_limit=n, workers=0, device="cpu")
    base = build_run(cfg, 0, 0)
    print(f"data: {'real CIFAR-10 (class 0 of cifar10[0-4], OE cifar10[5-9])' if real else 'random uint8 images'}; "
          f"{len(base.ad.train)} normal + {len(base.ad.oe)} OE images, batch {args.batch} + {args.batch}, "
          f"{args.epochs} epochs of {args.steps} steps per variant, the last timed", flush=True)
    results = {}
    for v in args.variants:
        if v == "official":
            times = official_epochs(base.ad.train.images, base.ad.oe.images, base.stats, args.batch, args.epochs)
        else:
            run = build_run(cfg.replace(**VARIANTS[v]), 0, 0)
            prepare_objective(run)
            times, t0 = [], [time.perf_counter()]
            def on_end(epoch, loss, times=times, t0=t0): times.append(time.perf_counter() - t0[0]); t0[0] = time.perf_counter()
            train_epochs(run.setup, on_epoch_end=on_end, progress=False)
        results[v] = times[-1]
        ratio = f" = {results[v] / results['official']:.2f}x the official loop" if "official" in results and v != "official" else ""
        print(f"{v:>20}: {times[-1]:.2f} s per epoch (all epochs: {', '.join(f'{t:.2f}' for t in times)}){ratio}", flush=True)
    print_machine(m)
    return results


if __name__ == "__main__":
    main()
