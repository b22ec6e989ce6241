"""Issue 11 (Hendrycks' OE classifiers): the training loop of eoe_nb.oe_train sends ID + OE images through ONE forward
pass, follows the official per-iteration cosine schedule, is deterministic, resumes exactly after a kill and refuses
another configuration in a run folder. Tiny fake data in RAM and a tiny model: a few seconds in all."""
import csv
import json
import math

import pytest
import torch
import torch.nn.functional as F

from eoe_nb.core import ConfigError
from eoe_nb.data import ImageSet
from eoe_nb.models import ModelSpec, register_model
from eoe_nb.oe_train import (CHECKPOINT, FINAL, LOG, ClassifierData, OETrainConfig, TinyClassifier, oe_recipe, oe_step,
                             run_finished, train_classifier)
from eoe_nb.train import Checkpoint

PROBE = {"sizes": [], "raise_at": None}


class _Killed(Exception):
    pass


class _Probe(TinyClassifier):
    "TinyClassifier that records the size of every training forward pass and can 'die' at the n-th one."
    def forward(self, x):
        if self.training:
            PROBE["sizes"].append(len(x))
            if PROBE["raise_at"] is not None and len(PROBE["sizes"]) == PROBE["raise_at"]: raise _Killed()
        return super().forward(x)


register_model(ModelSpec("oe_probe", lambda a: _Probe(a.rep_dim or 10, a.in_channels or 3), "test probe", channels=(3,),
                         clf_head=False, multiclass=True))


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads(); torch.set_num_threads(1)
    PROBE.update(sizes=[], raise_at=None)
    yield
    torch.set_num_threads(n)


def _data(n_id=24, n_oe=48, k=3) -> ClassifierData:   # 48 OE images: enough for 3 steps of 16
    g = torch.Generator().manual_seed(0)
    img = lambda n, y: (torch.rand(n, 3, 32, 32, generator=g) * 60 + 60 * y.view(-1, 1, 1, 1)).to(torch.uint8)
    names = [f"c{i}" for i in range(k)]
    y, yt = torch.arange(n_id) % k, torch.arange(9) % k
    train = ImageSet("fake", "train", names, y, images=img(n_id, y))
    oe = ImageSet("fake_oe", "train", ["oe"], torch.zeros(n_oe), images=(torch.rand(n_oe, 3, 32, 32, generator=g) * 255).to(torch.uint8))
    return ClassifierData(train, train.subset([]), ImageSet("fake", "test", names, yt, images=img(9, yt)), oe, names, oe_recipe("cifar10"))


CFG = OETrainConfig("cifar10[0-2]", oe="cifar10[5-7]", model="oe_probe", phase="oe_scratch", epochs=3, lr=0.05, batch_size=8,
                    oe_batch_size=16, device="cpu")


def _weights(run_dir):
    return Checkpoint.load(run_dir / FINAL).model


def test_one_forward_pass_per_step_over_id_and_oe(tmp_path):
    train_classifier(CFG.replace(epochs=1), tmp_path / "r", progress=False, data=_data())
    assert PROBE["sizes"] == [8 + 16] * 3            # 24 ID images / 8 = 3 steps, each ONE pass over 8 ID + 16 OE rows
    PROBE["sizes"].clear()
    train_classifier(CFG.replace(epochs=1, phase="baseline", oe="none"), tmp_path / "b", progress=False, data=_data())
    assert PROBE["sizes"] == [8] * 3


def test_a_small_oe_set_ends_the_epoch_as_the_official_zip_of_the_loaders(tmp_path):
    # 24 ID images at 8 per step (3 batches), 20 OE images at 16 per step: zip(loader_in, loader_out) stops after
    # ceil(20 / 16) = 2 steps, the second with the 4 OE images left; the cosine stays sized for 2 epochs x 3 steps
    run = train_classifier(CFG.replace(epochs=2), tmp_path / "r", progress=False, data=_data(n_oe=20))
    assert PROBE["sizes"] == [8 + 16, 8 + 4] * 2
    rows = list(csv.DictReader(open(run / LOG)))
    assert [r["steps"] for r in rows] == ["2", "2"]
    assert json.loads((run / "manifest.json").read_text())["steps_per_epoch"] == 2
    total, lr = 2 * 3, 0.05                             # epochs * len(train_loader_in), not epochs * 2
    expected = lr * (1e-6 / lr + (1 - 1e-6 / lr) * 0.5 * (1 + math.cos(math.pi * (2 + 1) / total)))
    assert float(rows[1]["lr"]) == pytest.approx(expected, rel=1e-5)   # epoch 1 starts at iteration 2
    assert json.loads((run / "config.json").read_text())["oe_epoch"] == "official"
    assert not any("oe_epoch" in d for d in json.loads((run / "manifest.json").read_text())["deviations"])


