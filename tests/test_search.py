"""Single-outlier search (issue 12): the OE-image tiling, a tiny end-to-end search through real training on fake data with both
fitness kinds (the validation fitness never reads a test image), and the `eoe-search` command."""
import json
import shutil

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


class _CountingRuns:
    "A unit function that trains each run for real (`eoe_nb.runner.run_unit`) and records (class, OE images, seed)."
    def __init__(self): self.calls = []

    def __call__(self, cfg, normal_class, seed, folder, progress=False, plots=False):
        import dataclasses
        from eoe_nb.runner import run_unit
        self.calls.append((normal_class, tuple(cfg.oe_indices), seed, cfg.train_limit))
        return dataclasses.asdict(run_unit(cfg, normal_class, seed, folder, progress=False, plots=False))


def _runs_on_disk(fitness_dir, split):
    "{(OE images, train_limit): {seed: AUROC}} of class 0, read from the runs' own config.json and result.json files."
    out = {}
    for cfg_file in (fitness_dir / f"fitness_{split}").glob("*/config.json"):
        cfg = json.loads(cfg_file.read_text())["config"]
        for res in cfg_file.parent.glob("runs/cls0_seed*/result.json"):
            r = json.loads(res.read_text())
            out.setdefault((tuple(cfg["oe_indices"]), cfg.get("train_limit")), {})[r["seed"]] = 100 * r["auroc"]
    return out


def _mixed_test_images(root, seed=0):
    "Every test image of the fake CIFAR-10 rewritten with a random brightness, so that AUROCs are neither 0 nor 1."
    from PIL import Image
    rng = np.random.default_rng(seed)
    for png in sorted((root / "cifar10-jpg" / "test").glob("*/*.png")):
        Image.fromarray(np.clip(rng.normal(rng.uniform(40, 200), 25, (32, 32, 3)), 0, 255).astype(np.uint8)).save(png)


def test_single_outlier_smoke_both_fitness_kinds_retrained_and_claims(tmp_path):
    "The smoke single_outlier item on a fake CIFAR-10, real training: both fitness kinds, the retraining, the claims."
    from eoe_nb.claims import judge_claims
    from eoe_nb.search_items import RETRAIN, SINGLE_OUTLIER_CLAIMS, run_search_item, search_item_plan
    from eoe_nb.testing import write_fake_cifar10_folder
    torch.set_num_threads(1)
    _mixed_test_images(write_fake_cifar10_folder(tmp_path / "data", n_train=20, n_test=8))
    plans = search_item_plan("single_outlier", "smoke", data_root=tmp_path / "data")
    assert [(p.config.fitness, p.retrain) for p in plans] == [("test", RETRAIN["smoke"])] * 2 + [("validation", None)]
    runs = _CountingRuns()
    rows, results = run_search_item("single_outlier", plans, tmp_path / "out", "smoke", progress=False, unit_fn=runs)
    assert [(r.label, r.status.value) for r in rows] == [("cifar10 class 0", "done"),
                                                         ("cifar10 mean over classes", "done")]
    v, mean = rows[0].values, rows[1].values
    assert {r.config.fitness for r in results.values()} == {"test", "validation"}

    # by hand from the runs on disk: every test-fitness run (seed 0 is the search's, seed 1 the retraining's)
    disk = _runs_on_disk(tmp_path / "out" / "fitness", "test")
    drawn = {tuple(n["oe_indices"]) for n in results["cifar10_random_test"].searches[0].nodes}
    gen0 = {tuple(n["oe_indices"]) for r in (results["cifar10_random_test"], results["cifar10_evolve_max_test"])
            for n in r.searches[0].nodes if n["generation"] == 0}
    assert drawn == gen0 and v["n_random"] == len(drawn)
    assert v["random_auroc"] == pytest.approx(np.mean([disk[(oe, 64)][0] for oe in drawn]))
    tested = {oe: s[0] for (oe, _), s in disk.items() if 0 in s}
    best, worst = tuple(v["best_oe"]), tuple(v["worst_oe"])
    # the best over the maximising and the random search; the worst from the random one (no minimising search here)
    assert v["best_test_auroc"] == pytest.approx(tested[best]) == pytest.approx(max(tested.values()))
    assert worst in drawn and v["worst_test_auroc"] == pytest.approx(tested[worst])
    assert tested[worst] == pytest.approx(min(tested[d] for d in drawn))
    assert v["best_test_auroc"] > v["worst_test_auroc"]                 # distinct values: the test can tell them apart
    for what, oe in (("best", best), ("worst", worst)):
        seeds = [disk[(oe, 64)][s] for s in RETRAIN["smoke"]["seeds"]]
        assert v[f"retrained_{what}"] == pytest.approx(np.mean(seeds))
        assert v[f"retrained_{what}_std"] == pytest.approx(np.std(seeds))
    assert v["retrained_seeds"] == 2 and v["retrained_best_wins"] == (v["retrained_best"] > v["retrained_worst"])
    # the validation search's picks, scored on the test set by the test-fitness runs
    val = results["cifar10_random_validation"].searches[0]
    on_val = {tuple(n["oe_indices"]): n["fitness"] for n in val.evaluated()}
    vbest = tuple(v["val_best_oe"])
    assert on_val[vbest] == max(on_val.values()) and v["val_best_test_auroc"] == pytest.approx(disk[(vbest, 64)][0])
    assert v["fitness"] == "test" and mean["val_best_test_auroc"] == pytest.approx(v["val_best_test_auroc"])

    # the claims, by hand from the runs on disk (one class: the mean over classes is the class's value)
    claims = {c.key: c for c in judge_claims(SINGLE_OUTLIER_CLAIMS, rows)}
    assert claims["one_image_beats_random"].value == pytest.approx(tested[best] - np.mean([tested[d] for d in drawn]))
    retrained = {oe: np.mean(list(disk[(oe, 64)].values())) for oe in (best, worst)}
    assert claims["best_beats_worst_retrained"].value == 100.0 * (retrained[best] > retrained[worst])
    # the retraining ran seed 1 of the best and the worst image only (seed 0: the searches' own runs)
    assert sorted(c for c in runs.calls if c[2] == 1) == sorted([(0, best, 1, 64), (0, worst, 1, 64)])

    # resume: nothing is trained again; a lost retraining run is the only one redone
    n = len(runs.calls)
    assert (best, 1) in {(c[1], c[2]) for c in runs.calls}
    rows2, _ = run_search_item("single_outlier", plans, tmp_path / "out", "smoke", progress=False, unit_fn=runs)
    assert len(runs.calls) == n and [r.values for r in rows2] == [r.values for r in rows]
    lost = next(p for p in (tmp_path / "out" / "fitness" / "fitness_test").glob("*/runs/cls0_seed1")
                if tuple(json.loads((p.parents[1] / "config.json").read_text())["config"]["oe_indices"]) == best)
    shutil.rmtree(lost)
    from eoe_nb.paper_items import ITEMS
    units = ITEMS["single_outlier"].units("smoke", dict(out_dir=str(tmp_path / "out"), data_root=str(tmp_path / "data")))
    assert len(units) == 8 and sum(not u.is_finished() for u in units) == 1     # the progress bar counts it
    rows3, _ = run_search_item("single_outlier", plans, tmp_path / "out", "smoke", progress=False, unit_fn=runs)
    assert runs.calls[n:] == [(0, best, 1, 64)] and rows3[0].values == v and all(u.is_finished() for u in units)
