"""Shared pieces of the benchmarks: the machine they ran on, synthetic CIFAR-shaped data sets, a wall clock that waits
for the GPU. Imports only torch, numpy and eoe_nb's training layer (no open_clip, papermill, nbdev, submitit, deap)."""
from __future__ import annotations

import functools
import os
import platform
import time
import zlib

import torch

from eoe_nb.data import DATASETS, DatasetInfo, ImageSet, register_dataset

SYNTHETIC = "synthetic-cifar10"          # 10 classes of random uint8 images, CIFAR-10's shape and counts (scaled by `n`)
SYNTHETIC_OE = "synthetic-oe"            # an OE pool of random uint8 images (the 80MTI stand-in)


def machine() -> dict:
    "What the numbers were measured on."
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f: cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    except OSError: pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return dict(cpu=cpu, cores=os.cpu_count(), torch_threads=torch.get_num_threads(), load_average_1min=load,
                gpu=gpu, torch=torch.__version__, cuda=torch.version.cuda, python=platform.python_version())


def print_machine(m: dict | None = None) -> None:
    m = m or machine()
    print(f"machine: {m['cpu']} ({m['cores']} cores, {m['torch_threads']} torch threads, load {m['load_average_1min']}); "
          f"GPU {m['gpu'] or 'none'}; torch {m['torch']} (CUDA {m['cuda']}); python {m['python']}", flush=True)


@functools.lru_cache(maxsize=None)
def _random_split(name: str, split: str, n: int, n_classes: int) -> ImageSet:
    g = torch.Generator().manual_seed(zlib.crc32(f"{name}|{split}".encode()))
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    return ImageSet(name, split, [f"c{i}" for i in range(n_classes)], torch.arange(n) % n_classes, images=images,
                    source="random uint8 (benchmark)")


def register_synthetic(n_train: int = 50000, n_test: int = 10000, n_oe: int = 50000) -> None:
    "Register the synthetic CIFAR-10-shaped set (`n_train` / `n_test` images over 10 classes) and OE pool (`n_oe`); loaded once per process."
    if SYNTHETIC in DATASETS: DATASETS.remove(SYNTHETIC)
    if SYNTHETIC_OE in DATASETS: DATASETS.remove(SYNTHETIC_OE)
    register_dataset(DatasetInfo(SYNTHETIC, tuple(f"c{i}" for i in range(10)), 3, 32, True,
                                 lambda root, split, dl: _random_split(SYNTHETIC, split, n_train if split == "train" else n_test, 10),
                                 lambda root: True, "generated", preset="cifar10"))
    register_dataset(DatasetInfo(SYNTHETIC_OE, ("oe",), 3, 32, True, lambda root, split, dl: _random_split(SYNTHETIC_OE, split, n_oe, 1),
                                 lambda root: True, "generated", oe_only=True, splits=("train",)))


def clock(device: torch.device) -> float:
    "Wall-clock seconds after the device has finished its queued work."
    if device.type == "cuda": torch.cuda.synchronize(device)
    return time.perf_counter()
