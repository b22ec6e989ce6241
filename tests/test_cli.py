"""The command-line tools as a user runs them: exit codes, messages without tracebacks, outputs, resume."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

BIN = Path(sys.executable).parent


def run(cmd, data_root, timeout=600):
    env = dict(os.environ, EOE_DATA=str(data_root), HF_HUB_OFFLINE="1")
    return subprocess.run([str(BIN / cmd[0]), *cmd[1:]], capture_output=True, text=True, env=env, timeout=timeout)


def test_eoe_data_check_json(fake_data_root):
    r = run(["eoe-data", "check", "cifar10", "--json"], fake_data_root)
    assert r.returncode == 0, r.stderr
    counts = json.loads(r.stdout)
    assert set(counts) == {"train", "test"}
    assert counts["train"]["cat"] == 24 and counts["test"]["truck"] == 8


def test_eoe_subcommands_are_the_same_commands(fake_data_root):
    "`eoe data ...` is `eoe-data ...`; flag errors of either are one line naming the command as it was called."
    r1 = run(["eoe-data", "check", "cifar10", "--json"], fake_data_root)
    r2 = run(["eoe", "data", "check", "cifar10", "--json"], fake_data_root)
    assert r1.returncode == r2.returncode == 0 and json.loads(r1.stdout) == json.loads(r2.stdout), r2.stderr
    r = run(["eoe", "score", "run"], fake_data_root)
    assert r.returncode == 2
    assert r.stderr == "error: the following arguments are required: images, --out (see eoe score --help)\n"


def test_eoe_data_errors_are_one_line(fake_data_root, tmp_path):
    r = run(["eoe-data", "check", "cifar11"], fake_data_root)
    assert r.returncode == 2 and "unknown data set" in r.stderr and "Traceback" not in r.stderr
    r = run(["eoe-data", "check", "cifar10", "--data-root", str(tmp_path / "empty")], fake_data_root)
    assert r.returncode == 2 and "cifar10-jpg" in r.stderr and "Traceback" not in r.stderr


def test_eoe_train_runs_and_resumes(fake_data_root, tmp_path):
    out = tmp_path / "hsc"
    cmd = ["eoe-train", "--dataset", "cifar10[0-1]", "--mode", "ovr", "--oe", "cifar10[2-3]", "--objective", "hsc",
           "--model", "cnn32", "--epochs", "2", "--milestones", "1", "--batch-size", "16", "--seeds", "0",
           "--workers", "0", "--device", "cpu", "--out", str(out)]
    r = run(cmd, fake_data_root)
    assert r.returncode == 0, r.stderr[-3000:]
    df = pd.read_csv(out / "runs.csv")
    for col in ("dataset", "mode", "objective", "model", "normal_class", "seed", "oe", "oe_size", "epochs", "auroc",
                "ap", "fpr95", "train_seconds"):
        assert col in df.columns
    assert sorted(df["normal_class"]) == [0, 1] and df["auroc"].between(0, 1).all()
    summary = json.loads((out / "summary.json").read_text())
    assert abs(summary["auroc"]["mean"] - df.groupby("normal_class")["auroc"].mean().mean()) < 1e-9
    manifest = json.loads((out / "runs" / "cls0_seed0" / "manifest.json").read_text())
    assert manifest["seed"] == 0 and "torch" in manifest["packages"] and manifest["data_source"]
    assert (out / "plots" / "cls0_roc_pr.png").exists() and (out / "plots" / "cls0_seed0_extremes.pdf").exists()
    finished = (out / "runs" / "cls0_seed0" / "result.json").read_text()
    r2 = run(cmd, fake_data_root)                           # the same command again: nothing is redone
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert "2 finished run(s) kept, 0 to run" in r2.stderr + r2.stdout
    assert (out / "runs" / "cls0_seed0" / "result.json").read_text() == finished
    r3 = run(cmd[:-1] + [str(out), "--lr", "0.1"], fake_data_root)   # another configuration into the same folder
    assert r3.returncode == 2 and "another configuration" in r3.stderr


def test_eoe_train_bad_input(fake_data_root, tmp_path):
    base = ["eoe-train", "--dataset", "cifar10[0-1]", "--epochs", "1", "--seeds", "0", "--workers", "0", "--device", "cpu"]
    cases = [
        (["--oe", "cifar10[2-3]", "--oe-size", "-1"], "OE size must be"),
        (["--oe", "cifar10[2-3]", "--oe-size", "100000"], "larger than"),
        (["--oe", "cifar10[2-3]", "--objective", "dsvdd"], "--oe none"),
        (["--oe", "none", "--objective", "hsc"], "needs outlier exposure"),
        (["--oe", "cifar10", "--objective", "hsc"], "shares class"),
        (["--oe", "cifar10[2-3]", "--classes", "7"], "class 7 is not in the universe of cifar10[0-1]"),
    ]
    for i, (extra, needle) in enumerate(cases):
        r = run(base + extra + ["--out", str(tmp_path / f"bad{i}")], fake_data_root)
        assert r.returncode == 2, (extra, r.stderr[-2000:])
        assert "Traceback" not in r.stderr and needle.lower() in r.stderr.lower(), (extra, r.stderr[-2000:])


def test_eoe_train_defaults_follow_the_data(tmp_path):
    """MNIST in torchvision's raw layout, no --preset: the mnist preset (CNN28, mnist pipeline) is applied and reported."""
    from eoe_nb.testing import write_fake_mnist_raw
    root = tmp_path / "data"
    write_fake_mnist_raw(root, "mnist", n_train=6, n_test=4)
    out = tmp_path / "out"
    r = run(["eoe-train", "--dataset", "mnist[0-4]", "--mode", "ovr", "--classes", "0", "--oe", "mnist[5-9]",
             "--objective", "hsc", "--epochs", "1", "--seeds", "0", "--workers", "0", "--device", "cpu", "--no-plots",
             "--out", str(out)], root)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "preset mnist (train_mnist.py)" in r.stdout
    config = json.loads((out / "config.json").read_text())["config"]
    assert (config["preset"], config["model"], config["transform"], config["milestones"]) == ("mnist", "cnn28", "mnist", [100, 150])
    df = pd.read_csv(out / "runs.csv")
    assert df["preset"].tolist() == ["mnist"] and df["auroc"].between(0, 1).all()


def test_eoe_train_objective_args_are_recorded(fake_data_root, tmp_path):
    out = tmp_path / "focal"
    r = run(["eoe-train", "--dataset", "cifar10[0-1]", "--classes", "0", "--oe", "cifar10[2-3]", "--objective", "focal",
             "--objective-arg", "gamma=1", "--epochs", "1", "--batch-size", "16", "--seeds", "0", "--workers", "0",
             "--device", "cpu", "--no-plots", "--out", str(out)], fake_data_root)
    assert r.returncode == 0, r.stderr[-3000:]
    manifest = json.loads((out / "runs" / "cls0_seed0" / "manifest.json").read_text())
    assert manifest["config"]["objective_args"] == {"gamma": 1}
    r = run(["eoe-train", "--dataset", "cifar10[0-1]", "--objective", "focal", "--objective-arg", "gama=1",
             "--out", str(tmp_path / "bad")], fake_data_root)
    assert r.returncode == 2 and "no hyper-parameter(s) ['gama']" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "bad").exists()                  # refused before anything is written
