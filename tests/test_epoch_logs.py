"""The per-epoch log (train_log.csv) of eoe-train runs (packed or not) and eoe-oe train phases: one row per epoch, kept
whole when a run is interrupted and resumed; --tensorboard: a one-line hint before anything runs when the package is
missing, TensorBoard events when it is installed."""
import json
import math
import sys
import time

import pytest
import torch

import eoe_nb.train as train_mod
from eoe_nb.cli import eoe_train_main
from eoe_nb.core import run_cli
from eoe_nb.epoch_logs import LOG, TENSORBOARD, TensorBoardLog, read_log, tensorboard_available
from eoe_nb.oe_cli import eoe_oe_main
from eoe_nb.testing import capture_cli, write_fake_cifar_pickles
from eoe_nb.train import Checkpoint

RUN = "runs/cls0_seed0"


def train(argv): return run_cli(eoe_train_main, argv)


def oe(argv): return run_cli(eoe_oe_main, argv)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def train_args(data_root, out, *extra):
    return ["--dataset", "cifar10[0-1]", "--oe", "cifar10[2-3]", "--oe-size", "10", "--model", "cnn32", "--epochs", "3",
            "--milestones", "2", "--batch-size", "16", "--seeds", "0", "--workers", "0", "--device", "cpu",
            "--data-root", str(data_root), "--out", str(out), "--no-plots", "--quiet", *extra]


def ad_rows(out, run=RUN):
    return [(r["attempt"], r["epoch"], r["lr"]) for r in read_log(out / run / LOG)]


def test_eoe_train_logs_each_epoch_of_each_run(fake_data_root, tmp_path):
    rc, _, err = capture_cli(train, train_args(fake_data_root, tmp_path / "seq"))
    assert rc == 0, err
    expected = [("1", "0", "0.001"), ("1", "1", "0.001"), ("1", "2", "0.0001")]    # lr 1e-3, times 0.1 from epoch 2
    for run in (RUN, "runs/cls1_seed0"): assert ad_rows(tmp_path / "seq", run) == expected
    rows = read_log(tmp_path / "seq" / RUN / LOG)
    assert list(rows[0]) == ["attempt", "epoch", "loss", "lr", "seconds"]
    ck = Checkpoint.load(tmp_path / "seq" / RUN / "checkpoint.pt")          # the losses and times the run holds
    assert [float(r["loss"]) for r in rows] == pytest.approx(ck.losses, rel=1e-5)
    assert [float(r["seconds"]) for r in rows] == pytest.approx(ck.epoch_seconds, abs=0.006)
    rc, _, err = capture_cli(train, train_args(fake_data_root, tmp_path / "packed", "--pack", "2"))   # stacked model
    assert rc == 0, err
    for run in (RUN, "runs/cls1_seed0"): assert ad_rows(tmp_path / "packed", run) == expected
    packed = Checkpoint.load(tmp_path / "packed" / RUN / "checkpoint.pt")
    packed_rows = read_log(tmp_path / "packed" / RUN / LOG)
    assert [float(r["loss"]) for r in packed_rows] == pytest.approx(packed.losses, rel=1e-5)
    assert packed.losses == pytest.approx(ck.losses, rel=0.02)        # the same training, up to the stacked numerics


