"""The OE test suite end to end on fake data: resolve -> logits of the drawn images -> OOD rows and calibration rows,
deterministic under a seed, different across seeds, and the sources picklable (for process pools)."""
import math
import pickle

import numpy as np
import torch

from eoe_nb.data import ImageSet
from eoe_nb.oe_eval import (OODLogits, draw_positions, OODProtocol, calibration_table, evaluate_calibration, evaluate_ood, ood_logits, ood_set,
                            official_ood_sets, resolve_ood_sets)
from eoe_nb.testing import write_fake_cifar_pickles


def _predict(x):
    "A fixed 'classifier': 4 logits from the per-channel means and their spread (uint8 ImageSets are scaled to [0, 1] first)."
    x = x.images.float() / 255 if isinstance(x, ImageSet) else x
    m = x.mean(dim=(2, 3))
    return torch.cat([m * 4, x.std(dim=(1, 2, 3))[:, None] * 4], 1)


def _run(root, seed):
    torch.set_num_threads(1)
    proto = OODProtocol(n_draws=3, seed=seed, test_bs=None)
    specs = official_ood_sets("cifar10") + [ood_set("cifar10[8-9]")] + official_ood_sets("cifar10", validation=True)[:3]
    sources, missing = resolve_ood_sets(specs, 500, proto, data_root=root)
    gen = np.random.default_rng(0)
    z_test, y_test = gen.normal(0, 2, (500, 4)), gen.integers(0, 4, 500)
    ood = {n: ood_logits(s, _predict, 500, proto, batch_size=64, progress=False) for n, s in sources.items()}
    rep = evaluate_ood(z_test, y_test, ood, "energy", proto, "cifar10", "baseline", missing)
    cal = evaluate_calibration(z_test[:200], y_test[:200], z_test, y_test, ood, "cifar10", "baseline")
    return rep, cal, ood, sources


def test_pipeline_deterministic_and_seeded(tmp_path):
    write_fake_cifar_pickles(tmp_path, "cifar100", n_test=60)
    write_fake_cifar_pickles(tmp_path, "cifar10", n_test=80)
    rep1, cal1, ood1, sources = _run(tmp_path, seed=1)
    rep2, cal2, ood2, _ = _run(tmp_path, seed=1)
    names = [r.ood_set for r in rep1.rows]
    assert names[0] == "Error Detection" and names[-1] == "Mean"
    assert {"Gaussian", "Rademacher", "Blobs", "CIFAR-100", "cifar10[8-9]", "Uniform[-1,1]", "Arithmetic Mean", "Geometric Mean"} <= set(names)
    assert set(rep1.missing) == {"Textures", "SVHN", "Places365", "LSUN"}
    assert all(math.isfinite(r.auroc) and 0 <= r.fpr <= 1 for r in rep1.rows)
    assert rep1.frame().equals(rep2.frame()) and calibration_table(cal1).equals(calibration_table(cal2))  # same seed, same numbers
    assert not np.array_equal(ood1["Gaussian"].draws, draw_positions(sources["Gaussian"].size, 500, OODProtocol(3, seed=2, test_bs=None), "Gaussian"))
    assert rep1.frame().shape[0] == len(rep1.rows) and calibration_table(cal1).shape[0] == len(cal1)
    path = ood1["Blobs"].save(tmp_path / "blobs.npz")
    assert np.array_equal(OODLogits.load(path).logits, ood1["Blobs"].logits)
    again = pickle.loads(pickle.dumps(sources["Blobs"]))                 # sources travel to worker processes
    assert torch.equal(again.fetch(np.array([3, 4])), sources["Blobs"].fetch(np.array([3, 4])))
