"""The GPU benchmark of issue 13 (run it with `bash benchmarks/gpu.sh`; `--tiny` runs it on a CPU in seconds).

Measures, on synthetic uint8 images of CIFAR-10's shape (real CIFAR-10 is not needed):
  1. CNN32 seconds per epoch at the paper's batch (128 normal + 128 OE, 5000 normal images: 40 steps) for fp32,
     bf16 autocast and bf16 + channels_last (eoe_nb.run.build_run + train_run: the data path included);
  2. packed throughput: K runs of CNN32 trained as one (eoe_nb.packed.train_packed) for K = 1, 2, 4, ..., 64 (until the
     time budget or the memory ends): images per second and runs per hour at 200 epochs;
  3. one full one-vs-rest CIFAR-10 HSC grid (10 classes x 1 seed x 200 epochs), the 10 classes packed as one:
     measured for `--grid-epochs` epochs and ESTIMATED for 200 by scaling the training time (labelled so);
  4. CLIP ViT-B/32 image-encoding throughput with random weights (skipped with a message without open_clip);
  5. peak GPU memory of each part.
Writes one JSON (`--out`) and prints a table and the machine. Needs torch, numpy and eoe_nb's training layer only.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SYNTHETIC, SYNTHETIC_OE, clock, machine, print_machine, register_synthetic  # noqa: E402

from eoe_nb.core import RunConfig, get_device  # noqa: E402
from eoe_nb.packed import train_packed  # noqa: E402
from eoe_nb.run import build_run, score_images, train_run  # noqa: E402

FULL = dict(n_train=50000, n_test=10000, n_oe=50000, oe_size=5000, batch=128, ks=(1, 2, 4, 8, 16, 32, 64), grid_epochs=3,
            clip_batch=256, clip_iters=10, budget=420.0)
TINY = dict(n_train=100, n_test=20, n_oe=100, oe_size=20, batch=8, ks=(1, 2), grid_epochs=1, clip_batch=2, clip_iters=1,
            budget=600.0)
PRECISIONS = {"fp32": {}, "bf16": dict(precision="bf16"), "bf16+channels_last": dict(precision="bf16", channels_last=True)}


def config(size: dict, device: str, epochs: int, **numerics) -> RunConfig:
    return RunConfig(dataset=SYNTHETIC, oe=SYNTHETIC_OE, oe_size=size["oe_size"], objective="hsc", model="cnn32", epochs=epochs,
                     milestones=[], batch_size=size["batch"], seeds=[0], workers=0, device=device, **numerics)


def peak_reset(dev: torch.device) -> None:
    if dev.type == "cuda": torch.cuda.reset_peak_memory_stats(dev)


def peak_gib(dev: torch.device) -> float | None:
    return round(torch.cuda.max_memory_allocated(dev) / 2**30, 3) if dev.type == "cuda" else None


def epoch_times(size: dict, device: str, dev: torch.device) -> dict:
    "Seconds of the second epoch of one CNN32 run (the first warms up) per precision."
    out = {}
    for name, numerics in PRECISIONS.items():
        peak_reset(dev)
        run = train_run(build_run(config(size, device, 2, **numerics), 0, 0), progress=False)
        out[name] = dict(seconds_per_epoch=round(run.epoch_seconds[-1], 4), steps=len(run.setup.batches), peak_gib=peak_gib(dev))
        print(f"  epoch {name}: {run.epoch_seconds[-1]:.3f} s", flush=True)
    return out


def packed_throughput(size: dict, device: str, dev: torch.device, deadline: float, precision: str = "fp32") -> dict:
    "Per K: seconds of the second packed epoch of K runs, images per second, runs per hour at 200 epochs."
    out = {}
    for k in size["ks"]:
        if time.perf_counter() > deadline:
            print(f"  packed K={k}: skipped (time budget)", flush=True); break
        peak_reset(dev)
        try:
            runs = [build_run(config(size, device, 2, **PRECISIONS[precision]), i % 10, i // 10) for i in range(k)]
            errors = train_packed(runs, progress=False) if k > 1 else [train_run(runs[0], progress=False) and None]
        except torch.cuda.OutOfMemoryError:
            out[str(k)] = dict(error="out of memory"); print(f"  packed K={k}: out of memory", flush=True); break
        seconds = runs[0].epoch_seconds[-1] * (k if k > 1 else 1)              # packed runs record their share of the epoch
        images = k * 2 * len(runs[0].ad.train)
        out[str(k)] = dict(seconds_per_epoch=round(seconds, 4), images_per_second=round(images / seconds, 1),
                           runs_per_hour_200_epochs=round(3600 * k / (200 * seconds), 2), failed=sum(e is not None for e in errors),
                           peak_gib=peak_gib(dev))
        print(f"  packed K={k}: {seconds:.3f} s/epoch, {images / seconds:,.0f} images/s, "
              f"{out[str(k)]['runs_per_hour_200_epochs']} runs/h at 200 epochs", flush=True)
        del runs
        if dev.type == "cuda": torch.cuda.empty_cache()
    return out


def grid(size: dict, device: str, dev: torch.device, precision: str = "fp32") -> dict:
    "One-vs-rest HSC over the 10 classes (1 seed), packed as one: measured for grid_epochs, estimated for 200."
    e = size["grid_epochs"]
    peak_reset(dev)
    t0 = clock(dev)
    runs = [build_run(config(size, device, e, **PRECISIONS[precision]), c, 0) for c in range(10)]
    t1 = clock(dev)
    train_packed(runs, progress=False)
    t2 = clock(dev)
    for r in runs: score_images(r.detector, r.ad.test)
    t3 = clock(dev)
    train = t2 - t1
    estimate = (t1 - t0) + train * 200 / e + (t3 - t2)
    print(f"  grid {precision}: build {t1 - t0:.1f} s, train {e} epochs {train:.1f} s, score {t3 - t2:.1f} s -> "
          f"200 epochs ESTIMATED {estimate:.0f} s", flush=True)
    return dict(precision=precision, measured_epochs=e, build_seconds=round(t1 - t0, 2), train_seconds=round(train, 2),
                score_seconds=round(t3 - t2, 2), estimated_seconds_200_epochs=round(estimate, 1),
                note=f"estimated: training time of {e} measured epochs x 200/{e}, plus the measured build and scoring",
                peak_gib=peak_gib(dev))


def clip_throughput(size: dict, dev: torch.device) -> dict:
    "Images per second of CLIP ViT-B/32 image encoding (random weights, bf16 autocast on CUDA)."
    try: import open_clip
    except ImportError:
        print("  CLIP: skipped (open_clip is not installed here)", flush=True)
        return dict(skipped="open_clip is not installed")
    peak_reset(dev)
    model = open_clip.create_model("ViT-B-32", pretrained=None).to(dev).eval()
    x = torch.randn(size["clip_batch"], 3, 224, 224, device=dev)
    with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
        model.encode_image(x)
        t0 = clock(dev)
        for _ in range(size["clip_iters"]): model.encode_image(x)
        seconds = clock(dev) - t0
    ips = size["clip_batch"] * size["clip_iters"] / seconds
    print(f"  CLIP ViT-B/32: {ips:,.0f} images/s", flush=True)
    return dict(images_per_second=round(ips, 1), batch=size["clip_batch"], peak_gib=peak_gib(dev))


def table(result: dict) -> str:
    "The printed summary."
    rows = [("CNN32 epoch " + k, f"{v['seconds_per_epoch']:.3f} s") for k, v in result["epoch"].items()]
    rows += [(f"packed K={k}", f"{v['images_per_second']:,.0f} img/s, {v['runs_per_hour_200_epochs']} runs/h (200 ep)")
             for k, v in result["packed"].items() if "error" not in v]
    g = result["grid"]
    if "estimated_seconds_200_epochs" in g:
        rows.append(("CIFAR-10 OvR HSC grid (10x1x200)", f"{g['estimated_seconds_200_epochs']:.0f} s ESTIMATED from {g['measured_epochs']} epochs"))
    c = result["clip"]
    rows.append(("CLIP ViT-B/32 encode", f"{c['images_per_second']:,.0f} img/s" if "images_per_second" in c else c.get("skipped", c.get("error"))))
    peaks = [v.get("peak_gib") for part in (result["epoch"], result["packed"]) for v in part.values()] + [g.get("peak_gib"), c.get("peak_gib")]
    peaks = [p for p in peaks if p is not None]
    rows.append(("peak GPU memory", f"{max(peaks):.2f} GiB" if peaks else "n/a (no GPU)"))
    w = max(len(a) for a, _ in rows)
    return "\n".join(f"{a:<{w}}  {b}" for a, b in rows)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="small sizes (a CPU proof run in seconds)")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default="gpu_bench.json", help="the JSON written")
    p.add_argument("--budget", type=float, help="seconds after which larger packs are skipped (default 420, tiny 600)")
    p.add_argument("--grid-epochs", type=int, help="epochs of the grid measured (default 3, tiny 1)")
    args = p.parse_args(argv)
    size = dict(TINY if args.tiny else FULL)
    if args.budget is not None: size["budget"] = args.budget
    if args.grid_epochs is not None: size["grid_epochs"] = args.grid_epochs
    warnings.filterwarnings("ignore", message="milestones")
    dev = get_device(args.device)
    start = time.perf_counter()
    m = machine(); print_machine(m)
    register_synthetic(size["n_train"], size["n_test"], size["n_oe"])
    result = dict(machine=m, size={k: list(v) if isinstance(v, tuple) else v for k, v in size.items()}, device=str(dev),
                  data="synthetic uint8 images of CIFAR-10's shape (random; the timing does not depend on the pixels)")
    parts = [("epoch", lambda: epoch_times(size, str(dev), dev)),
             ("packed", lambda: packed_throughput(size, str(dev), dev, start + size["budget"] * 0.6)),
             ("grid", lambda: grid(size, str(dev), dev)),
             ("clip", lambda: clip_throughput(size, dev))]
    for name, fn in parts:
        print(f"{name}:", flush=True)
        try: result[name] = fn()
        except Exception as e:                       # a part that fails is recorded, the others still run
            result[name] = dict(error=f"{type(e).__name__}: {e}"); print(f"  {name} failed: {result[name]['error']}", flush=True)
    result["total_seconds"] = round(time.perf_counter() - start, 1)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(table(result) if all("error" not in result[k] for k in ("epoch", "grid", "clip")) else json.dumps(result, indent=1))
    print_machine(m)
    print(f"total {result['total_seconds']} s; JSON: {args.out}")
    return result


if __name__ == "__main__":
    main()