def test_fill_repeats_oe_images_for_every_id_batch_and_is_flagged(tmp_path):
    run = train_classifier(CFG.replace(epochs=1, oe_epoch="fill"), tmp_path / "r", progress=False, data=_data(n_oe=20))
    assert PROBE["sizes"] == [8 + 16] * 3               # the step count before oe_epoch existed
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["steps_per_epoch"] == 3 and manifest["config"]["oe_epoch"] == "fill"
    assert any(d.startswith("oe_epoch=fill") and "after 2 steps" in d for d in manifest["deviations"])


def test_a_run_folder_from_before_oe_epoch_resumes_as_fill_or_is_refused_in_one_line(tmp_path):
    PROBE["raise_at"] = 4                               # killed in epoch 1 of a "fill" run (3 steps per epoch)
    with pytest.raises(_Killed):
        train_classifier(CFG.replace(oe_epoch="fill"), tmp_path / "r", progress=False, data=_data(n_oe=20))
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    del config["oe_epoch"], config["tensorboard"]       # as this package wrote it before the fields existed
    (tmp_path / "r" / "config.json").write_text(json.dumps(config))
    PROBE.update(sizes=[], raise_at=None)
    with pytest.raises(ConfigError, match="oe_epoch: 'fill' there, 'official' here") as e:
        train_classifier(CFG, tmp_path / "r", progress=False, data=_data(n_oe=20))
    assert "\n" not in str(e.value) and "oe_epoch='fill'" in str(e.value)
    train_classifier(CFG.replace(oe_epoch="fill"), tmp_path / "r", progress=False, data=_data(n_oe=20))
    assert PROBE["sizes"] == [8 + 16] * 6 and run_finished(tmp_path / "r")


def test_step_loss_is_ce_plus_lam_oe_term_of_the_joint_pass():
    torch.manual_seed(0)
    net = TinyClassifier(3).train()
    with torch.no_grad(): net.fc.weight.mul_(20)
    x_in, x_oe, y = torch.randn(4, 3, 8, 8), torch.randn(8, 3, 8, 8) * 2 + 1, torch.tensor([0, 1, 2, 0])
    joint = TinyClassifier(3).train(); joint.load_state_dict(net.state_dict())
    z = joint(torch.cat([x_in, x_oe]))
    expected = F.cross_entropy(z[:4], y) + 0.5 * (torch.logsumexp(z[4:], 1) - z[4:].mean(1)).mean()
    sep = TinyClassifier(3).train(); sep.load_state_dict(net.state_dict())
    zi, zo = sep(x_in), sep(x_oe)
    separate = F.cross_entropy(zi, y) + 0.5 * (torch.logsumexp(zo, 1) - zo.mean(1)).mean()
    loss, _ = oe_step(net, x_in, y, x_oe, 0.5)
    assert torch.allclose(loss, expected, atol=1e-6)
    assert abs(loss.item() - separate.item()) > 1e-2    # separate passes (other BatchNorm statistics) would fail above
    assert torch.allclose(net.bn.running_mean, joint.bn.running_mean)


def test_logged_lr_is_the_official_cosine_at_each_epoch_start(tmp_path):
    run = train_classifier(CFG, tmp_path / "r", progress=False, data=_data())
    rows = list(csv.DictReader(open(run / LOG)))
    total, lr = 3 * 3, 0.05
    for e, row in enumerate(rows):                    # iteration i trains with the official factor of step i + 1
        step = e * 3 + 1
        expected = lr * (1e-6 / lr + (1 - 1e-6 / lr) * 0.5 * (1 + math.cos(math.pi * step / total)))
        assert float(row["lr"]) == pytest.approx(expected, rel=1e-5)


