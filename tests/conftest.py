"""Shared fixtures: a small fake CIFAR-10 image-folder tree, the real CIFAR-10 when present, offline hub settings."""
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")      # no 46 s download retries for weights that cannot be fetched here
ROOT = Path(__file__).resolve().parents[1]
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def write_fake_cifar10(root: Path, n_train: int = 24, n_test: int = 8, seed: int = 0) -> Path:
    """DATA_ROOT/cifar10-jpg/{train,test}/<class>/NNNN.png with 32x32 images whose brightness depends on the class."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        for label, c in enumerate(CIFAR10_CLASSES):
            d = root / "cifar10-jpg" / split / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                base = 20 + 22 * label
                a = np.clip(rng.normal(base, 20, (32, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(a).save(d / f"{i:04d}.png")
    return root


@pytest.fixture(scope="session")
def fake_data_root(tmp_path_factory) -> Path:
    return write_fake_cifar10(tmp_path_factory.mktemp("fake_data"))


@pytest.fixture(scope="session")
def real_data_root(tmp_path_factory) -> Path:
    """A data root holding the real CIFAR-10 (EOE_DATA, or ../shared/data unpacked); skips the test if there is none."""
    env = os.environ.get("EOE_DATA")
    if env and ((Path(env) / "cifar10-jpg").is_dir() or (Path(env) / "cifar-10-batches-py").is_dir()):
        return Path(env)
    archive = ROOT.parent / "shared" / "data" / "cifar10-jpg.tar.gz"
    if not archive.exists():
        pytest.skip("real CIFAR-10 not available (set EOE_DATA or put shared/data beside the checkout)")
    dest = tmp_path_factory.mktemp("real_data")
    with tarfile.open(archive) as t: t.extractall(dest, filter="data")
    return dest
