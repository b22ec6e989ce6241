"""Shared fixtures: a small fake CIFAR-10 image-folder tree, fake MNIST + EMNIST raw files, the real CIFAR-10 when present, offline hub settings."""
import os
import tarfile
from pathlib import Path

import pytest

from eoe_nb.testing import write_fake_cifar10_folder, write_fake_mnist_raw

os.environ.setdefault("HF_HUB_OFFLINE", "1")      # no 46 s download retries for weights that cannot be fetched here
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def fake_data_root(tmp_path_factory) -> Path:
    """A tiny fake CIFAR-10 image-folder tree (24 train / 8 test images per class; class 0 dark, the others bright)."""
    return write_fake_cifar10_folder(tmp_path_factory.mktemp("fake_data"), n_train=24, n_test=8)


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


@pytest.fixture(scope="session")
def fake_mnist_root(tmp_path_factory) -> Path:
    """Fake MNIST and EMNIST letters in torchvision's raw IDX layout (MNIST: 20 train / 6 test images per class, class 0 dark)."""
    root = tmp_path_factory.mktemp("fake_mnist")
    write_fake_mnist_raw(root, "mnist", n_train=20, n_test=6)
    write_fake_mnist_raw(root, "emnist", n_train=2, n_test=1)
    return root


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a long test that CI still runs (e.g. the fault loop of tests/fault_loop.py)")
    config.addinivalue_line("markers", "long: minutes of real training that CI skips (`make test` deselects it); run with `make test-long`")
