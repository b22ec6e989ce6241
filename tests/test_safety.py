"""A run folder from someone else is safe to open, and pictures never fail results (issue 19): a checkpoint whose pickle would
run a shell command is refused in one line at every place a checkpoint is read (eoe-score, eoe-train resume, eoe-oe test,
eoe-oe train resume, an OE tune's baseline), with real processes, and the command never runs; a figure that cannot be drawn
is one warning line, never a failed run or a stopped grid; eoe-score on one image writes its results."""
import errno
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from eoe_nb.core import RunConfig
from eoe_nb.folders import file_record
from eoe_nb.testing import write_fake_cifar10_folder

BIN = Path(sys.executable).parent
ENV = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")


class _Planted:
    "A pickle that creates `marker` when it is loaded (with weights_only=False)."
    def __init__(self, marker: Path): self.marker = marker
    def __reduce__(self): return (os.system, (f"touch {self.marker}",))


def plant(path: Path, marker: Path) -> None:
    "Replace the checkpoint at `path` by one that looks right (model state) but carries the planted pickle."
    torch.save({"model": {}, "objective": _Planted(marker), "epoch": 0}, path)


def run(*cmd, timeout=300):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=ENV, timeout=timeout)


def refused(r, path: Path, marker: Path) -> None:
    "Exit 2, one `error:` line naming the file and the call it would make, no traceback, and the command never ran."
    lines = [line for line in r.stderr.strip().splitlines() if line.startswith("error:")]
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, (r.returncode, r.stderr[-3000:])
    assert str(path) in lines[0] and "posix.system" in lines[0], lines[0]
    assert not marker.exists()


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_fake_cifar10_folder(tmp_path_factory.mktemp("safety_data"), n_train=16, n_test=8)


def train_cmd(data, out):
    return [BIN / "eoe-train", "--dataset", "cifar10[0-4]", "--oe", "cifar10[5-9]", "--objective", "hsc", "--classes", "0",
            "--seeds", "0", "--epochs", "2", "--milestones", "--batch-size", "8", "--workers", "0", "--device", "cpu",
            "--data-root", data, "--out", out, "--no-plots", "--quiet"]


def oe_cmd(data, out, *extra):
    return [BIN / "eoe-oe", "train", "--dataset", "cifar10[0-4]", "--model", "cnn32_classifier", "--epochs", "1",
            "--lr", "0.1", "--batch-size", "16", "--device", "cpu", "--data-root", data, "--out", out, "--quiet", *extra]


def test_anomaly_detection_checkpoints_are_loaded_as_weights_only(data, tmp_path):
    marker, out = tmp_path / "ran", tmp_path / "ad"
    r = run(*train_cmd(data, out))
    assert r.returncode == 0, r.stderr[-3000:]
    run_dir = out / "runs" / "cls0_seed0"
    images = tmp_path / "images"
    shutil.copytree(data / "cifar10-jpg" / "test" / "airplane", images / "airplane")
    one = tmp_path / "one" / "normal"
    one.mkdir(parents=True)
    shutil.copy(next((images / "airplane").iterdir()), one)
    r = run(BIN / "eoe-score", run_dir, one.parent, "--out", tmp_path / "scored_one")      # exactly one image
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert json.loads((tmp_path / "scored_one" / "summary.json").read_text())["scored"] == 1
    assert (tmp_path / "scored_one" / "extremes.png").stat().st_size > 0
    # a zero-byte scores.npz is not a finished run: the same command scores it again from its final checkpoint
    scores = np.load(run_dir / "scores.npz")["scores"]
    (run_dir / "scores.npz").write_bytes(b"")
    r = run(*train_cmd(data, out))
    assert r.returncode == 0, r.stderr[-3000:]
    assert (f"notice: run cls0_seed0 of {out}: scores.npz is empty; it is scored again from its final checkpoint"
            in r.stderr), r.stderr[-3000:]
    assert np.array_equal(np.load(run_dir / "scores.npz")["scores"], scores)
    # a checkpoint changed after the run was evaluated is refused by eoe-score
    good = (run_dir / "checkpoint.pt").read_bytes()
    (run_dir / "checkpoint.pt").write_bytes(good + b"\0")
    r = run(BIN / "eoe-score", run_dir, images, "--out", tmp_path / "scored")
    assert r.returncode == 2 and "differs from the checksum" in r.stderr and "Traceback" not in r.stderr, r.stderr
    # a hostile folder: the planted checkpoint with a result.json that records its checksum
    plant(run_dir / "checkpoint.pt", marker)
    result = json.loads((run_dir / "result.json").read_text())
    result["files"]["checkpoint.pt"] = file_record(run_dir / "checkpoint.pt")
    (run_dir / "result.json").write_text(json.dumps(result))
    refused(run(BIN / "eoe-score", run_dir, images, "--out", tmp_path / "scored"), run_dir / "checkpoint.pt", marker)
    assert not (tmp_path / "scored").exists()
    (run_dir / "result.json").unlink()                        # unfinished now: eoe-train resumes from the checkpoint
    refused(run(*train_cmd(data, out)), run_dir / "checkpoint.pt", marker)


