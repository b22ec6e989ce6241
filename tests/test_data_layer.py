"""The data layer's contracts: which module registers what, declared DatasetInfo fields, ADDataSpec, deviations."""
import dataclasses
import subprocess
import sys

import pytest
import torch

from eoe_nb.core import ConfigError, DataMissingError, RunConfig
from eoe_nb.ad_data import ADDataSpec, make_ad_data
from eoe_nb.data import DatasetInfo, dataset_info, load_split, unregister_dataset
from eoe_nb.datasets import register_image_folder
from eoe_nb.testing import write_fake_custom
from eoe_nb.transforms import get_transforms


def _registered_after(import_line: str) -> set[str]:
    code = f"{import_line}\nfrom eoe_nb.data import DATASETS\nprint(' '.join(sorted(DATASETS)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_module_split_registers_in_datasets_only():
    assert _registered_after("import eoe_nb.data") == set()                      # the core registers nothing itself
    base = _registered_after("import eoe_nb.datasets")
    assert {"cifar10", "cifar100", "gaussian", "mnist", "emnist", "mvtec", "custom", "tinyimages", "imagenet21k"} <= base
    ood = _registered_after("import eoe_nb.ood_datasets") - base                  # the OE paper's sets, in their own module
    assert {"svhn", "tinyimagenet", "places365", "places69", "lsun", "lsun_resize"} <= ood
    every = base | ood
    assert _registered_after("import eoe_nb.ad_data") == every                   # building AD data sees every set
    assert _registered_after("import eoe_nb.data_cli") == every


def test_declared_fields_no_dead_ones():
    names = {f.name for f in dataclasses.fields(DatasetInfo)}
    assert {"preset", "train_repeats", "oe_source", "oe_classes", "deviation", "splits"} <= names
    assert not {"checksums", "normal_only"} & names
    presets = {n: dataset_info(n).preset for n in ("cifar10", "mnist", "fmnist", "imagenet30", "mvtec", "cub", "dtd", "custom",
                                                   "cifar100", "emnist", "tinyimages", "gaussian")}
    assert presets == dict(cifar10="cifar10", mnist="mnist", fmnist="fmnist", imagenet30="imagenet", mvtec="mvtec", cub="cub",
                           dtd="dtd", custom="custom", cifar100=None, emnist=None, tinyimages=None, gaussian=None)
    assert dataset_info("mvtec").train_repeats == 10 and dataset_info("cifar10").train_repeats == 1
    assert dataset_info("emnist").oe_classes == tuple(range(25))


def test_addataspec_names_are_runconfig_fields(fake_data_root):
    assert {f.name for f in dataclasses.fields(ADDataSpec)} <= {f.name for f in dataclasses.fields(RunConfig)}
    cfg = RunConfig(dataset="cifar10[0-4]", oe="cifar10[5-9]", oe_size=4, train_limit=10, test_limit=12, data_root=str(fake_data_root))
    ad = make_ad_data(ADDataSpec.from_config(cfg), 0, seed=1)
    assert (len(ad.train), len(ad.test), len(ad.oe)) == (10, 12, 4)
    again = make_ad_data(ADDataSpec.from_config(cfg), 0, seed=1)
    assert ad.oe_indices == again.oe_indices and torch.equal(ad.train.images, again.train.images)
    devs = ad.describe()["deviations"]
    assert devs[0].startswith("cifar10 read from the image-folder copy cifar10-jpg/") and len(devs) == 3


def test_mnist_raw_and_emnist_oe(fake_mnist_root):
    ad = make_ad_data(ADDataSpec("mnist[0-4]", oe="emnist", data_root=fake_mnist_root), 0, seed=0)
    assert ad.counts() == dict(train=20, test=30, test_normal=6, test_anomalous=24)
    assert sorted(set(ad.oe.targets.tolist())) == list(range(25))          # official EMNIST OE pool: letter z dropped
    assert ad.describe()["deviations"] == [] and ad.oe_info["spec"] == "emnist[0-24]"
    all26 = make_ad_data(ADDataSpec("mnist[0-4]", oe="emnist[0-25]", data_root=fake_mnist_root), 0, seed=0)
    assert all26.describe()["deviations"] == ["emnist OE includes class(es) 25 outside the official OE pool emnist[0-24]"]


def test_train_only_custom_folder(tmp_path):
    write_fake_custom(tmp_path, {"nut": 3, "bolt": 2}, test=None, folder="parts")
    info = register_image_folder("pytest_parts", "parts")
    try:
        assert info.present(tmp_path) and info.preset == "custom"
        with pytest.raises(DataMissingError, match="parts/test does not exist"):
            load_split("pytest_parts", "test", tmp_path)
        register_image_folder("pytest_parts", "parts", splits=("train",))
        ad = make_ad_data(ADDataSpec("pytest_parts", data_root=tmp_path), 1, seed=0)
        assert (len(ad.train), ad.has_test, ad.universe, ad.train.classes[1]) == (3, False, [0, 1], "nut")
    finally:
        unregister_dataset("pytest_parts")


def test_without_normalisation_keeps_noise_drops_norm():
    tr, _ = get_transforms("cifar10", dict(kind="meanstd", mean=[0.5, 0.5, 0.5], std=[0.2, 0.2, 0.2]))
    x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    raw = tr.without_normalisation()(x, torch.Generator().manual_seed(0))
    assert torch.allclose(tr(x, torch.Generator().manual_seed(0)), (raw - 0.5) / 0.2, atol=1e-6)
    with pytest.raises(ConfigError):
        get_transforms("cifar10")
