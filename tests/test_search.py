"""Single-outlier search (issue 12): the OE-image tiling, a tiny end-to-end search through real training on fake data with both
fitness kinds (the validation fitness never reads a test image), and the `eoe-search` command."""
import json

import numpy as np
import pytest
import torch

from eoe_nb.ad_data import ADDataSpec, make_ad_data
from eoe_nb.batches import BalancedBatches
from eoe_nb.data import DatasetInfo, ImageSet, register_dataset, unregister_dataset
from eoe_nb.search import STATE_FILE, SearchConfig, run_search, search_table
from eoe_nb.search_cli import eoe_search_main
from eoe_nb.core import run_cli
from eoe_nb.testing import capture_cli
from eoe_nb.transforms import get_transforms

TEST_READS = []


def _fake_load(root, split, download):
    "3 classes of 12 images 32x32 in RAM: class 0 dark (normal), 1 bright, 2 mid grey (the OE pool); test reads are counted."
    if split == "test": TEST_READS.append(split)
    g = torch.Generator().manual_seed(0 if split == "train" else 1)
    means = torch.tensor([40.0, 200.0, 120.0]).repeat_interleave(12)
    x = (means.view(-1, 1, 1, 1) + 20 * torch.randn(36, 3, 32, 32, generator=g)).clamp(0, 255).to(torch.uint8)
    return ImageSet("fake_search", split, ["dark", "bright", "grey"], targets=torch.arange(3).repeat_interleave(12), images=x)


@pytest.fixture()
def fake_set():
    register_dataset(DatasetInfo("fake_search", ("dark", "bright", "grey"), 3, 32, True, _fake_load, lambda root: True, "in RAM",
                                 preset="cifar10"))
    TEST_READS.clear()
    yield "fake_search"
    unregister_dataset("fake_search")


def test_single_oe_image_is_tiled_into_every_batch(fake_set):
    ad = make_ad_data(ADDataSpec("fake_search[0-1]", oe="fake_search[2]", oe_indices=[4]), 0, seed=0)
    train_tf, _ = get_transforms("noaug_cifar10", dict(kind="meanstd", mean=[0.5] * 3, std=[0.25] * 3))
    batches = BalancedBatches(ad.train, ad.oe, 4, train_tf, workers=0)
    ys = [y for _, y in batches]
    assert len(ad.oe) == 1 and len(ys) == 3
    for x, y in batches:                                   # every batch: B normal + B copies of the one OE image
        oe = x[y == 1]
        assert len(oe) == (y == 0).sum() and torch.equal(oe, oe[:1].expand_as(oe))


def _cfg(fitness, **kw):
    run = dict(dataset="fake_search[0-1]", oe="fake_search[2]", preset="cifar10", transform="noaug_cifar10", epochs=1, milestones=[],
               seeds=[0], batch_size=8, workers=0, device="cpu", rep_dim=8)
    return SearchConfig(run, classes=[0], fitness=fitness, population=2, generations=2, mutation_pool=6, mutation_k=2,
                        duplicate_distance=0.0, mutation_chance=1.0, tournament_size=2, **kw)


def test_validation_search_end_to_end_never_reads_test(fake_set, tmp_path):
    torch.set_num_threads(1)
    cfg = _cfg("validation")
    part = run_search(cfg, tmp_path / "v", progress=False, max_generations=1)       # generation 0 through real training
    assert not part.done and TEST_READS == []                                        # the validation fitness read no test image
    res = run_search(cfg, tmp_path / "v", progress=False)                            # resumes; the end scores the picks on test
    assert res.done and TEST_READS                                                   # ... only there
    row = search_table(res).iloc[0]
    assert row.fitness == "validation" and 0 <= row.best_test_auroc <= 1 and row.best_auroc >= row.worst_auroc
    state = json.loads((tmp_path / "v" / STATE_FILE).read_text())
    assert state["done"] and {d["normal_class"] for d in state["picked_test"]} == {0}
    manifests = list((tmp_path / "v" / "fitness_validation").glob("*/runs/*/manifest.json"))
    assert manifests and all(json.loads(m.read_text())["data_source"]["eval_split"] == "validation" for m in manifests)


def test_test_fitness_cli(fake_set, tmp_path):
    torch.set_num_threads(1)
    argv = ["--dataset", "fake_search[0-1]", "--oe", "fake_search[2]", "--classes", "0", "--method", "random", "--candidates", "2",
            "--epochs", "1", "--milestones", "--seeds", "0", "--batch-size", "8", "--workers", "0", "--device", "cpu",
            "--transform", "noaug_cifar10", "--preset", "cifar10", "--out", str(tmp_path / "t")]
    rc, out, err = capture_cli(lambda a: run_cli(eoe_search_main, a), argv)
    assert rc == 0, err
    table = (tmp_path / "t" / "table.csv").read_text()
    assert "random" in table and ",test," in table and TEST_READS
    rc, out, err = capture_cli(lambda a: run_cli(eoe_search_main, a), argv[:-2] + ["--mutation-k", "0", "--out", str(tmp_path / "u")])
    assert rc == 2 and err.startswith("error:") and not (tmp_path / "u").exists()



def test_candidate_space_distances_official_pixels(fake_set):
    """Issue 20: the search's distances are on [0, 1] pixels of the OE training pipeline's CPU part (official), unchanged by
    the lpf/hpf filters and the normalisation; distances="network" keeps the normalised, filtered test view (not official)."""
    from eoe_nb.filters import dft_filter
    from eoe_nb.search import _squared_distances, candidate_space
    run = {**_cfg("test").run, "filters": ["lpf+train_oe", "lpf+train_nominal"], "filter_magnitude": 4.0}
    cfg = SearchConfig(run, classes=[0])
    space = candidate_space(cfg, 0)
    raw = space.raw([0, 3]).float()
    assert torch.equal(space.features([0, 3]), raw.flatten(1) / 255)
    d = ((raw[0] - raw[1]) / 255).pow(2).sum()                       # by hand
    assert torch.allclose(_squared_distances(space.features([0]), space.features([3]))[0, 0], d)
    net_cfg = SearchConfig(run, classes=[0], distances="network")
    net = candidate_space(net_cfg, 0)
    mean, std = net.transform.mean.view(1, -1, 1, 1), net.transform.std.view(1, -1, 1, 1)
    assert torch.allclose(net.features([0, 3]), ((dft_filter(raw / 255, "lpf", 4) - mean) / std).flatten(1), atol=1e-5)
    assert cfg.deviations() == [] and "distances='network'" in net_cfg.deviations()[0]