def test_oe_paper_checkpoints_are_loaded_as_weights_only(data, tmp_path):
    marker, base = tmp_path / "ran", tmp_path / "baseline"
    r = run(*oe_cmd(data, base))
    assert r.returncode == 0, r.stderr[-3000:]
    final = next(base.rglob("final.pt"))
    good = final.read_bytes()
    (final.parent / "final.pt").write_bytes(good[:-1])               # changed after training: refused, trained again
    r = run(BIN / "eoe-oe", "test", final.parent, "--device", "cpu", "--data-root", data, "--quiet")
    assert r.returncode == 2 and "final.pt differs from the checksum" in r.stderr and "Traceback" not in r.stderr, r.stderr
    plant(final, marker)                       # a hostile folder: the planted weights with a manifest that records them
    manifest = json.loads((final.parent / "manifest.json").read_text())
    manifest["files"]["final.pt"] = file_record(final)
    (final.parent / "manifest.json").write_text(json.dumps(manifest))
    refused(run(BIN / "eoe-oe", "test", final.parent, "--device", "cpu", "--data-root", data, "--quiet"), final, marker)
    tune = oe_cmd(data, tmp_path / "tune", "--phase", "oe_tune", "--oe", "cifar10[5-9]", "--baseline", final.parent)
    refused(run(*tune), final, marker)
    final.write_bytes(b"")                     # an empty final.pt is not a finished run: the phase is trained again
    r = run(*oe_cmd(data, base))
    assert r.returncode == 0 and f"notice: {final} is empty; the phase is trained again" in r.stderr, r.stderr[-3000:]
    retrained = torch.load(final, weights_only=True)["model"]
    original = torch.load(io.BytesIO(good), weights_only=True)["model"]
    assert all(torch.equal(retrained[k], original[k]) for k in original)   # seeded: the same weights
    # an unfinished run whose resumable checkpoint is planted: the resume refuses it
    resumed = tmp_path / "resumed"
    r = run(*oe_cmd(data, resumed, "--epochs", "2"), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    run_dir = next(resumed.rglob("final.pt")).parent
    (run_dir / "final.pt").unlink()
    plant(run_dir / "checkpoint.pt", marker)
    refused(run(*oe_cmd(data, resumed, "--epochs", "2")), run_dir / "checkpoint.pt", marker)


def test_a_figure_that_cannot_be_drawn_never_stops_a_grid(data, tmp_path, monkeypatch, capsys):
    import eoe_nb.runner as runner
    def broken(*args, **kwargs): raise ValueError("no picture today")
    monkeypatch.setattr(runner, "plot_extreme_images", broken)
    monkeypatch.setattr(runner, "plot_roc_pr", broken)
    cfg = RunConfig(dataset="cifar10[0-4]", oe="cifar10[5-9]", objective="hsc", classes=[1, 2], seeds=[0], epochs=1,
                    milestones=[], batch_size=8, workers=0, device="cpu", data_root=str(data))
    df = runner.run_configuration(cfg, tmp_path / "out", progress=False, plots=True)
    assert sorted(df.normal_class) == [1, 2] and df.auroc.notna().all()
    err = capsys.readouterr().err
    for c in (1, 2):
        assert f"warning: the extreme images of class {c}, seed 0 not drawn (no picture today); the results are kept" in err
        assert f"warning: the ROC and PR curves of class {c} not drawn (no picture today)" in err
        assert (tmp_path / "out" / "runs" / f"cls{c}_seed0" / "result.json").exists()
        assert (tmp_path / "out" / "plots" / f"cls{c}_seed0_scores.png").exists()        # the other figures are drawn


@pytest.fixture
def small_disk(tmp_path):
    "A 64 MB tmpfs (needs root: skipped elsewhere; the injected ENOSPC test below runs everywhere)."
    mnt = tmp_path / "small_disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root)")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def finished_files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted((out / "runs" / "cls0_seed0").iterdir())}


def test_a_full_disk_is_one_line_and_finished_results_stay(data, small_disk):
    out = small_disk / "out"
    r = run(*train_cmd(data, out))                                   # class 0 finishes
    assert r.returncode == 0, r.stderr[-3000:]
    before = finished_files(out)
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    (small_disk / "filler").write_bytes(b"\0" * (free - 8 * 1024))   # 8 kB left: too little for a checkpoint
    cmd = train_cmd(data, out)
    cmd[cmd.index("--classes") + 1] = "1"
    r = run(*cmd[:cmd.index("--classes") + 2], "0", *cmd[cmd.index("--classes") + 2:])      # classes 1 0
    lines = [line for line in r.stderr.strip().splitlines() if line.startswith("error:")]
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert lines[0].startswith("error: no space left in ") and "free space there" in lines[0], lines[0]
    assert finished_files(out) == before
    assert not list(out.rglob("*.tmp"))


def test_an_injected_full_disk_is_one_line(data, tmp_path, monkeypatch, capsys):
    from eoe_nb.cli import eoe_train_main
    from eoe_nb.core import run_cli
    out = tmp_path / "out"
    argv = [str(a) for a in train_cmd(data, out)[1:]]
    assert run_cli(eoe_train_main, argv) == 0
    before = finished_files(out)
    real_fsync = os.fsync
    def fsync(fd):                                                   # the disk fills up under run cls1_seed0
        if "cls1_seed0" in os.readlink(f"/proc/self/fd/{fd}"): raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)
    monkeypatch.setattr(os, "fsync", fsync)
    argv[argv.index("--classes") + 1:argv.index("--classes") + 2] = ["0", "1"]
    capsys.readouterr()
    assert run_cli(eoe_train_main, argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith(f"error: no space left in {out / 'runs' / 'cls1_seed0'} for "), err
    assert finished_files(out) == before and not list(out.rglob("*.tmp"))