def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    a = _weights(train_classifier(CFG, tmp_path / "a", progress=False, data=_data()))
    b = _weights(train_classifier(CFG, tmp_path / "b", progress=False, data=_data()))
    c = _weights(train_classifier(CFG.replace(seed=2), tmp_path / "c", progress=False, data=_data()))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point())


def test_resume_after_a_kill_equals_an_uninterrupted_run(tmp_path):
    whole = _weights(train_classifier(CFG, tmp_path / "whole", progress=False, data=_data()))
    PROBE.update(sizes=[], raise_at=5)                # dies in the 2nd step of epoch 1 (3 steps per epoch)
    with pytest.raises(_Killed): train_classifier(CFG, tmp_path / "cut", progress=False, data=_data())
    assert not run_finished(tmp_path / "cut") and Checkpoint.load(tmp_path / "cut" / CHECKPOINT).epoch == 0
    PROBE.update(sizes=[], raise_at=None)
    resumed = _weights(train_classifier(CFG, tmp_path / "cut", progress=False, data=_data()))
    assert len(PROBE["sizes"]) == 6                   # only epochs 1 and 2 were trained again
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
    assert [r["epoch"] for r in csv.DictReader(open(tmp_path / "cut" / LOG))] == ["0", "1", "2"]


def test_another_config_in_the_run_folder_is_refused(tmp_path):
    PROBE["raise_at"] = 4
    with pytest.raises(_Killed): train_classifier(CFG, tmp_path / "r", progress=False, data=_data())
    stored = (tmp_path / "r" / "config.json").read_text()
    with pytest.raises(ConfigError, match="another configuration") as e:
        train_classifier(CFG.replace(lam=1.0), tmp_path / "r", progress=False, data=_data())
    assert "\n" not in str(e.value)
    assert (tmp_path / "r" / "config.json").read_text() == stored
    assert json.loads(stored)["lam"] == 0.5


def test_oe_scratch_on_fake_cifar_with_file_backed_80mti(tmp_path):
    from eoe_nb.oe_train import classifier_data, load_classifier, test_error
    from eoe_nb.testing import write_fake_cifar10_folder, write_fake_tinyimages
    root = write_fake_cifar10_folder(tmp_path / "data", n_train=4, n_test=2)
    write_fake_tinyimages(root, n=12)
    cfg = CFG.replace(in_dist="cifar10[0-2]", oe=None, epochs=1, batch_size=4, oe_batch_size=5, data_root=str(root))
    data = classifier_data(cfg)
    assert (len(data.train), len(data.test), len(data.oe), data.oe.in_memory) == (12, 6, 10, False)   # 2 CIFAR ids excluded
    run = train_classifier(cfg, tmp_path / "run", progress=False)
    assert PROBE["sizes"] == [4 + 5] * 2                # 10 fake 80MTI images, 5 per step: the official epoch ends
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["config"]["oe"] == "tinyimages" and manifest["config"]["oe_order"] == "offset"
    assert 0 <= test_error(load_classifier(run), data) <= 100


def test_oe_tune_needs_a_matching_finished_baseline(tmp_path):
    base = train_classifier(CFG.replace(phase="baseline", oe="none", epochs=1), tmp_path / "base", progress=False, data=_data())
    tune = CFG.replace(phase="oe_tune", baseline=str(base), epochs=1, lr=0.001)
    with pytest.raises(ConfigError, match="val_share"):         # a calibration tune needs the calibration baseline (same held-out split)
        train_classifier(tune.replace(val_share=0.1), tmp_path / "t", progress=False, data=_data())
    with pytest.raises(ConfigError, match="in_dist"):
        train_classifier(tune.replace(in_dist="cifar10[0,1,3]"), tmp_path / "t", progress=False, data=_data())
    assert not (tmp_path / "t").exists()
    run = train_classifier(tune, tmp_path / "t", progress=False, data=_data())
    assert json.loads((run / "config.json").read_text())["baseline"] == str(base.resolve())