def test_an_interrupted_eoe_train_run_resumes_with_one_row_per_epoch(fake_data_root, tmp_path, monkeypatch):
    saves, real_save = [], train_mod.atomic_torch_save
    def save_then_die(obj, path):               # the process dies right after the checkpoint of epoch 1 is saved
        real_save(obj, path); saves.append(obj.get("epoch"))
        if len(saves) == 2: raise KeyboardInterrupt
    monkeypatch.setattr(train_mod, "atomic_torch_save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        eoe_train_main(train_args(fake_data_root, tmp_path / "out", "--classes", "0"))
    first = read_log(tmp_path / "out" / RUN / LOG)
    assert [r["epoch"] for r in first] == ["0"]             # epoch 1 was checkpointed, not yet logged
    rc, _, err = capture_cli(train, train_args(fake_data_root, tmp_path / "out", "--classes", "0"))
    assert rc == 0, err
    assert saves[2] == 2                                     # resumed at epoch 2
    rows = read_log(tmp_path / "out" / RUN / LOG)
    assert [r["epoch"] for r in rows] == ["0", "1", "2"] and rows[0] == first[0]
    ck = Checkpoint.load(tmp_path / "out" / RUN / "checkpoint.pt")
    assert [float(r["loss"]) for r in rows] == pytest.approx(ck.losses, rel=1e-5)


@pytest.fixture(scope="module")
def oe_root(tmp_path_factory):
    from eoe_nb.oe_train import register_tiny_classifier
    register_tiny_classifier()
    root = tmp_path_factory.mktemp("oe")
    write_fake_cifar_pickles(root / "data", n_train=250, n_test=20)
    return root


def oe_args(root, out, *extra):
    return ["train", "--dataset", "cifar10[0-4]", "--phase", "oe_scratch", "--oe", "cifar10[5-7]", "--model",
            "tiny_classifier", "--epochs", "2", "--batch-size", "16", "--oe-batch-size", "32", "--device", "cpu",
            "--data-root", str(root / "data"), "--out", str(out), "--quiet", *extra]


def _counts(root):
    from eoe_nb.oe_train import OETrainConfig, classifier_data
    cfg = OETrainConfig("cifar10[0-4]", oe="cifar10[5-7]", phase="oe_scratch", model="tiny_classifier",
                        device="cpu", data_root=str(root / "data"))
    data = classifier_data(cfg)
    return len(data.train), len(data.oe)


def test_eoe_oe_train_logs_each_epoch_with_its_steps(oe_root, tmp_path):
    n_id, n_oe = _counts(oe_root)
    official, fill = min(math.ceil(n_id / 16), math.ceil(n_oe / 32)), math.ceil(n_id / 16)
    assert official < fill                                  # the OE set runs out first: the official epoch is shorter
    for how, steps in (("official", official), ("fill", fill)):
        rc, _, err = capture_cli(oe, oe_args(oe_root, tmp_path / how, *(["--oe-epoch", how] if how == "fill" else [])))
        assert rc == 0, err
        rows = read_log(tmp_path / how / LOG)
        assert [(r["epoch"], r["steps"], r["call"]) for r in rows] == [("0", str(steps), "1"), ("1", str(steps), "1")]
        assert all(math.isfinite(float(r[k])) for r in rows for k in ("loss", "loss_ema", "lr", "seconds"))
        manifest = json.loads((tmp_path / how / "manifest.json").read_text())
        assert manifest["steps_per_epoch"] == steps and manifest["config"]["oe_epoch"] == how
        assert any(d.startswith("oe_epoch=fill") for d in manifest["deviations"]) == (how == "fill")


def test_an_interrupted_oe_phase_resumes_with_one_row_per_epoch(oe_root, tmp_path, monkeypatch):
    calls, real_save = [], train_mod.atomic_torch_save
    def die_before_second_checkpoint(obj, path):    # epoch 1 is logged, and the process dies before its checkpoint
        calls.append(path)
        if len(calls) == 2: raise KeyboardInterrupt
        real_save(obj, path)
    monkeypatch.setattr(train_mod, "atomic_torch_save", die_before_second_checkpoint)
    with pytest.raises(KeyboardInterrupt): eoe_oe_main(oe_args(oe_root, tmp_path / "r"))
    assert [r["epoch"] for r in read_log(tmp_path / "r" / LOG)] == ["0", "1"]
    monkeypatch.setattr(train_mod, "atomic_torch_save", real_save)
    rc, _, err = capture_cli(oe, oe_args(oe_root, tmp_path / "r"))
    assert rc == 0, err
    rows = read_log(tmp_path / "r" / LOG)
    assert [(r["epoch"], r["call"]) for r in rows] == [("0", "1"), ("1", "2")]   # epoch 1 once: trained again by call 2
    rc, _, err = capture_cli(oe, oe_args(oe_root, tmp_path / "whole"))
    assert rc == 0, err
    assert [r["loss"] for r in read_log(tmp_path / "whole" / LOG)] == [r["loss"] for r in rows]   # the same epochs


@pytest.mark.parametrize("command", ["eoe-train", "eoe-oe train"])
def test_tensorboard_without_the_package_is_one_line_before_anything_runs(command, fake_data_root, oe_root, tmp_path,
                                                                         monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)       # as if it were not installed
    cli, argv = ((train, train_args(fake_data_root, tmp_path / "out", "--tensorboard")) if command == "eoe-train"
                 else (oe, oe_args(oe_root, tmp_path / "out", "--tensorboard")))
    rc, out, err = capture_cli(cli, argv)
    assert rc == 2 and err.startswith("error: --tensorboard needs the tensorboard package: pip install tensorboard")
    assert err.count("\n") == 1 and not (tmp_path / "out").exists()


def _scalars(folder, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(folder / TENSORBOARD)); acc.Reload()
    return [(s.step, s.value) for s in acc.Scalars(tag)]


@pytest.mark.skipif(not tensorboard_available(), reason="the tensorboard package is not installed")
def test_tensorboard_events_beside_the_log(fake_data_root, oe_root, tmp_path):
    assert capture_cli(train, train_args(fake_data_root, tmp_path / "ad", "--tensorboard"))[0] == 0
    rows = read_log(tmp_path / "ad" / RUN / LOG)
    assert _scalars(tmp_path / "ad" / RUN, "loss") == [(i, pytest.approx(float(r["loss"]), rel=1e-5))
                                                       for i, r in enumerate(rows)]
    assert capture_cli(oe, oe_args(oe_root, tmp_path / "oe", "--tensorboard"))[0] == 0
    rows = read_log(tmp_path / "oe" / LOG)
    assert _scalars(tmp_path / "oe", "lr") == [(i, pytest.approx(float(r["lr"]), rel=1e-5)) for i, r in enumerate(rows)]


@pytest.mark.skipif(not tensorboard_available(), reason="the tensorboard package is not installed")
def test_tensorboard_events_of_a_resumed_run_hold_each_epoch_once(tmp_path):
    first = TensorBoardLog(tmp_path)
    for epoch in range(3): first.log(epoch, dict(loss=10 + epoch))            # killed after epoch 2, checkpoint at 0
    first.close()
    time.sleep(1.1)                                       # another second: another events file
    resumed = TensorBoardLog(tmp_path)
    for epoch in (1, 2, 3): resumed.log(epoch, dict(loss=20 + epoch))
    resumed.close()
    assert _scalars(tmp_path, "loss") == [(0, 10.0), (1, 21.0), (2, 22.0), (3, 23.0)]
